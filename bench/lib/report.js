import { multiplexTargets } from '../scenarios/multiplex.js'

// Targets, the Markdown table and the SVG chart, all computed from the results JSON (so they can be re-rendered
// from an old results file: `node bench/render.js bench/results/<date>.json`).

const FLOOR = 'node-http'
const MEMORY = 'memory'

/** The targets of issue 4, checked against one run. Each: { server, scenario, what, value, reference, ratio, limit, met }. */
export function evaluateTargets (results) {
  const rows = results.rows
  const find = (server, scenario) => rows.find((r) => r.server === server && r.scenario === scenario && r.skipped === undefined)
  const out = []
  const check = (server, scenario, what, field, reference, limit) => {
    const row = find(server, scenario)
    const ref = find(reference, scenario)
    if (row === undefined || ref === undefined) return
    const value = pick(row, field)
    const base = pick(ref, field)
    if (value === null || value === undefined || base === null || base === undefined) return
    const ratio = base > 0 ? value / base : (value > 0 ? Infinity : 1)
    out.push({ server, scenario, what, field, value, reference, referenceValue: base, ratio: round(ratio, 3), limit, met: ratio <= limit })
  }
  for (const scenario of results.scenarios) {
    for (const server of [MEMORY, 'candidate']) {
      if (scenario.startsWith('held-')) {
        check(server, scenario, 'CPU/msg', 'cpuPerMsgUs', FLOOR, 1.0)
        check(server, scenario, 'RSS/poll', 'rssPerPoll', FLOOR, 1.15)
        check(server, scenario, 'p99', 'latencyMs.p99', FLOOR, 1.0)
      } else if (scenario === 'pingpong') {
        check(server, scenario, 'CPU/msg', 'cpuPerMsgUs', FLOOR, 1.0)
        check(server, scenario, 'p99', 'latencyMs.p99', FLOOR, 1.0)
      } else if (scenario === 'fanout') {
        check(server, scenario, 'CPU/msg', 'cpuPerMsgUs', FLOOR, 0.4)
      }
    }
    if (scenario.startsWith('held-') || scenario === 'pingpong' || scenario === 'fanout') {
      // Issue 10: counting for Prometheus costs nothing measurable on the hot path.
      check('memory-metrics', scenario, 'CPU/msg', 'cpuPerMsgUs', MEMORY, 1.03)
      check('redis-1', scenario, 'CPU/msg', 'cpuPerMsgUs', MEMORY, 2.0)
      check('redis-2', scenario, 'CPU/msg', 'cpuPerMsgUs', MEMORY, 2.0)
    }
  }
  return [...out, ...multiplexTargets(rows)]
}

function pick (row, field) {
  return field.split('.').reduce((o, k) => (o === null || o === undefined ? undefined : o[k]), row)
}

function round (x, digits = 2) {
  if (x === null || x === undefined || !Number.isFinite(x)) return x
  const f = 10 ** digits
  return Math.round(x * f) / f
}

const fmt = (x, digits = 1) => (x === null || x === undefined || Number.isNaN(x) ? '—' : Number(x).toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: 0 }))
const kib = (bytes) => (bytes === null || bytes === undefined ? '—' : fmt(bytes / 1024, 2))

function targetCell (results, row) {
  const server = results.servers.find((s) => s.id === row.server)
  if (server?.baseline) return row.server === FLOOR ? 'reference' : '—'
  const targets = results.targets.filter((t) => t.server === row.server && t.scenario === row.scenario)
  if (targets.length === 0) return '—'
  return targets.map((t) => `${t.met ? '✅' : '❌'} ${t.what} ${fmt(t.ratio, 2)}× ${t.reference === FLOOR ? 'floor' : 'memory'} (≤ ${t.limit}×)`).join('<br>')
}

function label (results, id) {
  return results.servers.find((s) => s.id === id)?.label ?? id
}

function skippedRow (results, row, columns) {
  return `| ${label(results, row.server)} | ${row.skipped} |${' |'.repeat(columns - 2)}`
}

/** The results as Markdown: header (machine, Node, method), one table per scenario, then the targets. */
export function renderMarkdown (results) {
  const { machine, method } = results
  const lines = []
  const rowsOf = (scenario) => results.rows.filter((r) => r.scenario === scenario)
  const redisCell = (row, field, digits = 1) => (row[field] === undefined ? '—' : fmt(row[field], digits))
  lines.push(`# fastify-longpoll benchmarks${results.quick ? ' (quick smoke run: numbers are not meaningful)' : ''}`)
  lines.push('')
  lines.push(`- **Date:** ${results.date} · **duration:** ${results.durationS} s · **command:** \`${results.command}\``)
  lines.push(`- **Machine:** ${machine.cpu}, ${machine.cores} cores, ${machine.ramGiB} GiB RAM, ${machine.os}, fd limit ${machine.fdLimit}`)
  lines.push(`- **Node:** ${results.node} · **load average** (1, 5, 15 min) at start ${results.loadAverage.atStart.join(', ')}, at end ${results.loadAverage.atEnd.join(', ')} (the machine may be shared; ratios within one run are what to compare)`)
  lines.push(`- **Method:** ${method.summary} Warm-up before measuring: ${method.warmupPingpongMs} ms of pingpong on 50 channels, ${method.warmupHeld} held polls pushed once, ${method.throughputWarmS} s of short polls. ` +
    `${results.quick ? 'One server process for all scenarios. ' : 'A fresh server process for each held size, and one for the other scenarios. '}Payload \`{"k":n,"text":"${method.payload}"}\`. Polls use \`timeout=${method.pollTimeoutMs}\`.`)
  lines.push('- **Servers:** ' + results.servers.map((s) => `*${s.label}*${s.skipped ? ` (${s.skipped})` : ''}`).join(', ') + '. The node:http floor is the reference for the memory store\'s targets; the memory store is the reference for Redis.')
  lines.push('')

  for (const scenario of results.scenarios.filter((s) => s.startsWith('held-'))) {
    const n = scenario.slice(5)
    lines.push(`## held: ${fmt(Number(n), 0)} concurrent polls, one channel each; then one push per channel in turn at up to ${fmt(method.pushRate, 0)} pushes/s, at most ${method.pushWindow} in flight, for at most ${method.pushMaxMs / 1000} s`)
    lines.push('')
    lines.push('| server | RSS / held poll (KiB) | pushes/s achieved | p50 (ms) | p99 (ms) | max (ms) | server CPU / msg (µs) | delivered | lost | Redis cmds / push | redis-server CPU / msg (µs) | target met? |')
    lines.push('|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|')
    for (const row of rowsOf(scenario)) {
      if (row.skipped) { lines.push(skippedRow(results, row, 12)); continue }
      lines.push(`| ${label(results, row.server)} | ${kib(row.rssPerPoll)} | ${fmt(row.pushRate, 0)} | ${fmt(row.latencyMs.p50, 2)} | ${fmt(row.latencyMs.p99, 2)} | ${fmt(row.latencyMs.max, 1)} | ${fmt(row.cpuPerMsgUs, 1)} | ${fmt(row.delivered, 0)}/${fmt(row.acked, 0)} | ${row.lost} | ${redisCell(row, 'redisCommandsPerPush', 2)} | ${redisCell(row, 'redisCpuPerMsgUs')} | ${targetCell(results, row)} |`)
    }
    lines.push('')
  }

  if (results.scenarios.includes('fanout')) {
    lines.push(`## fanout: ${fmt(method.fanoutN, 0)} polls held on one channel, one push`)
    lines.push('')
    lines.push('| server | first delivery (ms) | p50 (ms) | last delivery (ms) | server CPU / msg (µs) | delivered | lost | Redis cmds for the push (all instances) | target met? |')
    lines.push('|---|--:|--:|--:|--:|--:|--:|--:|---|')
    for (const row of rowsOf('fanout')) {
      if (row.skipped) { lines.push(skippedRow(results, row, 9)); continue }
      lines.push(`| ${label(results, row.server)} | ${fmt(row.firstMs, 1)} | ${fmt(row.p50Ms, 1)} | ${fmt(row.lastMs, 1)} | ${fmt(row.cpuPerMsgUs, 2)} | ${fmt(row.delivered, 0)}/${fmt(row.n, 0)} | ${row.lost} | ${redisCell(row, 'redisCommands', 0)} | ${targetCell(results, row)} |`)
    }
    lines.push('')
  }

  if (results.scenarios.includes('pingpong')) {
    lines.push(`## pingpong: ${method.pingpongChannels} channels, each a poller re-polling with its cursor and a pusher pushing again on delivery, ${method.pingpongMs / 1000} s`)
    lines.push('')
    lines.push('| server | delivered msg/s | p50 (ms) | p99 (ms) | max (ms) | server CPU / msg (µs) | violations (order, loss, dup) | Redis cmds / push | redis-server CPU / msg (µs) | target met? |')
    lines.push('|---|--:|--:|--:|--:|--:|--:|--:|--:|---|')
    for (const row of rowsOf('pingpong')) {
      if (row.skipped) { lines.push(skippedRow(results, row, 10)); continue }
      lines.push(`| ${label(results, row.server)} | ${fmt(row.msgPerSec, 0)} | ${fmt(row.latencyMs.p50, 2)} | ${fmt(row.latencyMs.p99, 2)} | ${fmt(row.latencyMs.max, 1)} | ${fmt(row.cpuPerMsgUs, 1)} | ${row.violations} (${row.outOfOrder}, ${row.lost}, ${row.duplicates}) | ${redisCell(row, 'redisCommandsPerPush', 2)} | ${redisCell(row, 'redisCpuPerMsgUs')} | ${targetCell(results, row)} |`)
    }
    lines.push('')
  }

  if (results.scenarios.includes('throughput-poll')) {
    lines.push(`## throughput: autocannon, ${method.throughputConnections} connections, ${method.throughputS} s each (after ${method.throughputWarmS} s of warm-up)`)
    lines.push('')
    lines.push('Short polls: `GET /poll?channel=C&timeout=0` on a channel holding one message (every answer carries it). Pushes: `POST /push` to one channel.')
    lines.push('')
    lines.push('| server | short polls req/s | p50 (ms) | p99 (ms) | server CPU / req (µs) | pushes req/s | p50 (ms) | p99 (ms) | server CPU / req (µs) | Redis cmds / push | errors + non-2xx |')
    lines.push('|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|')
    const servers = [...new Set(results.rows.filter((r) => r.scenario.startsWith('throughput-')).map((r) => r.server))]
    for (const id of servers) {
      const poll = results.rows.find((r) => r.server === id && r.scenario === 'throughput-poll')
      const push = results.rows.find((r) => r.server === id && r.scenario === 'throughput-push')
      if (poll?.skipped || push?.skipped) { lines.push(skippedRow(results, poll ?? push, 11)); continue }
      const cells = (r) => r === undefined ? ['—', '—', '—', '—'] : [fmt(r.reqPerSec, 0), fmt(r.latencyMs.p50, 0), fmt(r.latencyMs.p99, 0), fmt(r.cpuPerReqUs, 1)]
      lines.push(`| ${label(results, id)} | ${cells(poll).join(' | ')} | ${cells(push).join(' | ')} | ${push === undefined ? '—' : redisCell(push, 'redisCommandsPerPush', 2)} | ${(poll?.violations ?? 0) + (push?.violations ?? 0)} |`)
    }
    lines.push('')
  }

  if (results.scenarios.includes('multiplex-10ch')) {
    const first = results.rows.find((r) => r.scenario === 'multiplex-10ch' && !r.skipped)
    lines.push(`## multiplex: ${fmt(first?.clients, 0)} clients each following ${first?.channelsPerClient ?? 10} channels, as one ${first?.channelsPerClient ?? 10}-channel poll each or as ${first?.channelsPerClient ?? 10} one-channel polls each (a fresh server for each); then one push per channel in turn at up to ${fmt(method.pushRate, 0)} pushes/s`)
    lines.push('')
    lines.push('| server | polls per client | held polls | RSS / client (KiB) | fds / client | server CPU / msg (µs) | p50 (ms) | p99 (ms) | delivered | lost | Redis cmds / push | target met? |')
    lines.push('|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|')
    for (const row of results.rows.filter((r) => r.scenario.startsWith('multiplex-') && !r.skipped)) {
      const targets = results.targets.filter((t) => t.server === row.server && t.scenario === row.scenario)
      const cell = targets.length === 0 ? '—' : targets.map((t) => `${t.met ? '✅' : '❌'} ${t.what} ${fmt(t.ratio, 2)}× (≤ ${t.limit}×)`).join('<br>')
      lines.push(`| ${label(results, row.server)} | ${row.channelsPerClient / row.channelsPerPoll} | ${fmt(row.polls, 0)} | ${kib(row.rssPerClient)} | ${fmt(row.fdsPerClient, 2)} | ${fmt(row.cpuPerMsgUs, 1)} | ${fmt(row.latencyMs.p50, 2)} | ${fmt(row.latencyMs.p99, 2)} | ${fmt(row.delivered, 0)}/${fmt(row.acked, 0)} | ${row.lost} | ${redisCell(row, 'redisCommandsPerPush', 2)} | ${cell} |`)
    }
    lines.push('')
  }

  const met = results.targets.filter((t) => t.met).length
  lines.push(`## Targets: ${met} of ${results.targets.length} met`)
  lines.push('')
  lines.push('| server | scenario | metric | value | reference | ratio | limit | met? |')
  lines.push('|---|---|---|--:|--:|--:|--:|---|')
  for (const t of results.targets) {
    const unit = t.field === 'rssPerPoll' || t.field === 'rssPerClient' ? ' B' : t.field === 'cpuPerMsgUs' ? ' µs' : ' ms'
    const reference = t.reference === FLOOR ? 'floor' : t.reference === MEMORY ? 'memory' : t.reference
    lines.push(`| ${label(results, t.server)} | ${t.scenario} | ${t.what} | ${fmt(t.value, 2)}${unit} | ${fmt(t.referenceValue, 2)}${unit} (${reference}) | ${fmt(t.ratio, 2)}× | ≤ ${t.limit}× | ${t.met ? '✅ yes' : '❌ no'} |`)
  }
  lines.push('')
  lines.push('Columns: *RSS / held poll* = (server RSS with N polls held − idle RSS) / N, both after a forced GC. *p50/p99/max* = push→delivery latency seen by the client, from sending the push to having read the poll answer that carries it. ' +
    '*Server CPU / msg* = user+system CPU of the server process(es) during the measured phase / messages delivered (it includes handling the pushes and the re-polls). ' +
    '*Redis cmds* from `INFO commandstats` (reset before each phase). *Lost* = pushes answered 2xx but never delivered; *violations* = out-of-order + lost + duplicate deliveries. See bench/README.md.')
  lines.push('')
  return lines.join('\n')
}

const COLORS = { 'node-http': '#7f7f7f', 'fastify-map': '#bcbd22', memory: '#1f77b4', 'memory-metrics': '#9467bd', candidate: '#17becf', 'redis-1': '#d62728', 'redis-2': '#ff7f0e' }

/** A grouped bar chart of costs relative to the node:http floor (lower is better). Hand-written SVG. */
export function renderSvg (results) {
  const metrics = []
  for (const scenario of results.scenarios) {
    if (scenario.startsWith('held-')) {
      metrics.push({ scenario, field: 'cpuPerMsgUs', name: `${scenario} CPU/msg` })
      metrics.push({ scenario, field: 'rssPerPoll', name: `${scenario} RSS/poll` })
      metrics.push({ scenario, field: 'latencyMs.p99', name: `${scenario} p99` })
    } else if (scenario === 'fanout') metrics.push({ scenario, field: 'cpuPerMsgUs', name: 'fanout CPU/msg' })
    else if (scenario === 'pingpong') {
      metrics.push({ scenario, field: 'cpuPerMsgUs', name: 'pingpong CPU/msg' })
      metrics.push({ scenario, field: 'latencyMs.p99', name: 'pingpong p99' })
    } else if (scenario.startsWith('throughput-')) metrics.push({ scenario, field: 'cpuPerReqUs', name: `${scenario.slice(11)} CPU/req` })
  }
  const servers = results.servers.filter((s) => !s.skipped)
  const cap = 4
  const W = 1000
  const H = 420
  const left = 50
  const top = 50
  const bottom = 110
  const plotH = H - top - bottom
  const groupW = (W - left - 20) / Math.max(1, metrics.length)
  const barW = Math.max(4, (groupW - 14) / Math.max(1, servers.length))
  const y = (ratio) => top + plotH - (Math.min(ratio, cap) / cap) * plotH
  const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;')
  const parts = []
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="11">`)
  parts.push(`<rect width="${W}" height="${H}" fill="#fff"/>`)
  parts.push(`<text x="${left}" y="20" font-size="14" font-weight="bold">fastify-longpoll: cost relative to the node:http floor (lower is better; capped at ${cap}×)</text>`)
  parts.push(`<text x="${left}" y="36" fill="#555">${esc(`${results.machine.cpu}, ${results.machine.cores} cores, Node ${results.node}, ${results.date.slice(0, 10)}${results.quick ? ' — quick smoke run' : ''}`)}</text>`)
  for (let r = 0; r <= cap; r++) {
    parts.push(`<line x1="${left}" x2="${W - 20}" y1="${y(r)}" y2="${y(r)}" stroke="${r === 1 ? '#000' : '#ddd'}" ${r === 1 ? 'stroke-dasharray="4 3"' : ''}/>`)
    parts.push(`<text x="${left - 6}" y="${y(r) + 4}" text-anchor="end">${r}×</text>`)
  }
  metrics.forEach((m, i) => {
    const floorRow = results.rows.find((r) => r.server === FLOOR && r.scenario === m.scenario && !r.skipped)
    const base = floorRow === undefined ? undefined : pick(floorRow, m.field)
    const gx = left + i * groupW + 7
    servers.forEach((s, j) => {
      const row = results.rows.find((r) => r.server === s.id && r.scenario === m.scenario && !r.skipped)
      const v = row === undefined ? undefined : pick(row, m.field)
      if (v === undefined || v === null || !(base > 0)) return
      const ratio = v / base
      const x = gx + j * barW
      parts.push(`<rect x="${x.toFixed(1)}" y="${y(ratio).toFixed(1)}" width="${(barW - 1).toFixed(1)}" height="${(top + plotH - y(ratio)).toFixed(1)}" fill="${COLORS[s.id] ?? '#999'}"><title>${esc(`${s.label}, ${m.name}: ${round(ratio, 2)}× the floor`)}</title></rect>`)
      if (ratio > cap) parts.push(`<text x="${(x + barW / 2).toFixed(1)}" y="${top - 2}" text-anchor="middle" font-size="9">${round(ratio, 1)}</text>`)
    })
    parts.push(`<text transform="translate(${(gx + groupW / 2 - 7).toFixed(1)},${top + plotH + 10}) rotate(35)" font-size="10">${esc(m.name)}</text>`)
  })
  servers.forEach((s, j) => {
    const x = left + (j % 3) * 300
    const ly = H - 34 + Math.floor(j / 3) * 16
    parts.push(`<rect x="${x}" y="${ly - 9}" width="10" height="10" fill="${COLORS[s.id] ?? '#999'}"/><text x="${x + 14}" y="${ly}">${esc(s.label)}</text>`)
  })
  parts.push('</svg>')
  return parts.join('\n') + '\n'
}
