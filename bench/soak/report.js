// The soak's Markdown report, from the results object bench/soak.js writes as JSON.
import { FLOORS, NOISE_SIGMAS } from './analysis.js'

const MiB = 1024 * 1024
const BYTES = new Set(['heapUsed', 'rss', 'usedMemory'])

function num (x, digits = 1) {
  if (x === null || x === undefined || !Number.isFinite(x)) return '–'
  return x.toFixed(digits)
}

function value (name, x) {
  if (x === null || x === undefined) return '–'
  return BYTES.has(name) ? `${num(x / MiB, 2)} MiB` : num(x, 1)
}

function seriesTable (series) {
  const lines = ['| series | mean | first → last | slope / min | growth over window | bound (3σ or floor) | flat? |', '|---|---:|---:|---:|---:|---:|---|']
  for (const [name, j] of Object.entries(series)) {
    if (j.flat === null) {
      lines.push(`| ${name} | – | – | – | – | – | ${j.why} |`)
      continue
    }
    const bytes = BYTES.has(name)
    const fmt = (x) => bytes ? `${num(x / 1024, 0)} KiB` : num(x, 2)
    lines.push(`| ${name} | ${value(name, j.mean)} | ${value(name, j.first)} → ${value(name, j.last)} | ${fmt(j.slopePerMinute)} | ${fmt(j.growth)} | ${fmt(j.bound)}${j.bound === j.floor ? ' (floor)' : ''} | ${j.flat ? 'yes' : '**no**'} |`)
  }
  return lines.join('\n')
}

export function renderSoak (r) {
  const out = []
  out.push(`# Soak, ${r.minutes} min — ${r.startedAt}`, '')
  out.push(`Node ${r.machine.node}, ${r.machine.cpus} × ${r.machine.cpuModel}; load average ${r.machine.loadAtStart.map((x) => x.toFixed(2)).join(' ')} at start, ${r.machine.loadAtEnd.map((x) => x.toFixed(2)).join(' ')} at end.`, '')
  const L = r.method.load
  out.push(`Per store: ${L.channels} channels × ${L.pollersPerChannel} clients each (${L.channels * L.pollersPerChannel} pollers), ${L.pushesPerSecond} pushes/s, ` +
    `${L.abortsPerSecond} aborts/s, a disconnect every ${L.disconnectEveryMs} ms, every ${L.shortTimeoutEvery}rd poller with timeout ${L.shortTimeoutMs.join('–')} ms; ` +
    `two instances, instance 1 restarted every ${r.method.restartS} s; plugin options ${JSON.stringify(r.method.pluginOptions)}. ` +
    `A sample every ${r.method.sampleS} s (heap after two forced GCs); slopes over the samples after the ${r.method.warmupS} s warm-up, of the long-lived instance 0.`, '')
  out.push(`**Flat** = |slope × window| ≤ max(${NOISE_SIGMAS} σ of the residuals, floor); floors: heap ${FLOORS.heapUsed / MiB} MiB, RSS ${FLOORS.rss / MiB} MiB, ` +
    `Redis used_memory ${FLOORS.redisUsedMemory / 1024} KiB, counts max(2, 5% of the mean).`, '')
  out.push(`**Delivery violations: ${r.violations}**; series not flat: ${r.notFlat.length === 0 ? 'none' : r.notFlat.join(', ')}.`, '')

  out.push('## Delivery', '')
  out.push('| store | acked × pollers | received | lost | duplicates | out of order | never pushed | unexpected gaps | 400 cursor | lost wake-ups | drained | missing, allowed: disconnect / restart / trimmed | retention gaps | slow wake-ups | stalls > 30 s |')
  out.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|')
  for (const s of r.stores) {
    const d = s.delivery
    out.push(`| ${s.store} | ${d.expected} | ${d.received} | ${d.lost} | ${d.duplicates} | ${d.outOfOrder} | ${d.phantoms} | ${d.unexpectedGaps} | ${d.badCursor} | ${d.lostWakeups} | ${d.drained ? 'yes' : '**no**'} | ` +
      `${d.excused.disconnect} / ${d.excused.restart} / ${d.trimmed} | ${d.retentionGaps} | ${d.slowWakeups} | ${d.stalls} |`)
  }
  out.push('')
  out.push('Violations (must be 0): *lost* (acked, never received, not explained by a disconnect, a memory restart or a ' +
    'retention gap), *duplicates*, *out of order*, *never pushed*, *unexpected gaps* (`gap: true` with no disconnect, ' +
    'restart or full retained list to explain it), *400 cursor*, *lost wake-ups* (a 25 s poll answered `timeout` ≥ 5 s ' +
    'after a message for it was acked), *drained: no*. Allowed and counted: messages missing from the tail of a segment ' +
    'that a disconnect or a memory-instance restart ended, messages trimmed by `maxMessages` behind a poller that fell that ' +
    'far behind (its answer says `gap: true`), *slow wake-ups* (a short poll answered `timeout` ≥ 1 s after an ack: a ' +
    'starved process), *stalls* (a poller 30 s without a 200).', '')
  out.push('## How polls ended', '')
  out.push('| store | polls | ok | timeout | disconnected | aborted by client | 503 | other non-200 | refused / reset | pushes acked / failed / skipped | push ms mean / max | disconnects | restarts (outage ms each) |')
  out.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|')
  for (const s of r.stores) {
    const c = s.counts
    const other = Object.entries(c.pollStatus).filter(([k]) => k !== '503').reduce((n, [, v]) => n + v, 0)
    out.push(`| ${s.store} | ${c.polls} | ${c.answered.ok} | ${c.answered.timeout} | ${c.answered.disconnected} | ${c.aborted} | ${c.pollStatus['503'] ?? 0} | ${other} | ${c.pollErrors} | ` +
      `${c.pushAcked} / ${c.pushFailed} / ${c.pushSkippedBusy + c.pushSkippedDown} | ${num(c.pushMsTotal / Math.max(1, c.pushAcked + c.pushFailed), 0)} / ${c.pushMsMax} | ${c.disconnects} | ${s.restarts.filter((x) => x.failed === undefined).length} (${s.restarts.map((x) => x.failed === undefined ? x.outageMs : 'failed').join(', ')}) |`)
  }
  out.push('')
  out.push('Rates per sample interval (mean, min–max per second):', '')
  for (const s of r.stores) {
    out.push(`- ${s.store}: ` + Object.entries(s.rates).map(([k, v]) => v === null ? `${k} –` : `${k} ${num(v.mean)} (${num(v.min)}–${num(v.max)})`).join(', '))
  }
  out.push('')
  for (const s of r.stores) {
    out.push(`## ${s.store}: instance 0`, '', seriesTable(s.series), '')
    if (s.unexpected.length > 0) out.push('Unexpected events (first 20):', '', '```', ...s.unexpected.map((u) => JSON.stringify(u)), '```', '')
  }
  if (r.redis !== undefined) out.push('## redis-server (shared by the two Redis instances)', '', seriesTable(r.redis.series), '')
  return out.join('\n') + '\n'
}
