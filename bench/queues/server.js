// One queue server under test, forked by bench/queues/run.js into a process of its own. It listens on
// 127.0.0.1, port 0, tells its parent the port over IPC, and answers `stats` with its own process.cpuUsage(),
// so server CPU is read from the server process, never from the load.
//
//   node bench/queues/server.js <kind>      kind: memory | redis | shortpoll;  env REDIS_URL for redis
import process from 'node:process'

const kind = process.argv[2]
if (typeof process.send !== 'function') {
  console.error('bench/queues/server.js is forked by bench/queues/run.js (it needs an IPC channel)')
  process.exit(2)
}
process.on('disconnect', () => process.exit(0)) // never outlive the bench, even a killed one

async function startPlugin (withRedis) {
  const { default: Fastify } = await import('fastify')
  const lib = await import('fastify-longpoll')
  const app = Fastify({ logger: false })
  const options = {}
  const owned = []
  if (withRedis) {
    const { Redis } = await import('ioredis')
    const connect = () => {
      const client = new Redis(process.env.REDIS_URL)
      owned.push(client)
      return client
    }
    options.store = new lib.RedisStore({ redis: connect() })
    options.notifier = new lib.RedisNotifier({ redis: connect() })
    options.queueStore = new lib.RedisQueueStore({ redis: connect() })
  }
  await app.register(lib.default, options)
  await app.listen({ host: '127.0.0.1', port: 0, backlog: 4096 })
  return {
    port: app.server.address().port,
    stats: () => app.longpoll.stats(),
    async close () {
      app.server.closeAllConnections()
      await app.close()
      for (const client of owned) client.disconnect()
    }
  }
}

/**
 * The "are there jobs yet?" server a short-polling worker talks to: POST /jobs appends to an array,
 * GET /next_job takes the oldest (204 when there is none). No lease, no ack: the cheapest honest version.
 */
async function startShortPoll () {
  const { default: Fastify } = await import('fastify')
  const app = Fastify({ logger: false })
  const jobs = []
  let head = 0
  let nextId = 1
  let empty = 0
  app.post('/jobs', async (request, reply) => {
    const id = String(nextId++)
    jobs.push({ id, data: request.body.data, time: Date.now() })
    return reply.code(201).send({ id })
  })
  app.get('/next_job', async (request, reply) => {
    if (head === jobs.length) {
      empty++
      return reply.code(204).send()
    }
    const job = jobs[head]
    jobs[head++] = undefined
    if (head > 1024 && head * 2 > jobs.length) {
      jobs.splice(0, head)
      head = 0
    }
    return job
  })
  await app.listen({ host: '127.0.0.1', port: 0, backlog: 4096 })
  return {
    port: app.server.address().port,
    stats: () => ({ waiting: jobs.length - head, emptyAnswers: empty }),
    async close () {
      app.server.closeAllConnections()
      await app.close()
    }
  }
}

let server
try {
  server = kind === 'shortpoll' ? await startShortPoll() : await startPlugin(kind === 'redis')
  process.send({ type: 'ready', port: server.port })
} catch (err) {
  process.send({ type: 'error', message: err.stack ?? String(err) })
  process.exit(1)
}

process.on('message', async (msg) => {
  if (msg?.cmd === 'stats') {
    process.send({ id: msg.id, result: { cpu: process.cpuUsage(), plugin: server.stats() } })
  } else if (msg?.cmd === 'stop') {
    await server.close().catch(() => {})
    process.exit(0)
  }
})
