// pushmany: `pushManyChannels` polls held, one channel each; the server itself publishes at `pushManyRate`
// messages/s round-robin over the channels (bench/lib/server-publish.js), in alternating rounds: one
// `app.longpoll.pushMany` per 10 ms tick, or one `app.longpoll.push` per message (a tick's together). Every
// delivery is checked (order per channel, loss, duplicates) and timed from its publish. Reports server CPU per
// delivered message of each way, and their ratio, measured in the same run on the same held polls.
import { closeClients, merge, split, startClients } from '../lib/clients.js'
import { measure, redisFields } from '../lib/measure.js'
import { call, tag } from '../lib/processes.js'
import { percentiles, round } from '../lib/stats.js'

const MODES = ['many', 'one']
/** Rounds per mode, alternating (many, one, many, one): drift on a shared machine hits both ways alike. */
const ROUNDS = 2
/** Messages per channel per round. */
const PER_CHANNEL = 1

export default {
  name: 'pushmany',
  variants: () => [{ id: 'pushmany' }],
  pluginOnly: true,
  notApplicable: 'the baselines have no server-side publishing API',

  async run ({ config, log, redis }, set) {
    const n = config.pushManyChannels
    const rate = config.pushManyRate
    const workers = Math.ceil(n / config.perClient)
    const clients = await startClients(workers)
    const t = tag()
    const channels = Array.from({ length: n }, (_, i) => `pm-${t}-${i}`)
    const publisher = set.procs[0].child // one instance publishes; with several, polls alternate over all of them
    try {
      log(`${set.def.id}: pushmany: holding ${n} polls`)
      await Promise.all(split(channels, workers).map((part, i) => call(clients[i], { cmd: 'open', bases: set.bases, channels: part, timeout: config.pollTimeoutMs }, 120_000)))
      const heldNow = await set.waitHeld(n, 30_000)
      const totals = Object.fromEntries(MODES.map((mode) => [mode, { cpuUs: 0, delivered: 0, expected: 0, sent: 0, failed: 0, calls: 0, publishMs: 0, lost: 0, duplicates: 0, outOfOrder: 0, latencies: [], redisUs: 0, commands: 0 }]))
      let k = 1
      for (let pass = 1; pass <= ROUNDS; pass++) {
        for (const mode of MODES) {
          const fromK = k
          const toK = k + PER_CHANNEL - 1
          k = toK + 1
          const m = await measure({ stats: set.stats, redis: set.def.redis ? redis : null }, async () => {
            const published = await call(publisher, { cmd: 'publish', channels, perChannel: PER_CHANNEL, startK: fromK, rate, mode, payload: config.payload }, 300_000)
            const received = await Promise.all(clients.map((c) => call(c, { cmd: 'expect', fromK, toK, waitMs: 30_000 }, 60_000)))
            return { published, received }
          })
          const r = merge(m.result.received)
          const total = totals[mode]
          total.cpuUs += m.cpuUs
          total.delivered += r.delivered
          total.expected += m.result.received.reduce((sum, x) => sum + x.expected, 0)
          // A message whose publish failed was never stored: not lost, counted as failed (one poll per channel).
          total.lost += m.result.received.reduce((sum, x) => sum + x.lost, 0) - m.result.published.failed
          total.duplicates += r.duplicates
          total.outOfOrder += r.outOfOrder
          total.latencies.push(...r.latencies)
          for (const field of ['sent', 'failed', 'calls', 'publishMs']) total[field] += m.result.published[field]
          const fields = redisFields(m, r.delivered, m.result.published.calls)
          total.redisUs += fields.redisCpuUs ?? 0
          total.commands += fields.redisCommands ?? 0
          log(`${set.def.id}: pushmany round ${pass} ${mode}: ${r.delivered} delivered, ${round(m.cpuUs / Math.max(1, r.delivered), 2)} µs/msg, ${round(m.result.published.sent / (m.result.published.publishMs / 1000), 0)} msgs/s`)
        }
      }
      const view = (mode) => {
        const x = totals[mode]
        return {
          sent: x.sent,
          failed: x.failed,
          calls: x.calls,
          publishRate: round(x.sent / (x.publishMs / 1000), 0),
          delivered: x.delivered,
          expected: x.expected,
          lost: x.lost,
          duplicates: x.duplicates,
          outOfOrder: x.outOfOrder,
          latencyMs: percentiles(x.latencies),
          cpuPerMsgUs: round(x.cpuUs / Math.max(1, x.delivered), 2),
          ...(set.def.redis ? { redisCpuPerMsgUs: round(x.redisUs / Math.max(1, x.delivered), 2), redisCommandsPerMsg: round(x.commands / Math.max(1, x.sent), 3) } : {})
        }
      }
      const many = view('many')
      const one = view('one')
      const row = {
        n,
        rate,
        heldReached: heldNow,
        rounds: ROUNDS,
        many,
        one,
        // The suite's common fields: the pushMany way's.
        delivered: many.delivered,
        lost: many.lost + one.lost,
        violations: many.lost + many.duplicates + many.outOfOrder + one.lost + one.duplicates + one.outOfOrder + (heldNow === n ? 0 : 1),
        cpuPerMsgUs: many.cpuPerMsgUs,
        cpuRatio: round(many.cpuPerMsgUs / Math.max(0.01, one.cpuPerMsgUs), 2)
      }
      log(`${set.def.id}: pushmany: ${many.cpuPerMsgUs} µs/msg with pushMany, ${one.cpuPerMsgUs} with push (${row.cpuRatio}×); lost ${row.lost}`)
      return row
    } finally {
      await closeClients(clients)
      await set.waitHeld(0, 20_000)
    }
  },

  markdown ({ ids, results, fmt, label, skippedRow }) {
    if (!ids.includes('pushmany')) return []
    const rows = results.rows.filter((r) => r.scenario === 'pushmany' && !String(r.skipped ?? '').startsWith('not applicable'))
    const first = rows.find((r) => !r.skipped)
    const lines = [
      `## pushmany: ${fmt(first?.n, 0)} polls held, one channel each; the server publishes ${fmt(first?.rate, 0)} messages/s round-robin over them, as one pushMany per 10 ms or one push per message, in alternating rounds (${first?.rounds ?? ROUNDS} each)`,
      '',
      '| server | way | store/notify calls | messages/s achieved | server CPU / msg (µs) | vs push | p50 (ms) | p99 (ms) | delivered | lost | dup / out of order | Redis cmds / msg | redis-server CPU / msg (µs) |',
      '|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|'
    ]
    for (const row of rows) {
      if (row.skipped) {
        lines.push(skippedRow(row, 13))
        continue
      }
      for (const [way, x] of [['pushMany', row.many], ['push', row.one]]) {
        const redisCells = x.redisCommandsPerMsg === undefined ? '— | —' : `${fmt(x.redisCommandsPerMsg, 3)} | ${fmt(x.redisCpuPerMsgUs, 2)}`
        lines.push(`| ${label(row.server)} | ${way} | ${fmt(x.calls, 0)} | ${fmt(x.publishRate, 0)} | ${fmt(x.cpuPerMsgUs, 2)} | ${way === 'pushMany' ? `${fmt(row.cpuRatio, 2)}×` : '1×'} | ${fmt(x.latencyMs.p50, 1)} | ${fmt(x.latencyMs.p99, 1)} | ${fmt(x.delivered, 0)}/${fmt(x.expected, 0)} | ${x.lost} | ${x.duplicates} / ${x.outOfOrder} | ${redisCells} |`)
      }
    }
    lines.push('')
    return lines
  }
}
