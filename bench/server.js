// One server under test, forked by run.js into a process of its own. It listens on 127.0.0.1, port 0, tells
// its parent the port over IPC, and answers `stats` requests with its own process.cpuUsage() and memory, so
// server CPU and RSS are always read from the server process, never from the client.
//
//   node --expose-gc bench/server.js <kind>        kind: memory | memory-metrics | redis | node-http | fastify-map
//                                                  | cluster-example (examples/cluster/server.js's app, routes under /lp)
//   env REDIS_URL for kind=redis and cluster-example; env BENCH_PACKAGE=DIR to load the plugin from a patched build;
//   env BENCH_MAX_TIMEOUT (cluster-example): the plugin's maxTimeout; env BENCH_FREE_TICKS=1: no pinned tick object
//   (bench/lib/pin-tick.js)
import { readdirSync } from 'node:fs'
import path from 'node:path'
import process from 'node:process'
import { pathToFileURL } from 'node:url'
import { pinTickObject } from './lib/pin-tick.js'

pinTickObject() // every server kind alike, before it loads anything (bench/lib/pin-tick.js)
const kind = process.argv[2]
if (typeof process.send !== 'function') {
  console.error('bench/server.js is forked by bench/run.js (it needs an IPC channel)')
  process.exit(2)
}
// The parent went away (even killed): never outlive it.
process.on('disconnect', () => process.exit(0))
// --cpu-prof writes its profile on a normal exit: turn SIGTERM into one.
process.on('SIGTERM', () => process.exit(0))

/** The built package. dist/ is rebuilt now and then by whoever shares this tree: wait out a build in progress. */
async function importPackage () {
  // BENCH_PACKAGE: a patched build (a directory holding index.js, e.g. a copy of dist/esm) to compare.
  const target = process.env.BENCH_PACKAGE ? pathToFileURL(path.resolve(process.env.BENCH_PACKAGE, 'index.js')).href : 'fastify-longpoll'
  for (let attempt = 0; ; attempt++) {
    try {
      return await import(target)
    } catch (err) {
      if (err.code !== 'ERR_MODULE_NOT_FOUND' || attempt >= 60) throw err
      await new Promise((resolve) => setTimeout(resolve, 500))
    }
  }
}

async function startPlugin (withRedis, extra = {}) {
  const { default: Fastify } = await import('fastify')
  const lib = await importPackage()
  const app = Fastify({ logger: false })
  const options = { ...extra }
  const owned = []
  if (withRedis) {
    const { Redis } = await import('ioredis')
    const url = process.env.REDIS_URL
    const storeClient = new Redis(url, { lazyConnect: false })
    const notifierClient = new Redis(url, { lazyConnect: false })
    owned.push(storeClient, notifierClient)
    options.store = new lib.RedisStore({ redis: storeClient })
    options.notifier = new lib.RedisNotifier({ redis: notifierClient })
  }
  await app.register(lib.default, options)
  await app.listen({ host: '127.0.0.1', port: 0, backlog: 4096 })
  return {
    port: app.server.address().port,
    held: () => app.longpoll.stats().heldPolls,
    stats: () => app.longpoll.stats(),
    // The pushmany scenario publishes from inside the server (app.longpoll.push / pushMany).
    publish: async (msg) => (await import('./lib/server-publish.js')).publish(app.longpoll, msg),
    async close () {
      app.server.closeAllConnections()
      await app.close()
      for (const client of owned) client.disconnect()
    }
  }
}

/** One instance of examples/cluster/server.js — the recipe the README gives for several processes on one Redis. */
async function startClusterExample () {
  const { build } = await import('../examples/cluster/server.js')
  const maxTimeout = Number(process.env.BENCH_MAX_TIMEOUT ?? 60_000)
  const app = await build({ name: `bench-${process.pid}`, redisUrl: process.env.REDIS_URL, logger: false, longpoll: { maxTimeout } })
  await app.listen({ host: '127.0.0.1', port: 0, backlog: 4096 })
  return {
    port: app.server.address().port,
    held: () => app.longpoll.stats().heldPolls,
    stats: () => app.longpoll.stats(),
    close: () => app.close()
  }
}

async function start () {
  switch (kind) {
    case 'memory': return startPlugin(false)
    // The same with Prometheus metrics on (prom-client's global registry), to show what counting costs.
    case 'memory-metrics': return startPlugin(false, { metrics: true })
    case 'redis': return startPlugin(true)
    case 'node-http': return (await import('./baselines/node-http.js')).start()
    case 'fastify-map': return (await import('./baselines/fastify-map.js')).start()
    case 'cluster-example': return startClusterExample()
    default: throw new Error(`unknown server kind ${kind}`)
  }
}

function collect () {
  if (typeof global.gc === 'function') {
    global.gc()
    global.gc()
  }
}

let server
try {
  server = await start()
} catch (err) {
  process.send({ type: 'error', message: err.stack ?? String(err) })
  process.exit(1)
}

process.on('message', async (msg) => {
  if (msg === null || typeof msg !== 'object') return
  if (msg.cmd === 'stats') {
    if (msg.gc === true) {
      collect()
      // Let finalizers and freed pages settle before reading RSS.
      await new Promise((resolve) => setTimeout(resolve, 50))
      collect()
    }
    const mem = process.memoryUsage()
    process.send({
      type: 'stats',
      id: msg.id,
      cpu: process.cpuUsage(),
      rss: mem.rss,
      heapUsed: mem.heapUsed,
      external: mem.external,
      held: server.held(),
      fds: openFds(),
      plugin: server.stats?.()
    })
  } else if (msg.cmd === 'publish') {
    try {
      if (typeof server.publish !== 'function') throw new Error(`${kind} has no server-side publish`)
      process.send({ type: 'done', id: msg.id, result: await server.publish(msg) })
    } catch (err) {
      process.send({ type: 'failed', id: msg.id, message: err.stack ?? String(err) })
    }
  } else if (msg.cmd === 'stop') {
    try {
      await server.close()
    } finally {
      process.exit(0)
    }
  }
})

process.send({ type: 'ready', port: server.port, pid: process.pid })

/** Open file descriptors of this process (Linux): one per held socket, plus the process's own. */
function openFds () {
  try {
    return readdirSync('/proc/self/fd').length
  } catch {
    return null
  }
}
