// The job API: POST /jobs enqueues a job on the `jobs` work queue and answers 202 with the job's channel,
// `job:<id>`. Workers — separate processes (worker.js) — claim jobs through the plugin's queue routes and report
// progress through POST /jobs/:id/progress, which pushes it to the job's channel. Clients follow that channel
// with a long poll (or, the old way, ask GET /jobs/:id every few seconds).
import { randomUUID, timingSafeEqual } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import Fastify from 'fastify'
import longpoll from 'fastify-longpoll'

export const QUEUE = 'jobs'
/** Jobs whose snapshot the API keeps at once (every POST /jobs makes one): past it, 503. */
const MAX_JOBS = 10_000

/**
 * The app, not yet listening. Options: `logger` (default true); `workerToken`, the bearer token workers must
 * send (default: env WORKER_TOKEN, else a development token); `lease`, ms a claimed job is one worker's alone
 * unless it extends (default 10 s); `durationMs` (default 60 s) and `steps` (progress reports, default 10), which
 * a job may set in its POST body.
 */
export async function build ({
  logger = true,
  workerToken = process.env.WORKER_TOKEN ?? 'dev-worker-token',
  lease = 10_000,
  durationMs = 60_000,
  steps = 10
} = {}) {
  const app = Fastify({ logger, forceCloseConnections: true })
  const isWorker = (request) => {
    const given = Buffer.from(request.headers.authorization ?? '')
    const expected = Buffer.from(`Bearer ${workerToken}`)
    return given.length === expected.length && timingSafeEqual(given, expected)
  }
  await app.register(longpoll, {
    prefix: '/lp',
    // Job channels and the one queue; nothing else can be polled or claimed.
    channelPattern: /^(?:job:[0-9a-f-]{36}|jobs)$/,
    lease,
    maxAttempts: 5,
    // Progress is pushed by the progress route below, after it checked the worker's token: the plugin's own push
    // and disconnect routes are off.
    routes: { push: false, disconnect: false },
    // Anyone may follow a job's channel (its id is unguessable); only workers may claim and settle jobs. Jobs
    // are enqueued by POST /jobs below (server-side): the HTTP enqueue refuses everyone.
    authorize: (request, { action }) => action === 'poll' || ((action === 'claim' || action === 'settle') && isWorker(request))
  })

  /** The latest snapshot of every job, for GET /jobs/:id and for a worker resuming a job another one began. */
  const jobs = new Map()
  const timers = new Set()

  app.post('/jobs', {
    schema: {
      body: {
        type: 'object',
        additionalProperties: false,
        properties: {
          durationMs: { type: 'integer', minimum: 1000, maximum: 600_000 },
          steps: { type: 'integer', minimum: 1, maximum: 100 }
        }
      }
    }
  }, async (request, reply) => {
    if (jobs.size >= MAX_JOBS) return reply.code(503).header('retry-after', '10').send({ statusCode: 503, error: 'Service Unavailable', message: 'Too many jobs in progress' })
    const id = randomUUID()
    const job = { id, durationMs, steps, ...request.body }
    // The "queued" report first, so that a client following the channel sees it before any worker's report.
    await report(id, { step: 0, state: 'queued', progress: 0 })
    await app.longpoll.queue(QUEUE).enqueue(job)
    request.log.info({ job: id, durationMs: job.durationMs, steps: job.steps }, 'job queued')
    return reply.code(202).send({ id, channel: channelOf(id), status: `/jobs/${id}` })
  })

  // The short-polling endpoint, and where a worker that takes over a job reads how far it got.
  app.get('/jobs/:id', async (request, reply) => {
    const job = jobs.get(request.params.id)
    if (job === undefined) return reply.code(404).send({ statusCode: 404, error: 'Not Found', message: 'No such job' })
    return job
  })

  app.post('/jobs/:id/progress', {
    schema: {
      body: {
        type: 'object',
        required: ['step', 'state', 'progress', 'attempt', 'worker'],
        additionalProperties: false,
        properties: {
          step: { type: 'integer', minimum: 1, maximum: 100 },
          state: { enum: ['running', 'done'] },
          progress: { type: 'integer', minimum: 0, maximum: 100 },
          attempt: { type: 'integer', minimum: 1 },
          worker: { type: 'string', maxLength: 100 },
          waitedMs: { type: 'number' },
          result: { type: 'object' }
        }
      }
    }
  }, async (request, reply) => {
    if (!isWorker(request)) return reply.code(403).send({ statusCode: 403, error: 'Forbidden', message: 'Workers only' })
    if (!jobs.has(request.params.id)) return reply.code(404).send({ statusCode: 404, error: 'Not Found', message: 'No such job' })
    return await report(request.params.id, request.body)
  })

  /**
   * Pushes a report to the job's channel and keeps it as the job's snapshot. A step already reported (by a
   * worker that lost its lease while another took over, or a retried request) is not pushed again, so followers
   * see every step exactly once, in order. The check and the new snapshot happen in one synchronous turn, so two
   * reports of one step cannot both pass it. (With several API instances, the snapshot would live in a shared
   * store, or the push would carry the step as its idempotency key.)
   */
  async function report (id, update) {
    const previous = jobs.get(id)
    if (previous !== undefined && update.step <= previous.step) return { duplicate: true }
    const snapshot = { id, ...update, updatedAt: Date.now() }
    jobs.set(id, snapshot)
    try {
      await app.longpoll.push(channelOf(id), snapshot)
    } catch (err) {
      // Not stored: the step may be reported again.
      if (jobs.get(id) === snapshot) {
        if (previous === undefined) jobs.delete(id)
        else jobs.set(id, previous)
      }
      throw err
    }
    if (update.state === 'done') {
      const forget = setTimeout(() => { timers.delete(forget); jobs.delete(id) }, 600_000).unref()
      timers.add(forget)
    }
    return { duplicate: false }
  }

  app.addHook('onClose', async () => {
    for (const timer of timers) clearTimeout(timer)
  })
  return app
}

export function channelOf (id) {
  return `job:${id}`
}

/** Builds and listens on `PORT`/`HOST` (default 127.0.0.1:3000). */
export async function start ({
  port = Number(process.env.PORT ?? 3000),
  host = process.env.HOST ?? '127.0.0.1',
  ...options
} = {}) {
  const app = await build({ logger: { level: process.env.LOG_LEVEL ?? 'info' }, ...options })
  const address = await app.listen({ port, host })
  app.log.info(`job-status API: POST ${address}/jobs; workers: API_URL=${address} node examples/job-status/worker.js`)
  for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => app.close().then(() => process.exit(0)))
  return app
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  await start()
}
