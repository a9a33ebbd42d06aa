// Targets and the Markdown table of a queue bench run, computed from its results JSON alone.

const find = (rows, system, workload, workers) =>
  rows.find((r) => r.system === system && r.workload === workload && (workers === undefined || r.workers === workers) && r.skipped === undefined)

/** The targets of issue 9 item 8. Each: { what, system, value, reference, referenceValue, limit, met }. */
export function evaluateTargets (results) {
  const rows = results.rows
  const out = []
  const fewest = Math.min(...results.method.waitingWorkers)
  const most = Math.max(...results.method.waitingWorkers)
  for (const system of ['longpoll-memory', 'longpoll-redis']) {
    const row = find(rows, system, 'sequential', fewest)
    if (row === undefined) continue
    out.push({ what: 'pickup p50 ≤ 5 ms', system, value: row.latencyMs.p50, reference: null, referenceValue: 5, limit: 1, met: row.latencyMs.p50 <= 5 })
    const bull = find(rows, 'bullmq', 'sequential', fewest)
    if (bull !== undefined) {
      out.push({ what: 'pickup p50 ≤ BullMQ\'s', system, value: row.latencyMs.p50, reference: 'bullmq', referenceValue: bull.latencyMs.p50, limit: 1, met: row.latencyMs.p50 <= bull.latencyMs.p50 })
    }
  }
  for (const workload of ['sequential', 'concurrent']) {
    const row = find(rows, 'longpoll-redis', workload, workload === 'sequential' ? fewest : undefined)
    const bull = find(rows, 'bullmq', workload, workload === 'sequential' ? fewest : undefined)
    if (row === undefined || bull === undefined) continue
    const ratio = row.queueSideCpuPerJobUs / bull.queueSideCpuPerJobUs
    out.push({ what: `${workload}: server + Redis CPU/job ≤ 1.5× BullMQ worker + Redis`, system: 'longpoll-redis', value: row.queueSideCpuPerJobUs, reference: 'bullmq', referenceValue: bull.queueSideCpuPerJobUs, ratio: round(ratio), limit: 1.5, met: ratio <= 1.5 })
  }
  const one = find(rows, 'longpoll-redis', 'sequential', fewest)
  const many = find(rows, 'longpoll-redis', 'sequential', most)
  if (one !== undefined && many !== undefined && most !== fewest) {
    const ratio = many.redisCommandsPerJob / one.redisCommandsPerJob
    out.push({ what: `Redis commands/job with ${most} waiting workers ≈ with ${fewest} (within 10 %)`, system: 'longpoll-redis', value: many.redisCommandsPerJob, reference: `${fewest} worker${fewest === 1 ? '' : 's'}`, referenceValue: one.redisCommandsPerJob, ratio: round(ratio), limit: 1.1, met: ratio <= 1.1 })
  }
  return out
}

function round (x, digits = 2) {
  if (x === null || x === undefined || !Number.isFinite(x)) return x ?? null
  const f = 10 ** digits
  return Math.round(x * f) / f
}

const fmt = (x, digits = 1) => (x === null || x === undefined || Number.isNaN(x) ? '—' : Number(x).toLocaleString('en-US', { maximumFractionDigits: digits }))

export function renderMarkdown (results) {
  const label = (id) => results.systems.find((s) => s.id === id)?.label ?? id
  const lines = [
    `# Work-queue bench — ${results.date}${results.quick ? ' (quick smoke run: numbers mean nothing)' : ''}`,
    '',
    `Node ${results.node}, ${results.machine.cpu} × ${results.machine.cores}, ${results.machine.os}; load average ${results.loadAverage.atStart.join(' / ')} at start, ${results.loadAverage.atEnd.join(' / ')} at end; ${results.durationS} s. Command: \`${results.command}\`.`,
    '',
    results.method.summary,
    '',
    `- **sequential**: ${results.method.sequentialJobs} jobs submitted one after another (each ${results.method.sequentialGapMs} ms after the worker started the last, so that every worker is back to waiting), with ${results.method.waitingWorkers.join(' and ')} waiting workers (concurrency 1 each); the short-polling worker sleeps ${results.method.shortPollSleepMs.sequential} ms after an empty answer.`,
    `- **concurrent**: ${results.method.submitters} submitters of ${results.method.jobsPerSubmitter} jobs each, each submitting its next job once its last one started; one worker with concurrency ${results.method.concurrency}; the short-polling worker sleeps ${results.method.shortPollSleepMs.concurrent / 1000} s after an empty answer; submitting stops after ${results.method.concurrentCapMs / 1000} s.`,
    '- *queue-side CPU/job*: the server process + Redis for the HTTP workers; BullMQ\'s worker process + Redis for BullMQ (its queue logic runs in the worker). *worker CPU/job*: the worker process (for BullMQ the same figure as its share of queue-side CPU).',
    '',
    '| system | workload | waiting workers | jobs | pickup p50 | p99 | max | jobs/s | server CPU/job | Redis CPU/job | queue-side CPU/job | worker CPU/job | Redis cmds/job | scripts/job | lost | dup |',
    '|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|'
  ]
  for (const r of results.rows) {
    if (r.skipped !== undefined) {
      lines.push(`| ${r.system} | ${r.workload} | ${r.workers} | ${r.skipped} |||||||||||||`)
      continue
    }
    const us = (x) => (x === null ? '—' : `${fmt(x, 0)} µs`)
    lines.push(`| ${r.system} | ${r.workload} | ${r.workers} | ${r.jobs}/${r.submitted}${r.capped === null ? '' : ' (capped)'} | ${fmt(r.latencyMs.p50, 2)} ms | ${fmt(r.latencyMs.p99, 2)} ms | ${fmt(r.latencyMs.max, 1)} ms | ${fmt(r.jobsPerS)} | ${us(r.serverCpuPerJobUs)} | ${us(r.redisCpuPerJobUs)} | ${us(r.queueSideCpuPerJobUs)} | ${us(r.workerCpuPerJobUs)} | ${fmt(r.redisCommandsPerJob, 2)} | ${fmt(r.redisScriptsPerJob, 2)} | ${r.lost} | ${r.duplicates} |`)
  }
  lines.push('', 'Systems:', '')
  for (const s of results.systems) lines.push(`- \`${s.id}\`: ${label(s.id)}`)
  lines.push('', '## Targets', '')
  if (results.targets.length === 0) lines.push('(none evaluated: a system was skipped)')
  for (const t of results.targets) {
    const against = t.reference === null ? '' : ` (${t.reference}: ${fmt(t.referenceValue, 2)}${t.ratio === undefined ? '' : `, ratio ${t.ratio}`})`
    lines.push(`- ${t.met ? 'met' : '**missed**'} — ${t.system}: ${t.what}: ${fmt(t.value, 2)}${against}`)
  }
  return lines.join('\n') + '\n'
}
