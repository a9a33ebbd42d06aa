// The whole pattern with one command: the job API (server.js), two worker processes (worker.js) that claim jobs
// over HTTP with LongPollWorker, and a client that submits a job and follows its channel with a long poll —
// and, for comparison, the old way, GET /jobs/:id every 2 s. Mid-job, the worker running the job is killed
// (SIGKILL); the other takes the job over once the lease passes, and finishes it from where it got to.
//
//   node examples/job-status/run.js                                 # a 25 s job, 10 reports, killed after step 4
//   node examples/job-status/run.js --kill-after 0                  # nobody killed
//   node examples/job-status/run.js --duration 60 --steps 10 --lease 10 --interval 2
import { fork } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { parseArgs } from 'node:util'
import { fileURLToPath } from 'node:url'
import { LongPollClient } from 'fastify-longpoll/client'
import { build } from './server.js'

const WORKER = fileURLToPath(new URL('./worker.js', import.meta.url))

/**
 * Runs the demo once and resolves to what it measured: `{ job, longPoll, shortPoll, workers, starts,
 * pickupMs, killed, takeoverMs }`. `killAfter`: kill the worker that reported this step (0: kill nobody).
 */
export async function run ({ durationMs = 25_000, steps = 10, leaseMs = 4_000, workers = 2, killAfter = 4, intervalMs = 2_000, log = () => {} } = {}) {
  const token = randomBytes(16).toString('hex')
  const app = await build({ logger: false, workerToken: token, lease: leaseMs })
  const api = await app.listen({ port: 0, host: '127.0.0.1' })
  const children = new Map()
  const started = Date.now()
  const at = () => `${((Date.now() - started) / 1000).toFixed(2).padStart(6)} s`
  try {
    const starts = []
    const requests = {}
    await Promise.all(Array.from({ length: workers }, (_, i) => startWorker(`worker-${i + 1}`, { api, token, leaseMs }, children, (event) => {
      if (event.type === 'started') {
        starts.push(event)
        log(`${at()}  ${event.worker} started the job (attempt ${event.attempt})`)
      }
      if (event.type === 'requests') requests[event.worker] = event.counts
    }, (line) => log(`${at()}  ${line}`))))
    log(`${at()}  API ${api}; ${workers} workers waiting on the "jobs" queue (lease ${leaseMs / 1000} s)`)

    const submittedAt = Date.now()
    const response = await fetch(`${api}/jobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ durationMs, steps })
    })
    if (response.status !== 202) throw new Error(`POST /jobs answered ${response.status}: ${await response.text()}`)
    const job = await response.json()
    log(`${at()}  POST /jobs -> 202 ${JSON.stringify(job)}`)

    let killed = null
    const onReport = (data) => {
      if (killAfter > 0 && killed === null && data.step === killAfter && children.has(data.worker)) {
        killed = { worker: data.worker, at: Date.now() }
        children.get(data.worker).kill('SIGKILL')
        log(`${at()}  killed ${data.worker} (SIGKILL) after step ${data.step}: the job waits for its lease to pass`)
      }
    }
    const [longPoll, shortPoll] = await Promise.all([
      followWithLongPoll(api, job, (data, line) => { log(`${at()}  long poll   ${line}`); onReport(data) }),
      followWithShortPoll(api, job, intervalMs, (line) => log(`${at()}  short poll  ${line}`))
    ])
    const takeover = killed === null ? undefined : starts.find((s) => s.at >= killed.at)
    return {
      job,
      longPoll,
      shortPoll,
      starts,
      requests,
      pickupMs: starts[0] === undefined ? null : starts[0].at - submittedAt,
      killed,
      takeoverMs: takeover === undefined ? null : takeover.at - killed.at,
      takenOverBy: takeover?.worker ?? null
    }
  } finally {
    await Promise.all([...children.values()].map(stopWorker))
    await app.close()
  }
}

async function startWorker (name, { api, token, leaseMs }, children, onEvent, log) {
  const child = fork(WORKER, [], {
    env: { ...process.env, API_URL: api, WORKER_TOKEN: token, WORKER_NAME: name, LEASE_MS: String(leaseMs), CONCURRENCY: '1' },
    stdio: ['ignore', 'pipe', 'inherit', 'ipc']
  })
  children.set(name, child)
  child.once('exit', () => children.delete(name))
  child.stdout.setEncoding('utf8')
  child.stdout.on('data', (text) => { for (const line of text.split('\n')) if (line !== '') log(line) })
  child.on('message', onEvent)
  await new Promise((resolve, reject) => {
    child.on('message', (msg) => { if (msg?.type === 'ready') resolve() })
    child.once('exit', (code) => reject(new Error(`${name} exited (${code}) before it was ready`)))
  })
}

/** SIGTERM: the worker finishes what it holds (nothing, by now) and exits. */
async function stopWorker (child) {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise((resolve) => child.once('exit', resolve))
  child.kill('SIGTERM')
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000)
  await exited
  clearTimeout(timer)
}

async function followWithLongPoll (api, job, onReport) {
  const side = tally()
  // The client's `fetch` option counts every request it makes, retries included.
  const countingFetch = (...args) => {
    side.requests++
    return fetch(...args)
  }
  const client = new LongPollClient({ url: `${api}/lp`, channel: job.channel, fetch: countingFetch })
  for await (const { data } of client) {
    onReport(data, side.saw(data))
    if (data.state === 'done') break // ends the iteration: no further poll
  }
  return side.result()
}

async function followWithShortPoll (api, job, intervalMs, log) {
  const side = tally()
  for (;;) {
    side.requests++
    const snapshot = await (await fetch(`${api}${job.status}`)).json()
    if (snapshot.step !== side.lastStep) log(side.saw(snapshot))
    if (snapshot.state === 'done') return side.result()
    await new Promise((resolve) => setTimeout(resolve, intervalMs))
  }
}

/** Requests made, and each report seen: its step, who made it, and how long after it was reported it was seen. */
function tally () {
  const began = Date.now()
  const delays = []
  const steps = []
  const workers = []
  return {
    requests: 0,
    lastStep: undefined,
    saw (snapshot) {
      const delay = Date.now() - Math.max(snapshot.updatedAt, began)
      delays.push(delay)
      steps.push(snapshot.step)
      workers.push(snapshot.worker ?? 'api')
      this.lastStep = snapshot.step
      return `step ${String(snapshot.step).padStart(2)} ${snapshot.state.padEnd(7)} ${String(snapshot.progress).padStart(3)}%  by ${(snapshot.worker ?? 'the API').padEnd(8)}  seen ${delay} ms after it was reported (request #${this.requests})`
    },
    result () {
      return {
        requests: this.requests,
        updates: steps.length,
        steps,
        workers,
        meanDelayMs: Math.round(delays.reduce((a, b) => a + b, 0) / delays.length),
        maxDelayMs: Math.max(...delays)
      }
    }
  }
}

export function table (result, { steps, intervalMs }) {
  const total = steps + 1 // "queued", then one report per step
  const row = (name, side) =>
    `| ${name.padEnd(22)} | ${String(side.requests).padStart(8)} | ${`${side.updates} of ${total}`.padStart(12)} | ${`${side.meanDelayMs} ms`.padStart(10)} | ${`${side.maxDelayMs} ms`.padStart(10)} |`
  const lines = [
    '| follower               | requests | updates seen | mean delay |  max delay |',
    '|------------------------|---------:|-------------:|-----------:|-----------:|',
    row('long poll', result.longPoll),
    row(`short poll every ${intervalMs / 1000} s`, result.shortPoll),
    '',
    '| worker   | claim | extend | ack | nack | read | progress |',
    '|----------|------:|-------:|----:|-----:|-----:|---------:|'
  ]
  for (const [name, c] of Object.entries(result.requests).sort()) {
    lines.push(`| ${name.padEnd(8)} | ${[c.claim, c.extend, c.ack, c.nack, c.read, c.progress].map((n, i) => String(n ?? 0).padStart([5, 6, 3, 4, 4, 8][i])).join(' | ')} |`)
  }
  lines.push('')
  lines.push(`pickup (POST /jobs → a worker starts the job): ${result.pickupMs} ms`)
  if (result.killed !== null) lines.push(`takeover (${result.killed.worker} killed → ${result.takenOverBy ?? 'nobody'} starts the job again): ${result.takeoverMs ?? '—'} ms`)
  return lines.join('\n')
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { values } = parseArgs({
    options: {
      duration: { type: 'string', default: '25' },
      steps: { type: 'string', default: '10' },
      lease: { type: 'string', default: '4' },
      workers: { type: 'string', default: '2' },
      'kill-after': { type: 'string', default: '4' },
      interval: { type: 'string', default: '2' }
    }
  })
  const settings = {
    durationMs: Math.round(Number(values.duration) * 1000),
    steps: Number(values.steps),
    leaseMs: Math.round(Number(values.lease) * 1000),
    workers: Number(values.workers),
    killAfter: Number(values['kill-after']),
    intervalMs: Math.round(Number(values.interval) * 1000)
  }
  const result = await run({ ...settings, log: (line) => console.log(line) })
  console.log(`\n${table(result, settings)}`)
}
