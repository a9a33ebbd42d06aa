// held: N polls, one channel each, held at once; then one push per channel in turn at up to `pushRate`/s, with at
// most `pushWindow` messages in flight. Reports server RSS per held poll (idle → all held, both after a forced GC),
// push→delivery latency, and server CPU per delivered message (push, wake-up, answer and re-poll).
import { closeClients, pushEachChannel, split, startClients } from '../lib/clients.js'
import { redisFields } from '../lib/measure.js'
import { call, tag } from '../lib/processes.js'
import { percentiles, round } from '../lib/stats.js'

const mib = (bytes) => (bytes / 1048576).toFixed(1)

export default {
  name: 'held',
  variants: (config) => config.heldN.map((n) => ({ id: `held-${n}`, n })),
  freshServer: true, // idle-to-held memory, measured on a process that never held more

  async run ({ config, log, redis }, set, { n }) {
    const workers = Math.ceil(n / config.perClient)
    const clients = await startClients(workers)
    const t = tag()
    const channels = Array.from({ length: n }, (_, i) => `held-${t}-${i}`)
    try {
      const idle = await set.stats(true)
      log(`${set.def.id}: held ${n}: opening ${n} polls over ${workers} client process(es)`)
      const opening = performance.now()
      await Promise.all(split(channels, workers).map((part, i) => call(clients[i], { cmd: 'open', bases: set.bases, channels: part, timeout: config.pollTimeoutMs }, 120_000)))
      const heldNow = await set.waitHeld(n, 30_000)
      const openMs = performance.now() - opening
      const full = await set.stats(true)
      log(`${set.def.id}: held ${n}: ${heldNow} held after ${Math.round(openMs)} ms; RSS ${mib(idle.rss)} -> ${mib(full.rss)} MiB; pushing at ${config.pushRate}/s`)
      const { m, r, pushMs } = await pushEachChannel(config, set, set.def.redis ? redis : null, clients)
      const row = {
        n,
        heldReached: heldNow,
        openMs: round(openMs, 0),
        rssIdle: idle.rss,
        rssHeld: full.rss,
        rssPerPoll: round((full.rss - idle.rss) / n, 0),
        heapPerPoll: round((full.heapUsed - idle.heapUsed) / n, 0),
        pushed: r.pushed,
        acked: r.acked,
        pushFailed: r.pushFailed,
        delivered: r.delivered,
        lost: r.lost,
        duplicates: r.duplicates,
        outOfOrder: r.outOfOrder,
        violations: r.lost + r.duplicates + r.outOfOrder + (heldNow === n ? 0 : 1),
        pollErrors: r.pollErrors,
        pollStatus: r.pollStatus,
        latencyMs: percentiles(r.latencies),
        pushMs: round(pushMs, 0),
        pushRate: round(r.acked / (pushMs / 1000), 0),
        cpuUs: m.cpuUs,
        cpuPerMsgUs: round(m.cpuUs / Math.max(1, r.delivered), 2),
        ...redisFields(m, r.delivered, r.acked)
      }
      log(`${set.def.id}: held ${n}: delivered ${r.delivered}/${r.acked}, lost ${r.lost}, p50 ${row.latencyMs.p50} ms, p99 ${row.latencyMs.p99} ms, CPU ${row.cpuPerMsgUs} µs/msg, RSS ${(row.rssPerPoll / 1024).toFixed(2)} KiB/poll, achieved ${row.pushRate} pushes/s`)
      return row
    } finally {
      await closeClients(clients)
      await set.waitHeld(0, 20_000)
    }
  },

  /** Issue 11's CPU targets and issue 4's others, and the Redis and metrics rows against the memory store. */
  targets ({ ids, check, plugins, memoryTargets, cpuTargets }) {
    for (const id of ids) {
      cpuTargets(id)
      for (const server of plugins) {
        check(server, id, 'RSS/poll', 'rssPerPoll', 'node-http', 1.15)
        check(server, id, 'p99', 'latencyMs.p99', 'node-http', 1.0)
      }
      memoryTargets(id)
    }
  },

  chart: (id) => [
    { field: 'cpuPerMsgUs', name: `${id} CPU/msg` },
    { field: 'rssPerPoll', name: `${id} RSS/poll` },
    { field: 'latencyMs.p99', name: `${id} p99` }
  ],

  markdown ({ ids, method, rowsOf, fmt, kib, label, skippedRow, targetCell, redisCell }) {
    return ids.flatMap((id) => [
      `## held: ${fmt(Number(id.slice(5)), 0)} concurrent polls, one channel each; then one push per channel in turn at up to ${fmt(method.pushRate, 0)} pushes/s, at most ${method.pushWindow} in flight, for at most ${method.pushMaxMs / 1000} s`,
      '',
      '| server | RSS / held poll (KiB) | pushes/s achieved | p50 (ms) | p99 (ms) | max (ms) | server CPU / msg (µs) | delivered | lost | Redis cmds / push | redis-server CPU / msg (µs) | target met? |',
      '|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|',
      ...rowsOf(id).map((row) => row.skipped ? skippedRow(row, 12) : `| ${label(row.server)} | ${kib(row.rssPerPoll)} | ${fmt(row.pushRate, 0)} | ${fmt(row.latencyMs.p50, 2)} | ${fmt(row.latencyMs.p99, 2)} | ${fmt(row.latencyMs.max, 1)} | ${fmt(row.cpuPerMsgUs, 1)} | ${fmt(row.delivered, 0)}/${fmt(row.acked, 0)} | ${row.lost} | ${redisCell(row, 'redisCommandsPerPush', 2)} | ${redisCell(row, 'redisCpuPerMsgUs')} | ${targetCell(row)} |`),
      ''
    ])
  }
}
