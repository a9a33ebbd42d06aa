// pingpong: `pingpongChannels` channels, each with a poller re-polling with its cursor and a pusher pushing the
// next message as soon as the last one is delivered, for `pingpongMs`. Reports delivered messages/s, latency,
// server CPU per message and any order, loss or duplicate violation.
import { closeClients, startClients } from '../lib/clients.js'
import { measure, redisFields } from '../lib/measure.js'
import { call, tag } from '../lib/processes.js'
import { percentiles, round } from '../lib/stats.js'

export default {
  name: 'pingpong',
  variants: () => [{ id: 'pingpong' }],

  async run ({ config, log, redis }, set) {
    const clients = await startClients(1)
    const t = tag()
    try {
      log(`${set.def.id}: pingpong: ${config.pingpongChannels} channels for ${config.pingpongMs / 1000} s`)
      const m = await measure({ stats: set.stats, redis: set.def.redis ? redis : null }, () => call(clients[0], {
        cmd: 'pingpong',
        bases: set.bases,
        channels: Array.from({ length: config.pingpongChannels }, (_, i) => `pp-${t}-${i}`),
        durationMs: config.pingpongMs,
        drainMs: 10_000,
        timeout: config.pollTimeoutMs,
        payload: config.payload
      }, config.pingpongMs + 60_000))
      const r = m.result
      const row = {
        channels: config.pingpongChannels,
        durationMs: round(r.elapsedMs, 0),
        pushed: r.pushed,
        acked: r.acked,
        pushFailed: r.pushFailed,
        delivered: r.delivered,
        msgPerSec: round(r.deliveredAtDeadline / (r.elapsedMs / 1000), 0),
        lost: r.lost,
        duplicates: r.duplicates,
        outOfOrder: r.outOfOrder,
        violations: r.lost + r.duplicates + r.outOfOrder,
        pollErrors: r.pollErrors,
        pollStatus: r.pollStatus,
        latencyMs: percentiles(r.latencies),
        cpuUs: m.cpuUs,
        cpuPerMsgUs: round(m.cpuUs / Math.max(1, r.delivered), 2),
        ...redisFields(m, r.delivered, r.acked)
      }
      log(`${set.def.id}: pingpong: ${row.msgPerSec} msg/s, p50 ${row.latencyMs.p50} ms, p99 ${row.latencyMs.p99} ms, CPU ${row.cpuPerMsgUs} µs/msg, violations ${row.violations}`)
      return row
    } finally {
      await closeClients(clients)
      await set.waitHeld(0, 20_000)
    }
  },

  targets ({ ids, check, plugins, memoryTargets, cpuTargets }) {
    cpuTargets('pingpong')
    for (const server of plugins) check(server, 'pingpong', 'p99', 'latencyMs.p99', 'node-http', 1.0)
    for (const id of ids) memoryTargets(id)
  },

  chart: () => [
    { field: 'cpuPerMsgUs', name: 'pingpong CPU/msg' },
    { field: 'latencyMs.p99', name: 'pingpong p99' }
  ],

  markdown ({ method, rowsOf, fmt, label, skippedRow, targetCell, redisCell }) {
    return [
      `## pingpong: ${method.pingpongChannels} channels, each a poller re-polling with its cursor and a pusher pushing again on delivery, ${method.pingpongMs / 1000} s`,
      '',
      '| server | delivered msg/s | p50 (ms) | p99 (ms) | max (ms) | server CPU / msg (µs) | violations (order, loss, dup) | Redis cmds / push | redis-server CPU / msg (µs) | target met? |',
      '|---|--:|--:|--:|--:|--:|--:|--:|--:|---|',
      ...rowsOf('pingpong').map((row) => row.skipped ? skippedRow(row, 10) : `| ${label(row.server)} | ${fmt(row.msgPerSec, 0)} | ${fmt(row.latencyMs.p50, 2)} | ${fmt(row.latencyMs.p99, 2)} | ${fmt(row.latencyMs.max, 1)} | ${fmt(row.cpuPerMsgUs, 1)} | ${row.violations} (${row.outOfOrder}, ${row.lost}, ${row.duplicates}) | ${redisCell(row, 'redisCommandsPerPush', 2)} | ${redisCell(row, 'redisCpuPerMsgUs')} | ${targetCell(row)} |`),
      ''
    ]
  }
}
