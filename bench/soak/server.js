// One instance of the plugin under soak, forked by bench/soak.js. Like bench/server.js it listens on 127.0.0.1
// port 0 and talks to its parent over IPC; in addition it answers `sample` with what a leak would show: live
// heap after forced GCs, RSS, active handles and timers by type, listeners on the emitters a poll touches, and
// the plugin's own stats.
//
//   node --expose-gc bench/soak/server.js <memory|redis>      env REDIS_URL for redis
import process from 'node:process'
import { SOAK_OPTIONS } from './config.js'

const kind = process.argv[2]
if (typeof process.send !== 'function') {
  console.error('bench/soak/server.js is forked by bench/soak.js (it needs an IPC channel)')
  process.exit(2)
}
process.on('disconnect', () => process.exit(0))
process.on('SIGTERM', () => process.exit(0))

const { default: Fastify } = await import('fastify')
const lib = await import('fastify-longpoll')

const app = Fastify({ logger: false })
const options = { ...SOAK_OPTIONS }
const owned = []
if (kind === 'redis') {
  const { Redis } = await import('ioredis')
  const storeClient = new Redis(process.env.REDIS_URL)
  const notifierClient = new Redis(process.env.REDIS_URL)
  owned.push(storeClient, notifierClient)
  options.store = new lib.RedisStore({ redis: storeClient })
  options.notifier = new lib.RedisNotifier({ redis: notifierClient })
}

// Every connection's socket, so listeners on them can be counted (a listener added per poll on a keep-alive
// socket and never removed is the classic long-poll leak).
const sockets = new Set()
app.server.on('connection', (socket) => {
  sockets.add(socket)
  socket.once('close', () => sockets.delete(socket))
})

try {
  await app.register(lib.default, options)
  await app.listen({ host: '127.0.0.1', port: 0, backlog: 4096 })
} catch (err) {
  process.send({ type: 'error', message: err.stack ?? String(err) })
  process.exit(1)
}

function listenerTotal (emitter) {
  if (emitter === null || emitter === undefined || typeof emitter.eventNames !== 'function') return null
  let n = 0
  for (const name of emitter.eventNames()) n += emitter.listenerCount(name)
  return n
}

function socketListeners () {
  let total = 0
  let max = 0
  for (const socket of sockets) {
    const n = listenerTotal(socket)
    total += n
    if (n > max) max = n
  }
  return { sockets: sockets.size, total, max }
}

/** ioredis's own list of subscribed channels (what it re-subscribes after a reconnect), when it has one. */
function subscribedChannels (subscriber) {
  const set = subscriber?.condition?.subscriber
  return typeof set?.channels === 'function' ? set.channels('subscribe').length : 0
}

function resourcesByType () {
  const counts = {}
  for (const type of process.getActiveResourcesInfo()) counts[type] = (counts[type] ?? 0) + 1
  return counts
}

async function sample () {
  // Live heap, not garbage: two full GCs with a turn between them for finalizers and weak callbacks.
  global.gc()
  await new Promise((resolve) => setImmediate(resolve))
  global.gc()
  const mem = process.memoryUsage()
  // The notifier's subscriber connection and its subscription map are private: read them here, for the bench only.
  const subscriber = options.notifier?.subscriber ?? null
  return {
    heapUsed: mem.heapUsed,
    rss: mem.rss,
    external: mem.external,
    resources: resourcesByType(),
    listeners: {
      server: listenerTotal(app.server),
      process: listenerTotal(process),
      sockets: socketListeners(),
      ...(kind === 'redis'
        ? {
            storeClient: listenerTotal(owned[0]),
            notifierClient: listenerTotal(owned[1]),
            subscriber: listenerTotal(subscriber),
            // ioredis's own re-subscribe bookkeeping and the notifier's subscriptions
            subscriberChannels: subscribedChannels(subscriber),
            subscriptions: options.notifier?.subscriptions?.size ?? null
          }
        : {})
    },
    plugin: app.longpoll.stats()
  }
}

process.on('message', async (msg) => {
  if (msg === null || typeof msg !== 'object') return
  if (msg.cmd === 'sample') {
    try {
      process.send({ type: 'done', id: msg.id, result: await sample() })
    } catch (err) {
      process.send({ type: 'failed', id: msg.id, message: err.stack ?? String(err) })
    }
  } else if (msg.cmd === 'stop') {
    // The plugin's own close path: held polls are answered 503 at once (preClose), then the store and notifier close.
    try {
      await app.close()
      for (const client of owned) client.disconnect()
    } finally {
      process.exit(0)
    }
  }
})

process.send({ type: 'ready', port: app.server.address().port, pid: process.pid })
