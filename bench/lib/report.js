// Targets, the Markdown tables and the SVG chart of a suite run, all computed from the results JSON and the
// scenario modules (bench/scenarios/*.js: each renders its own table, names its own targets and chart bars), so
// an old results file can be re-rendered: `node bench/render.js bench/results/<date>.json`.

const FLOOR = 'node-http'
const MEMORY = 'memory'
const MAP = 'fastify-map'

/** The scenario module that ran a scenario id: its name, or its name and a variant (`held-5000`). */
const moduleOf = (scenarios, id) => scenarios.find((s) => id === s.name || id.startsWith(`${s.name}-`))

/** Each module with the ids of its variants that this run measured, in run order. */
function present (results, scenarios) {
  return scenarios
    .map((module) => ({ module, ids: results.scenarios.filter((id) => moduleOf(scenarios, id) === module) }))
    .filter((p) => p.ids.length > 0)
}

/** The targets, checked against one run. Each: { server, scenario, what, field, value, reference, referenceValue, ratio, limit, met }. */
export function evaluateTargets (results, scenarios) {
  const rows = results.rows
  const find = (server, scenario) => rows.find((r) => r.server === server && r.scenario === scenario && r.skipped === undefined)
  const out = []
  /** `server`'s `field` in `scenario` against `reference`'s (in `referenceScenario`, default the same). */
  const check = (server, scenario, what, field, reference, limit, referenceScenario = scenario) => {
    const row = find(server, scenario)
    const ref = find(reference, referenceScenario)
    if (row === undefined || ref === undefined) return
    const value = pick(row, field)
    const base = pick(ref, field)
    if (value === null || value === undefined || base === null || base === undefined) return
    const ratio = base > 0 ? value / base : (value > 0 ? Infinity : 1)
    const name = referenceScenario === scenario ? reference : `${reference} ${referenceScenario}`
    out.push({ server, scenario, what, field, value, reference: name, referenceValue: base, ratio: round(ratio, 3), limit, met: ratio <= limit })
  }
  // The plugin's memory store (and a candidate build) against the floor; Redis and metrics against memory.
  const plugins = [MEMORY, 'candidate']
  const memoryTargets = (scenario) => {
    // Issue 10: counting for Prometheus costs nothing measurable on the hot path.
    check('memory-metrics', scenario, 'CPU/msg', 'cpuPerMsgUs', MEMORY, 1.03)
    check('redis-1', scenario, 'CPU/msg', 'cpuPerMsgUs', MEMORY, 2.0)
    check('redis-2', scenario, 'CPU/msg', 'cpuPerMsgUs', MEMORY, 2.0)
  }
  // Issue 11: a delivered message costs no more than through the Fastify + Map route, and ≤ 1.15× the floor.
  const cpuTargets = (scenario) => {
    for (const server of plugins) {
      check(server, scenario, 'CPU/msg', 'cpuPerMsgUs', MAP, 1.0)
      check(server, scenario, 'CPU/msg', 'cpuPerMsgUs', FLOOR, 1.15)
    }
  }
  for (const { module, ids } of present(results, scenarios)) module.targets?.({ ids, results, check, plugins, memoryTargets, cpuTargets })
  return out
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
  const against = { [FLOOR]: 'floor', [MAP]: 'Fastify + Map' }
  return targets.map((t) => `${t.met ? '✅' : '❌'} ${t.what} ${fmt(t.ratio, 2)}× ${against[t.reference] ?? 'memory'} (≤ ${t.limit}×)`).join('<br>')
}

function label (results, id) {
  return results.servers.find((s) => s.id === id)?.label ?? id
}

function skippedRow (results, row, columns) {
  return `| ${label(results, row.server)} | ${row.skipped} |${' |'.repeat(columns - 2)}`
}

/** The results as Markdown: header (machine, Node, method), one table per scenario, then the targets. */
export function renderMarkdown (results, scenarios) {
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
  lines.push('- **Servers:** ' + results.servers.map((s) => `*${s.label}*${s.skipped ? ` (${s.skipped})` : ''}`).join(', ') + '. The node:http floor and the Fastify + Map route are the references for the memory store\'s targets; the memory store is the reference for Redis and metrics.')
  lines.push('')

  const view = {
    results,
    method,
    rowsOf,
    fmt,
    kib,
    redisCell,
    label: (id) => label(results, id),
    skippedRow: (row, columns) => skippedRow(results, row, columns),
    targetCell: (row) => targetCell(results, row)
  }
  for (const { module, ids } of present(results, scenarios)) lines.push(...(module.markdown?.({ ...view, ids }) ?? []))

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
export function renderSvg (results, scenarios) {
  const metrics = []
  for (const scenario of results.scenarios) {
    for (const bar of moduleOf(scenarios, scenario)?.chart?.(scenario) ?? []) metrics.push({ scenario, ...bar })
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
