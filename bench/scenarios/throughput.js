// throughput: autocannon against short polls (`timeout=0` on a channel holding one message, so every answer reads
// and carries it) and against pushes to one channel. Reports requests/s, latency and server CPU per request.
import autocannon from 'autocannon'
import { parseBase, pushAgent, request } from '../lib/http.js'
import { measure, redisFields } from '../lib/measure.js'
import { tag } from '../lib/processes.js'
import { round } from '../lib/stats.js'

export default {
  name: 'throughput',
  variants: () => [{ id: 'throughput-poll', what: 'poll' }, { id: 'throughput-push', what: 'push' }],

  async run ({ config, log, redis }, set, { what }) {
    const t = tag()
    const opts = { connections: config.throughputConnections }
    if (what === 'poll') {
      const channel = `tp-poll-${t}`
      const agent = pushAgent(1)
      const res = await request(agent, parseBase(set.bases[0]), 'POST', '/push', JSON.stringify({ channel, data: { k: 1, text: config.payload } }))
      agent.destroy()
      if (res.status !== 200) throw new Error(`prefill push answered ${res.status}`)
      opts.url = set.bases.map((b) => `${b}/poll?channel=${channel}&timeout=0`)
    } else {
      opts.url = set.bases.map((b) => `${b}/push`)
      opts.method = 'POST'
      opts.headers = { 'content-type': 'application/json' }
      opts.body = JSON.stringify({ channel: `tp-push-${t}`, data: { k: 1, text: config.payload } })
    }
    if (opts.url.length === 1) opts.url = opts.url[0]
    log(`${set.def.id}: throughput ${what}: autocannon, ${opts.connections} connections, ${config.throughputS} s`)
    if (config.throughputWarmS > 0) await autocannon({ ...opts, duration: config.throughputWarmS })
    const m = await measure({ stats: set.stats, redis: set.def.redis ? redis : null }, () => autocannon({ ...opts, duration: config.throughputS }))
    const result = m.result
    const responses = result['2xx'] + result.non2xx
    const row = {
      connections: opts.connections,
      durationS: config.throughputS,
      reqPerSec: round(result.requests.average, 0),
      responses,
      non2xx: result.non2xx,
      errors: result.errors,
      timeouts: result.timeouts,
      lost: 0,
      violations: result.non2xx + result.errors + result.timeouts,
      latencyMs: { p50: result.latency.p50, p99: result.latency.p99, max: result.latency.max, mean: result.latency.average },
      cpuUs: m.cpuUs,
      cpuPerReqUs: round(m.cpuUs / Math.max(1, responses), 2),
      ...redisFields(m, responses, what === 'push' ? responses : 0)
    }
    log(`${set.def.id}: throughput ${what}: ${row.reqPerSec} req/s, p99 ${row.latencyMs.p99} ms, CPU ${row.cpuPerReqUs} µs/req`)
    return row
  },

  chart: (id) => [{ field: 'cpuPerReqUs', name: `${id.slice(11)} CPU/req` }],

  markdown ({ ids, method, results, fmt, label, skippedRow, redisCell }) {
    if (!ids.includes('throughput-poll')) return []
    const lines = [
      `## throughput: autocannon, ${method.throughputConnections} connections, ${method.throughputS} s each (after ${method.throughputWarmS} s of warm-up)`,
      '',
      'Short polls: `GET /poll?channel=C&timeout=0` on a channel holding one message (every answer carries it). Pushes: `POST /push` to one channel.',
      '',
      '| server | short polls req/s | p50 (ms) | p99 (ms) | server CPU / req (µs) | pushes req/s | p50 (ms) | p99 (ms) | server CPU / req (µs) | Redis cmds / push | errors + non-2xx |',
      '|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|'
    ]
    const servers = [...new Set(results.rows.filter((r) => r.scenario.startsWith('throughput-')).map((r) => r.server))]
    for (const id of servers) {
      const poll = results.rows.find((r) => r.server === id && r.scenario === 'throughput-poll')
      const push = results.rows.find((r) => r.server === id && r.scenario === 'throughput-push')
      if (poll?.skipped || push?.skipped) { lines.push(skippedRow(poll ?? push, 11)); continue }
      const cells = (r) => r === undefined ? ['—', '—', '—', '—'] : [fmt(r.reqPerSec, 0), fmt(r.latencyMs.p50, 0), fmt(r.latencyMs.p99, 0), fmt(r.cpuPerReqUs, 1)]
      lines.push(`| ${label(id)} | ${cells(poll).join(' | ')} | ${cells(push).join(' | ')} | ${push === undefined ? '—' : redisCell(push, 'redisCommandsPerPush', 2)} | ${(poll?.violations ?? 0) + (push?.violations ?? 0)} |`)
    }
    lines.push('')
    return lines
  }
}
