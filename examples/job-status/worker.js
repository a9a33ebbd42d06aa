// A worker process: takes jobs from the API's `jobs` queue with LongPollWorker — plain HTTP to the API, no
// broker credentials — and reports each job's progress to the API, which pushes it to the job's channel.
//
//   API_URL=http://127.0.0.1:3000 WORKER_TOKEN=dev-worker-token node examples/job-status/worker.js
//   env CONCURRENCY (jobs at once, default 2), LEASE_MS (default 10000), WORKER_NAME (default worker-<pid>)
import { fileURLToPath } from 'node:url'
import { LongPollWorker } from 'fastify-longpoll/client'

/** The API's queue (server.js). The worker needs nothing of the server's: only its URL and a token. */
const QUEUE = 'jobs'

/**
 * A LongPollWorker that runs simulated jobs: `steps` reports spread over `durationMs`, the last one `done`.
 * Jobs are delivered at least once, so the handler is written to run again safely: it reads how far the job
 * got (a worker may have died mid-job) and carries on from there; a step reported twice is stored once (the
 * API checks). `onEvent` hears `{ type: 'started', job, attempt, at }` and `{ type: 'requests', counts }`.
 */
export function createWorker ({ api, token, name = `worker-${process.pid}`, concurrency = 2, lease = 10_000, log = () => {}, onEvent = () => {} }) {
  const counts = { claim: 0, ack: 0, nack: 0, extend: 0, read: 0, progress: 0 }
  // Counts every request the worker makes, LongPollWorker's own included (through its `fetch` option).
  const countingFetch = (input, init) => {
    const path = new URL(input).pathname
    const kind = path.endsWith('/progress') ? 'progress' : path.startsWith('/jobs/') ? 'read' : path.split('/').at(-1)
    counts[kind] = (counts[kind] ?? 0) + 1
    onEvent({ type: 'requests', counts: { ...counts } })
    return fetch(input, init)
  }
  const headers = { authorization: `Bearer ${token}` }
  async function call (method, path, body) {
    const response = await countingFetch(`${api}${path}`, {
      method,
      headers: body === undefined ? headers : { ...headers, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body)
    })
    if (!response.ok) throw new Error(`${method} ${path} answered ${response.status}: ${await response.text()}`)
    return await response.json()
  }

  return new LongPollWorker({
    url: `${api}/lp`,
    queue: QUEUE,
    concurrency,
    lease,
    headers,
    fetch: countingFetch,
    async handler (job, { signal }) {
      const startedAt = Date.now()
      const { id, durationMs, steps } = job.data
      onEvent({ type: 'started', job: id, attempt: job.attempt, at: startedAt })
      const { step: done } = await call('GET', `/jobs/${id}`)
      log(`${name}: job ${id}, attempt ${job.attempt}: ${done === 0 ? 'starting' : `resuming after step ${done}`} (enqueued ${startedAt - job.time} ms ago)`)
      for (let step = done + 1; step <= steps; step++) {
        await sleep(durationMs / steps, signal)
        // The lease was lost (this worker stalled; another one may have the job): stop, report nothing more.
        if (signal.aborted) throw new Error('lease lost')
        const progress = Math.round((step / steps) * 100)
        await call('POST', `/jobs/${id}/progress`, {
          step,
          progress,
          attempt: job.attempt,
          worker: name,
          ...(step < steps ? { state: 'running' } : { state: 'done', result: { rows: 48_213, url: `/reports/${id}.csv` } })
        })
      }
    },
    onError (err, { operation, job }) {
      log(`${name}: ${operation}${job === undefined ? '' : ` of job ${job.data.id}`} failed: ${err.message}`)
    }
  })
}

function sleep (ms, signal) {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer)
      signal.removeEventListener('abort', done)
      resolve()
    }
    const timer = setTimeout(done, ms)
    signal.addEventListener('abort', done)
  })
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const name = process.env.WORKER_NAME ?? `worker-${process.pid}`
  const worker = createWorker({
    api: (process.env.API_URL ?? 'http://127.0.0.1:3000').replace(/\/+$/, ''),
    token: process.env.WORKER_TOKEN ?? 'dev-worker-token',
    name,
    concurrency: Number(process.env.CONCURRENCY ?? 2),
    lease: Number(process.env.LEASE_MS ?? 10_000),
    log: (line) => console.log(line),
    // Forked by run.js: tell it what happens (it measures pickup and takeover times, and counts requests).
    onEvent: (event) => process.send?.({ ...event, worker: name })
  })
  // SIGTERM/SIGINT: finish the jobs in hand, claim no more, then exit. (SIGKILL is the crash the lease covers.)
  for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => { worker.stop().then(() => process.exit(0)) })
  process.on('disconnect', () => { worker.stop().then(() => process.exit(0)) })
  worker.start().catch((err) => {
    console.error(`${name}: stopped: ${err.message}`)
    process.exit(1)
  })
  process.send?.({ type: 'ready', worker: name })
}
