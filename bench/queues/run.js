#!/usr/bin/env node
// The work-queue bench (`npm run bench:queues`, `npm run bench:queues -- --quick`; see bench/README.md).
//
// Two workloads, each against four systems in one run: a short-polling worker (GET /next_job, sleeping after
// an empty answer), LongPollWorker on the plugin's MemoryQueueStore, LongPollWorker on RedisQueueStore, and a
// BullMQ Worker on the same Redis.
//   sequential — jobs submitted one after another, each shortly after the worker started the last: pickup
//                latency (submit → handler starts), with 1 and with many waiting workers;
//   concurrent — 20 submitters of 100 jobs each, each submitting its next job once its last one started: jobs/s.
// Servers and workers run in forked processes of their own, so their CPU is read from themselves; Redis's CPU
// and commands come from its INFO. Results: bench/results/queues-<date>.{json,md} (a --quick run writes to
// bench/results/tmp/ unless --out is given). Process supervision, redis-server and measuring: bench/lib/.
//
//   node bench/queues/run.js [--quick] [--out DIR] [--systems shortpoll,longpoll-memory,longpoll-redis,bullmq]
import http from 'node:http'
import path from 'node:path'
import process from 'node:process'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { loadAverage, outputDir, parseArgs, runHeader, runStamp } from '../lib/config.js'
import { measure } from '../lib/measure.js'
import { call, forkChild, sleep, stopChild, supervise, tag, waitReady } from '../lib/processes.js'
import { redisServerInstalled, startRedis } from '../lib/redis-server.js'
import { writeResults } from '../lib/results.js'
import { cpuDelta, percentiles, round } from '../lib/stats.js'
import { evaluateTargets, renderMarkdown } from './report.js'

const here = path.dirname(fileURLToPath(import.meta.url))
const argv = process.argv.slice(2)
const args = parseArgs(argv)
const quick = args.flag('quick')
const { startedAt, stamp } = runStamp()
const { outDir, isResultsDir } = outputDir(args, quick)

const config = quick
  ? { sequentialJobs: 20, submitters: 5, jobsPerSubmitter: 10, waitingWorkers: [1, 5], concurrentCapMs: 15_000, warmupJobs: 10 }
  : { sequentialJobs: 100, submitters: 20, jobsPerSubmitter: 100, waitingWorkers: [1, 20], concurrentCapMs: 60_000, warmupJobs: 50 }
config.shortPollSleepMs = { sequential: 100, concurrent: 2000 } // the sleeps the short-polling worker was measured with
config.sequentialGapMs = 20 // sequential workload: the pause between a job's start and the next submit (not measured)
config.concurrency = 20 // concurrent workload: one worker running up to 20 jobs at once
config.jobTimeoutMs = 15_000 // a job not started this long after it was submitted counts as lost

const SYSTEMS = [
  { id: 'shortpoll', label: 'short-polling worker (GET /next_job, sleep after an empty answer)', server: 'shortpoll', worker: 'shortpoll' },
  { id: 'longpoll-memory', label: 'LongPollWorker, MemoryQueueStore', server: 'memory', worker: 'longpoll' },
  { id: 'longpoll-redis', label: 'LongPollWorker, RedisQueueStore (+ RedisNotifier)', server: 'redis', worker: 'longpoll', redis: true },
  { id: 'bullmq', label: 'BullMQ Worker, same Redis', server: null, worker: 'bullmq', redis: true }
]
const systemFilter = args.list('systems')
const systems = SYSTEMS.filter((s) => systemFilter === undefined || systemFilter.includes(s.id))

// ------------------------------------------------------------------------------------ progress and cleanup
const t0 = Date.now()
function log (message) {
  process.stderr.write(`[bench:queues ${((Date.now() - t0) / 1000).toFixed(1).padStart(6)}s] ${message}\n`)
}
supervise(log)
const now = () => performance.timeOrigin + performance.now()
let redis = null

const fork = (file, args, env = {}) => forkChild(file, args, { env: { ...process.env, NODE_ENV: 'production', ...env } })

// ----------------------------------------------------------------------------------------------- submitting
/** Records, per job number, when it was submitted and when (and how often) a worker started it. */
function tracker () {
  const jobs = new Map()
  const waiters = new Map()
  return {
    jobs,
    submitted (n, at) { jobs.set(n, { sentAt: at, startedAt: undefined, starts: 0 }) },
    started (n, at) {
      const job = jobs.get(n)
      if (job === undefined) return
      if (job.starts++ === 0) job.startedAt = at
      waiters.get(n)?.()
      waiters.delete(n)
    },
    /** Resolves true once job n has started, false after `ms`. */
    wait (n, ms) {
      if ((jobs.get(n)?.starts ?? 0) > 0) return Promise.resolve(true)
      return new Promise((resolve) => {
        const timer = setTimeout(() => { waiters.delete(n); resolve(false) }, ms)
        waiters.set(n, () => { clearTimeout(timer); resolve(true) })
      })
    }
  }
}

// Raw http.request over a keep-alive agent, like the main bench's clients: the load generator's own cost
// (fetch's is about half a millisecond a request) stays out of the pickup latency it measures.
const agent = new http.Agent({ keepAlive: true, maxSockets: 64 })

function postJson (url, body) {
  return new Promise((resolve, reject) => {
    const request = http.request(url, { method: 'POST', agent, headers: { 'content-type': 'application/json' } }, (response) => {
      let text = ''
      response.setEncoding('utf8')
      response.on('data', (chunk) => { text += chunk })
      response.on('end', () => {
        if (response.statusCode === 201 || response.statusCode === 200) resolve()
        else reject(new Error(`POST ${url} answered ${response.statusCode}: ${text}`))
      })
    })
    request.on('error', reject)
    request.end(JSON.stringify(body))
  })
}

/** `submit(n)` resolves once job n is stored (the enqueue answered 2xx, or BullMQ's add resolved). */
async function submitter (system, base, queueName) {
  if (system.worker === 'bullmq') {
    const { Queue } = await import('bullmq')
    const { hostname, port } = new URL(redis.url)
    const queue = new Queue(queueName, { connection: { host: hostname, port: Number(port) } })
    await queue.waitUntilReady()
    return { submit: (n) => queue.add('job', { n }), close: () => queue.close() }
  }
  const url = system.server === 'shortpoll' ? `${base}/jobs` : `${base}/queues/${queueName}/jobs`
  return { submit: (n) => postJson(url, { data: { n } }), close: async () => {} }
}

/**
 * One job at a time, each submitted `sequentialGapMs` after the last one started: by then every system's worker
 * is back to waiting (a short-polling worker asleep after its empty re-poll, a LongPollWorker's next claim held,
 * a BullMQ worker blocked on Redis), which is what pickup latency is about. Without the gap, the next submit races
 * the worker's own re-poll or re-claim, and what is measured is that race.
 */
async function sequential (submit, track, numbers, gapMs = config.sequentialGapMs) {
  let lost = 0
  for (const n of numbers) {
    track.submitted(n, now())
    await submit(n)
    if (!await track.wait(n, config.jobTimeoutMs)) lost++
    await sleep(gapMs)
  }
  return { lost }
}

async function concurrent (submit, track, submitters, perSubmitter) {
  const deadline = Date.now() + config.concurrentCapMs
  let lost = 0
  let capped = false
  await Promise.all(Array.from({ length: submitters }, async (_, s) => {
    for (let k = 0; k < perSubmitter; k++) {
      if (Date.now() > deadline) {
        capped = true
        return
      }
      const n = s * perSubmitter + k
      track.submitted(n, now())
      await submit(n)
      if (!await track.wait(n, config.jobTimeoutMs)) lost++
    }
  }))
  return { lost, capped }
}

// ---------------------------------------------------------------------------------------------- measuring
/** The server's and the worker's CPU (µs, each read by the process itself), the plugin's stats, worker errors. */
async function snapshot (server, worker) {
  const [serverStats, workerStats] = await Promise.all([
    server === null ? null : call(server.child, { cmd: 'stats' }, 60_000),
    call(worker, { cmd: 'stats' }, 60_000)
  ])
  return {
    cpuUs: serverStats === null ? null : cpuDelta({ user: 0, system: 0 }, serverStats.cpu),
    workerCpuUs: cpuDelta({ user: 0, system: 0 }, workerStats.cpu),
    plugin: serverStats?.plugin ?? null,
    workerErrors: workerStats.errors
  }
}

/** One workload against one system: a fresh worker process, a warm-up, then the measured jobs. */
async function measureRun (system, server, run) {
  const queueName = `bench-${run.workload}-${run.workers}-${tag()}`
  const worker = fork(path.join(here, 'worker.js'), [])
  await waitReady(worker, `${system.id} worker`)
  const track = tracker()
  worker.on('message', (msg) => { if (msg?.type === 'started') track.started(msg.n, msg.at) })
  const sleepMs = config.shortPollSleepMs[run.workload]
  await call(worker, { cmd: 'start', kind: system.worker, base: server?.base, queue: queueName, workers: run.workers, concurrency: run.concurrency, sleepMs, redisUrl: redis?.url })
  const { submit, close } = await submitter(system, server?.base, queueName)
  try {
    // Warm-up on negative job numbers (not measured), submitted at once (a short-polling worker takes them in one
    // drain instead of one sleep each), then let every waiting worker get back to waiting.
    const warm = Array.from({ length: config.warmupJobs }, (_, i) => -1 - i)
    for (const n of warm) {
      track.submitted(n, now())
      await submit(n)
    }
    await Promise.all(warm.map((n) => track.wait(n, config.jobTimeoutMs)))
    await sleep(system.worker === 'shortpoll' ? sleepMs + 100 : 300)
    let began
    const m = await measure({ stats: () => snapshot(server, worker), redis: system.redis ? redis : null, gc: false }, () => {
      began = now()
      return run.workload === 'sequential'
        ? sequential(submit, track, Array.from({ length: config.sequentialJobs }, (_, i) => i))
        : concurrent(submit, track, config.submitters, config.jobsPerSubmitter)
    })
    const { result: outcome, after, commands } = m

    const measured = [...track.jobs].filter(([n]) => n >= 0).map(([, job]) => job)
    const done = measured.filter((job) => job.starts > 0)
    const latencies = done.map((job) => job.startedAt - job.sentAt)
    const elapsedMs = Math.max(...done.map((job) => job.startedAt)) - began
    const jobs = done.length
    const serverCpuUs = m.cpuUs
    const workerCpuUs = m.delta('workerCpuUs')
    const redisUs = m.redisUs
    const perJob = (us) => (us === null ? null : round(us / Math.max(1, jobs), 1))
    // What the queue machinery costs per job: the server process (+ Redis) for HTTP workers; for BullMQ, whose
    // queue logic runs in its worker, the worker process + Redis.
    const queueSideUs = system.worker === 'bullmq' ? workerCpuUs + redisUs : serverCpuUs + (redisUs ?? 0)
    const row = {
      system: system.id,
      workload: run.workload,
      workers: run.workers,
      concurrency: run.concurrency,
      shortPollSleepMs: system.worker === 'shortpoll' ? sleepMs : null,
      submitted: measured.length,
      jobs,
      lost: outcome.lost,
      duplicates: measured.filter((job) => job.starts > 1).length,
      capped: outcome.capped === true ? `stopped submitting after ${config.concurrentCapMs / 1000} s` : null,
      durationS: round(elapsedMs / 1000, 3),
      jobsPerS: run.workload === 'concurrent' ? round(jobs / (elapsedMs / 1000), 1) : null, // sequential: paced by the gaps
      latencyMs: percentiles(latencies),
      serverCpuPerJobUs: perJob(serverCpuUs),
      redisCpuPerJobUs: perJob(redisUs),
      workerCpuPerJobUs: perJob(workerCpuUs),
      queueSideCpuPerJobUs: perJob(queueSideUs),
      redisCommandsPerJob: commands === null ? null : round(commands.total / Math.max(1, jobs), 2),
      redisScriptsPerJob: commands === null ? null : round(commands.scripts / Math.max(1, jobs), 2),
      redisCommandsByName: commands?.byName ?? null,
      workerErrors: after.workerErrors,
      plugin: after.plugin
    }
    log(`${system.id} ${run.workload} (${run.workers} worker${run.workers === 1 ? '' : 's'}): ${jobs}/${measured.length} jobs, p50 ${row.latencyMs.p50} ms, p99 ${row.latencyMs.p99} ms, ${row.jobsPerS ?? '—'} jobs/s, queue-side CPU ${row.queueSideCpuPerJobUs} µs/job${commands === null ? '' : `, ${row.redisCommandsPerJob} Redis commands/job`}`)
    return row
  } finally {
    await close()
    await stopChild(worker)
  }
}

// ------------------------------------------------------------------------------------------------------- main
async function startServer (kind) {
  const child = fork(path.join(here, 'server.js'), [kind], { REDIS_URL: redis?.url ?? '' })
  const ready = await waitReady(child, `${kind} server`)
  return { child, base: `http://127.0.0.1:${ready.port}` }
}

async function main () {
  const loadAtStart = loadAverage()
  const lib = await import('fastify-longpoll')
  const unavailable = (system) => {
    if (system.redis && !redisServerInstalled()) return 'not available: redis-server is not installed'
    if (system.server === 'redis' && typeof lib.RedisQueueStore !== 'function') return 'not available: the built package has no RedisQueueStore (npm run build?)'
    if (system.worker === 'longpoll' && typeof lib.MemoryQueueStore !== 'function') return 'not available: the built package has no work queues (npm run build?)'
    return null
  }
  if (systems.some((s) => s.redis && unavailable(s) === null)) {
    redis = await startRedis()
    log(`redis-server ${redis.url}`)
  }
  const runs = [
    ...config.waitingWorkers.map((workers) => ({ workload: 'sequential', workers, concurrency: 1 })),
    { workload: 'concurrent', workers: 1, concurrency: config.concurrency }
  ]
  const rows = []
  for (const system of systems) {
    const skipped = unavailable(system)
    if (skipped !== null) {
      log(`${system.id}: skipped, ${skipped}`)
      for (const run of runs) rows.push({ system: system.id, workload: run.workload, workers: run.workers, skipped })
      continue
    }
    const server = system.server === null ? null : await startServer(system.server)
    try {
      for (const run of runs) rows.push(await measureRun(system, server, run))
    } finally {
      if (server !== null) await stopChild(server.child)
    }
  }
  const results = {
    ...runHeader({ startedAt, loadAtStart, command: `node bench/queues/run.js ${argv.join(' ')}`.trim() }),
    quick,
    method: {
      ...config,
      summary: 'Servers and workers run in forked processes of their own on 127.0.0.1; the bench process submits. Pickup latency is from ' +
        'the moment a submit starts to the moment the worker\'s handler starts (both stamped with performance.timeOrigin + performance.now()). ' +
        'CPU is read by each process itself (process.cpuUsage()) and from Redis\'s INFO cpu; Redis commands from INFO commandstats ' +
        '(reset after the warm-up; what Lua scripts run is counted too).'
    },
    systems: systems.map((s) => ({ id: s.id, label: s.label })),
    rows
  }
  results.targets = evaluateTargets(results)
  const files = { json: JSON.stringify(results, null, 2) + '\n', md: renderMarkdown(results) }
  const base = writeResults({ outDir, kind: 'queues', stamp, files, pointer: isResultsDir })
  log(`wrote ${base}.{json,md}${isResultsDir ? ' (bench/results/README.md points to it)' : ''} in ${results.durationS} s`)
  process.stdout.write(files.md)
}

try {
  await main()
} finally {
  await redis?.stop()
  agent.destroy()
}
