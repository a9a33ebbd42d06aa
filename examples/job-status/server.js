// A job server: POST /jobs starts a simulated long-running job; an in-process worker reports its progress
// by pushing to the job's channel, `job:<id>`. Clients follow it with a long poll on that channel — or, the
// old way, by asking GET /jobs/:id every few seconds. `compare.js` does both and counts the requests.
import { randomUUID } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import Fastify from 'fastify'
import longpoll from 'fastify-longpoll'

/**
 * The app, not yet listening. Options: `logger` (default true); `durationMs` (default 60 s) and `steps`
 * (progress reports per job, default 10): a job may ask for its own in the POST body.
 */
export async function build ({ logger = true, durationMs = 60_000, steps = 10 } = {}) {
  const app = Fastify({ logger, forceCloseConnections: true })
  await app.register(longpoll, { prefix: '/lp', channelPattern: /^job:[0-9a-f-]{36}$/ })

  /** The latest snapshot of every job, for GET /jobs/:id. */
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
    const id = randomUUID()
    const job = { durationMs, steps, ...request.body }
    await report(id, { state: 'queued', progress: 0 })
    run(id, job)
    request.log.info({ job: id, ...job }, 'job queued')
    return reply.code(202).send({ id, channel: channelOf(id), status: `/jobs/${id}` })
  })

  // The short-polling endpoint: the job's latest snapshot.
  app.get('/jobs/:id', async (request, reply) => {
    const job = jobs.get(request.params.id)
    if (job === undefined) return reply.code(404).send({ statusCode: 404, error: 'Not Found', message: 'No such job' })
    return job
  })

  /** The worker: `steps` reports spread evenly over `durationMs`, the last one `done`. */
  function run (id, { durationMs, steps }) {
    for (let step = 1; step <= steps; step++) {
      const timer = setTimeout(() => {
        timers.delete(timer)
        const progress = Math.round((step / steps) * 100)
        const update = step < steps
          ? { state: 'running', progress }
          : { state: 'done', progress, result: { rows: 48_213, url: `/reports/${id}.csv` } }
        report(id, update).catch((err) => app.log.error({ err, job: id }, 'could not report progress'))
      }, (durationMs * step) / steps)
      timers.add(timer)
    }
  }

  /** Keeps the snapshot for GET /jobs/:id and pushes it to the job's channel for its long polls. */
  async function report (id, update) {
    const version = (jobs.get(id)?.version ?? 0) + 1
    const snapshot = { id, version, ...update, updatedAt: Date.now() }
    jobs.set(id, snapshot)
    await app.longpoll.push(channelOf(id), snapshot)
    if (update.state === 'done') {
      const forget = setTimeout(() => jobs.delete(id), 600_000).unref()
      timers.add(forget)
    }
  }

  app.addHook('onClose', async () => {
    for (const timer of timers) clearTimeout(timer)
  })
  return app
}

export function channelOf (id) {
  return `job:${id}`
}

/** Builds and listens on `PORT`/`HOST` (default 127.0.0.1:3000); `JOB_DURATION_MS` sets the default duration. */
export async function start ({
  port = Number(process.env.PORT ?? 3000),
  host = process.env.HOST ?? '127.0.0.1',
  ...options
} = {}) {
  const durationMs = process.env.JOB_DURATION_MS === undefined ? undefined : Number(process.env.JOB_DURATION_MS)
  const app = await build({ logger: { level: process.env.LOG_LEVEL ?? 'info' }, durationMs, ...options })
  const address = await app.listen({ port, host })
  app.log.info(`job-status: POST ${address}/jobs, then follow ${address}/lp/poll?channel=job:<id> (or run compare.js --url ${address})`)
  for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => app.close().then(() => process.exit(0)))
  return app
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  await start()
}
