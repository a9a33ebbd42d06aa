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
// and commands come from its INFO. Results: bench/results/queues-<date>.{json,md} and queues-latest.{json,md}
// (a --quick run writes to bench/results/tmp/ unless --out is given).
//
//   node bench/queues/run.js [--quick] [--out DIR] [--systems shortpoll,longpoll-memory,longpoll-redis,bullmq]
import { fork, execFileSync } from 'node:child_process'
import { mkdirSync, writeFileSync, copyFileSync } from 'node:fs'
import http from 'node:http'
import os from 'node:os'
import path from 'node:path'
import process from 'node:process'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { cpuDelta, percentiles, round } from '../lib/stats.js'
import { startRedis, redisCpuUs, redisCommands } from './redis.js'
import { evaluateTargets, renderMarkdown } from './report.js'

const here = path.dirname(fileURLToPath(import.meta.url))
const argv = process.argv.slice(2)
const flag = (name) => argv.includes(`--${name}`)
const value = (name) => {
  const i = argv.indexOf(`--${name}`)
  return i === -1 ? undefined : argv[i + 1]
}
const quick = flag('quick')
const startedAt = new Date()
const stamp = startedAt.toISOString().slice(0, 19).replace(/:/g, '-') + 'Z'
const resultsDir = path.resolve(here, '..', 'results')
const outDir = path.resolve(value('out') ?? (quick ? path.join(resultsDir, 'tmp') : resultsDir))
const writeLatest = !quick && value('out') === undefined

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
const systemFilter = value('systems')?.split(',')
const systems = SYSTEMS.filter((s) => systemFilter === undefined || systemFilter.includes(s.id))

// ------------------------------------------------------------------------------------ progress and cleanup
const t0 = Date.now()
function log (message) {
  process.stderr.write(`[bench:queues ${((Date.now() - t0) / 1000).toFixed(1).padStart(6)}s] ${message}\n`)
}
const now = () => performance.timeOrigin + performance.now()
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
const tag = () => Math.random().toString(36).slice(2, 8)

const children = new Set()
let redis = null
function killAll () {
  for (const child of children) {
    try { child.kill('SIGKILL') } catch {}
  }
  children.clear()
}
process.on('exit', killAll)
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(signal, () => {
    killAll()
    redis?.stop()
    process.exit(130)
  })
}

function withTimeout (promise, ms, what) {
  let timer
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise((_resolve, reject) => { timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms) })
  ])
}

let nextCallId = 1
function forkChild (file, args, env = {}) {
  const child = fork(file, args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], env: { ...process.env, NODE_ENV: 'production', ...env } })
  children.add(child)
  child.pending = new Map()
  child.on('message', (msg) => {
    const waiter = child.pending.get(msg?.id)
    if (waiter === undefined) return
    child.pending.delete(msg.id)
    if (msg.type === 'failed') waiter.reject(new Error(msg.message))
    else waiter.resolve(msg.result)
  })
  child.on('exit', (code, signal) => {
    children.delete(child)
    for (const waiter of child.pending.values()) waiter.reject(new Error(`${path.basename(file)} exited (${code ?? signal})`))
    child.pending.clear()
  })
  return child
}

function call (child, msg, ms = 60_000) {
  const id = nextCallId++
  const promise = new Promise((resolve, reject) => {
    child.pending.set(id, { resolve, reject })
    child.send({ ...msg, id })
  })
  return withTimeout(promise, ms, `${msg.cmd} on pid ${child.pid}`)
}

function waitReady (child, what) {
  return withTimeout(new Promise((resolve, reject) => {
    const onMessage = (msg) => {
      if (msg?.type === 'ready') { child.off('message', onMessage); resolve(msg) }
      if (msg?.type === 'error') { child.off('message', onMessage); reject(new Error(`${what}: ${msg.message}`)) }
    }
    child.on('message', onMessage)
    child.once('exit', (code) => reject(new Error(`${what} exited with ${code} before it was ready`)))
  }), 30_000, `${what} to start`)
}

async function stopChild (child) {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise((resolve) => child.once('exit', resolve))
  await call(child, { cmd: 'stop' }, 20_000).catch(() => {})
  if (!await Promise.race([exited.then(() => true), sleep(5_000).then(() => false)])) child.kill('SIGKILL')
}

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
async function snapshot (server, worker) {
  const [serverStats, workerStats, redisUs] = await Promise.all([
    server === null ? null : call(server.child, { cmd: 'stats' }),
    call(worker, { cmd: 'stats' }),
    redis === null ? 0 : redisCpuUs(redis.client)
  ])
  return { serverCpu: serverStats?.cpu ?? null, plugin: serverStats?.plugin ?? null, workerCpu: workerStats.cpu, workerErrors: workerStats.errors, redisUs }
}

async function measure (system, server, run) {
  const queueName = `bench-${run.workload}-${run.workers}-${tag()}`
  const worker = forkChild(path.join(here, 'worker.js'), [])
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
    if (redis !== null) await redis.client.config('RESETSTAT')
    const before = await snapshot(server, worker)
    const began = now()
    const outcome = run.workload === 'sequential'
      ? await sequential(submit, track, Array.from({ length: config.sequentialJobs }, (_, i) => i))
      : await concurrent(submit, track, config.submitters, config.jobsPerSubmitter)
    const after = await snapshot(server, worker)
    const commands = redis === null || !system.redis ? null : await redisCommands(redis.client)

    const measured = [...track.jobs].filter(([n]) => n >= 0).map(([, job]) => job)
    const done = measured.filter((job) => job.starts > 0)
    const latencies = done.map((job) => job.startedAt - job.sentAt)
    const elapsedMs = Math.max(...done.map((job) => job.startedAt)) - began
    const jobs = done.length
    const serverCpuUs = after.serverCpu === null ? null : cpuDelta(before.serverCpu, after.serverCpu)
    const workerCpuUs = cpuDelta(before.workerCpu, after.workerCpu)
    const redisUs = system.redis ? after.redisUs - before.redisUs : null
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
  const child = forkChild(path.join(here, 'server.js'), [kind], { REDIS_URL: redis?.url ?? '' })
  const ready = await waitReady(child, `${kind} server`)
  return { child, base: `http://127.0.0.1:${ready.port}` }
}

function redisServerInstalled () {
  try {
    execFileSync('sh', ['-c', 'command -v redis-server'], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

async function main () {
  const loadAtStart = os.loadavg().map((x) => round(x, 2))
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
      for (const run of runs) rows.push(await measure(system, server, run))
    } finally {
      if (server !== null) await stopChild(server.child)
    }
  }
  const cpus = os.cpus()
  const results = {
    date: startedAt.toISOString(),
    quick,
    command: `node bench/queues/run.js ${argv.join(' ')}`.trim(),
    durationS: round((Date.now() - t0) / 1000, 1),
    machine: { cpu: cpus[0]?.model?.trim() ?? 'unknown', cores: cpus.length, os: `${os.type()} ${os.release()} ${os.arch()}` },
    loadAverage: { atStart: loadAtStart, atEnd: os.loadavg().map((x) => round(x, 2)) },
    node: process.version,
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
  mkdirSync(outDir, { recursive: true })
  const files = { json: JSON.stringify(results, null, 2) + '\n', md: renderMarkdown(results) }
  for (const [ext, text] of Object.entries(files)) {
    const file = path.join(outDir, `queues-${stamp}.${ext}`)
    writeFileSync(file, text)
    if (writeLatest) copyFileSync(file, path.join(outDir, `queues-latest.${ext}`))
  }
  log(`wrote ${path.join(outDir, `queues-${stamp}`)}.{json,md}${writeLatest ? ' and queues-latest.{json,md}' : ''} in ${results.durationS} s`)
  process.stdout.write(files.md)
}

try {
  await main()
} finally {
  await redis?.stop()
  agent.destroy()
  killAll()
}
