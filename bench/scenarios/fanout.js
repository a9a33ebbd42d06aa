// fanout: `fanoutN` polls held on one channel, one push. Reports the time from the push to the first, median and
// last delivery, and server CPU per delivered message (no re-polls).
import { closeClients, startClients } from '../lib/clients.js'
import { measure, redisFields } from '../lib/measure.js'
import { call, tag } from '../lib/processes.js'
import { percentiles, round } from '../lib/stats.js'

export default {
  name: 'fanout',
  variants: () => [{ id: 'fanout' }],

  async run ({ config, log, redis }, set) {
    const n = config.fanoutN
    const clients = await startClients(1)
    const channel = `fan-${tag()}`
    try {
      log(`${set.def.id}: fanout: holding ${n} polls on one channel`)
      await call(clients[0], { cmd: 'open', bases: set.bases, channels: Array(n).fill(channel), timeout: config.pollTimeoutMs, repoll: false }, 120_000)
      const heldNow = await set.waitHeld(n, 30_000)
      const m = await measure({ stats: set.stats, redis: set.def.redis ? redis : null }, () =>
        call(clients[0], { cmd: 'fanpush', channel, expect: n, waitMs: 30_000, payload: config.payload }, 60_000))
      const r = m.result
      const times = percentiles(r.times)
      const row = {
        n,
        heldReached: heldNow,
        delivered: r.delivered,
        lost: r.lost,
        duplicates: r.duplicates,
        outOfOrder: r.outOfOrder,
        violations: r.lost + r.duplicates + r.outOfOrder + (heldNow === n ? 0 : 1),
        pushAckMs: round(r.ackMs, 2),
        firstMs: r.times.length > 0 ? round(Math.min(...r.times), 2) : null,
        p50Ms: times.p50,
        lastMs: times.max,
        cpuUs: m.cpuUs,
        cpuPerMsgUs: round(m.cpuUs / Math.max(1, r.delivered), 2),
        ...redisFields(m, r.delivered, 1)
      }
      log(`${set.def.id}: fanout: ${r.delivered}/${n} delivered, last after ${row.lastMs} ms, CPU ${row.cpuPerMsgUs} µs/msg`)
      return row
    } finally {
      await closeClients(clients)
      await set.waitHeld(0, 20_000)
    }
  },

  targets ({ ids, memoryTargets, cpuTargets }) {
    cpuTargets('fanout')
    for (const id of ids) memoryTargets(id)
  },

  chart: () => [{ field: 'cpuPerMsgUs', name: 'fanout CPU/msg' }],

  markdown ({ method, rowsOf, fmt, label, skippedRow, targetCell, redisCell }) {
    return [
      `## fanout: ${fmt(method.fanoutN, 0)} polls held on one channel, one push`,
      '',
      '| server | first delivery (ms) | p50 (ms) | last delivery (ms) | server CPU / msg (µs) | delivered | lost | Redis cmds for the push (all instances) | target met? |',
      '|---|--:|--:|--:|--:|--:|--:|--:|---|',
      ...rowsOf('fanout').map((row) => row.skipped ? skippedRow(row, 9) : `| ${label(row.server)} | ${fmt(row.firstMs, 1)} | ${fmt(row.p50Ms, 1)} | ${fmt(row.lastMs, 1)} | ${fmt(row.cpuPerMsgUs, 2)} | ${fmt(row.delivered, 0)}/${fmt(row.n, 0)} | ${row.lost} | ${redisCell(row, 'redisCommands', 0)} | ${targetCell(row)} |`),
      ''
    ]
  }
}
