// The soak's child processes: forked servers and clients spoken to over IPC, and one redis-server. Every one
// is registered in `children` and killed on exit, on a signal and on a crash; redis-server runs under a shell
// watchdog that stops it when the soak's stdin pipe closes, so it dies with the soak even after a SIGKILL.
import { fork, spawn } from 'node:child_process'
import net from 'node:net'
import path from 'node:path'
import process from 'node:process'

const children = new Set()
let redisPid = 0

export function killAll () {
  if (redisPid > 0) {
    try { process.kill(redisPid, 'SIGKILL') } catch {}
    redisPid = 0
  }
  for (const child of children) {
    try {
      if (child.watchdog === true) child.stdin.end()
      else child.kill('SIGKILL')
    } catch {}
  }
  children.clear()
}

/** Kill every child on the way out, whatever the way. */
export function guard (log) {
  process.on('exit', killAll)
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.on(signal, () => {
      log(`${signal}: stopping every process the soak started`)
      killAll()
      process.exit(130)
    })
  }
  for (const event of ['uncaughtException', 'unhandledRejection']) {
    process.on(event, (err) => {
      log(`failed: ${err?.stack ?? err}`)
      killAll()
      process.exit(1)
    })
  }
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

export function withTimeout (promise, ms, what) {
  let timer
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise((_resolve, reject) => { timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms) })
  ])
}

let nextId = 1

/** Forks `file` and waits for its `ready` message ({ type: 'ready', ... }). */
export async function start (file, args, options = {}) {
  const child = fork(file, args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], ...options })
  children.add(child)
  child.pending = new Map()
  child.on('message', (msg) => {
    const waiter = child.pending.get(msg?.id)
    if (waiter === undefined) return
    child.pending.delete(msg.id)
    if (msg.type === 'failed') waiter.reject(new Error(msg.message))
    else waiter.resolve(msg.result)
  })
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal)))
  child.exited = exited
  exited.then((how) => {
    children.delete(child)
    for (const waiter of child.pending.values()) waiter.reject(new Error(`${path.basename(file)} exited (${how})`))
    child.pending.clear()
  })
  const ready = await withTimeout(new Promise((resolve, reject) => {
    child.on('message', (msg) => {
      if (msg?.type === 'ready') resolve(msg)
      if (msg?.type === 'error') reject(new Error(`${file}: ${msg.message}`))
    })
    exited.then((how) => reject(new Error(`${file} exited (${how}) before it was ready`)))
  }), 120_000, `${file} to start`).catch((err) => { // a process start takes tens of seconds on a loaded machine
    child.kill('SIGKILL')
    throw err
  })
  child.ready = ready
  return child
}

/** One IPC command; rejects after `ms`. */
export function call (child, msg, ms = 60_000) {
  const id = nextId++
  const promise = new Promise((resolve, reject) => {
    child.pending.set(id, { resolve, reject })
    child.send({ ...msg, id })
  })
  return withTimeout(promise, ms, `${msg.cmd} on pid ${child.pid}`)
}

/** Asks a child to close (a server: its own close path), SIGKILL after `ms`. Resolves with whether it was killed. */
export async function stop (child, ms = 15_000) {
  if (child.exitCode !== null || child.signalCode !== null) return false
  try { child.send({ cmd: 'stop' }) } catch {}
  const done = await Promise.race([child.exited.then(() => true), sleep(ms).then(() => false)])
  if (!done) {
    child.kill('SIGKILL')
    await child.exited
  }
  return !done
}

async function freePort () {
  return new Promise((resolve, reject) => {
    const srv = net.createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address()
      srv.close(() => resolve(port))
    })
  })
}

/** redis-server on a free loopback port, no persistence. Resolves { url, client (ioredis), stop() }. */
export async function startRedis () {
  const port = await freePort()
  const script = `redis-server --port ${port} --bind 127.0.0.1 --save '' --appendonly no --loglevel warning & r=$!; echo $r; trap 'kill $r 2>/dev/null' EXIT; read _; kill $r 2>/dev/null; wait $r`
  const sh = spawn('sh', ['-c', script], { stdio: ['pipe', 'pipe', 'inherit'] })
  sh.watchdog = true
  children.add(sh)
  const exited = new Promise((resolve) => sh.once('exit', resolve))
  exited.then(() => children.delete(sh))
  redisPid = await withTimeout(new Promise((resolve) => {
    sh.stdout.once('data', (chunk) => resolve(Number(String(chunk).trim().split('\n')[0])))
  }), 10_000, 'redis-server pid')
  const { Redis } = await import('ioredis')
  const url = `redis://127.0.0.1:${port}`
  let client
  for (let i = 0; i < 100 && client === undefined; i++) {
    const candidate = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null })
    candidate.on('error', () => {}) // refused until redis-server listens: retried here
    try {
      await candidate.connect()
      await candidate.ping()
      client = candidate
    } catch {
      candidate.disconnect()
      await sleep(100)
    }
  }
  if (client === undefined) throw new Error(`redis-server on port ${port} did not answer`)
  return {
    url,
    client,
    async stop () {
      client.disconnect()
      sh.stdin.end() // the watchdog stops redis-server and waits for it
      await Promise.race([exited, sleep(10_000)])
      redisPid = 0
    }
  }
}
