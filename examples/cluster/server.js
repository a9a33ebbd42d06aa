// One instance of a server meant to run several times, on several ports or machines, sharing one Redis:
// a message pushed through any instance is stored in Redis (RedisStore) and wakes the polls held by every
// instance (RedisNotifier, over Redis pub/sub).
//
//   NAME=a PORT=3001 node examples/cluster/server.js
//   NAME=b PORT=3002 node examples/cluster/server.js
import { fileURLToPath } from 'node:url'
import Fastify from 'fastify'
import { Redis } from 'ioredis'
import longpollPlugin, { RedisNotifier, RedisStore } from 'fastify-longpoll'

/**
 * The app, not yet listening. `name` tells the instances apart; `redisUrl` (default REDIS_URL or
 * redis://127.0.0.1:6379); `prefix` of the Redis keys (default `longpoll:`); `longpoll`: more plugin options
 * (e.g. `{ maxTimeout: 300000 }`: with many held polls, longer holds mean fewer re-polls).
 */
export async function build ({
  name = 'a',
  redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
  prefix = process.env.LONGPOLL_PREFIX,
  logger = true,
  longpoll = {}
} = {}) {
  const app = Fastify({ logger, forceCloseConnections: true })

  // Our client: the store and the notifier use it (the notifier duplicates it for its subscriber
  // connection, which it closes itself); the plugin never closes a client it was given, so we do.
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: 2 })
  redis.on('error', (err) => app.log.warn({ err }, 'redis connection error'))
  app.addHook('onClose', async () => { await redis.quit() })

  await app.register(longpollPlugin, {
    ...longpoll,
    prefix: '/lp',
    store: new RedisStore({ redis, prefix }),
    notifier: new RedisNotifier({ redis, prefix, log: app.log })
  })

  // Which instance this is and what it did: `pushed` counts messages stored through it, `delivered` the
  // messages it wrote into poll answers.
  app.get('/instance', async () => ({ name, stats: app.longpoll.stats() }))
  return app
}

/** Builds and listens on `PORT`/`HOST` (default 127.0.0.1:3001). Started by run.js, it reports its address. */
export async function start ({
  name = process.env.NAME ?? 'a',
  port = Number(process.env.PORT ?? 3001),
  host = process.env.HOST ?? '127.0.0.1'
} = {}) {
  // MAX_TIMEOUT: the longest a poll may be held (ms; the plugin's default is 60000).
  const longpoll = process.env.MAX_TIMEOUT === undefined ? {} : { maxTimeout: Number(process.env.MAX_TIMEOUT) }
  const app = await build({ name, logger: { level: process.env.LOG_LEVEL ?? 'info', base: { instance: name } }, longpoll })
  const address = await app.listen({ port, host })
  app.log.info(`cluster: instance ${name} at ${address}, sharing ${process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'}`)
  const stop = () => app.close().then(() => process.exit(0), (err) => {
    app.log.error({ err }, 'close failed')
    process.exit(1)
  })
  for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, stop)
  if (process.send !== undefined) {
    process.send({ name, address })
    process.once('disconnect', stop) // the parent (run.js) went away
  }
  return app
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  await start()
}
