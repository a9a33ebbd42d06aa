#!/usr/bin/env node
// The benchmark suite (`npm run bench`, `npm run bench -- --quick`). See bench/README.md for the method.
//
// Every server under test is forked into its own process(es) on 127.0.0.1, warmed up, measured and stopped;
// clients are forked too (one per 8,000 held polls, under the fd limit). Server CPU and memory are read from
// the server processes over IPC, never from the client. Results: bench/results/<date>.{json,md,svg} and
// bench/results/latest.{json,md,svg} (a --quick run writes to bench/results/tmp/ unless --out is given).
//
//   node bench/run.js --queues [--quick] [--out DIR]     the work-queue scenario (bench/queues/run.js)
//   node bench/run.js --soak MINUTES [--stores memory,redis] [--out DIR]    the soak (bench/soak.js)
//   node bench/run.js [--quick] [--out DIR] [--servers a,b] [--scenarios held,fanout,pingpong,throughput,multiplex]
//                     [--profile SERVER,...] [--no-latest] [--wait-idle SECONDS] [--candidate DIR]
import { fork, spawn, execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, writeFileSync, copyFileSync } from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import process from 'node:process'
import { fileURLToPath } from 'node:url'
import autocannon from 'autocannon'
import { percentiles, round } from './lib/stats.js'
import { renderMarkdown, renderSvg, evaluateTargets } from './lib/report.js'
import { parseBase, pushAgent, request } from './lib/http.js'
import { multiplex } from './scenarios/multiplex.js'

const here = path.dirname(fileURLToPath(import.meta.url))
const root = path.resolve(here, '..')

// `--soak MINUTES`: the soak, which has a runner of its own (bench/soak.js).
if (process.argv.includes('--soak')) {
  await import('./soak.js')
  process.exit()
}

// `--queues`: the work-queue scenario, which has a runner of its own (bench/queues/run.js, `npm run bench:queues`).
if (process.argv.includes('--queues')) {
  process.argv.splice(process.argv.indexOf('--queues'), 1)
  await import('./queues/run.js')
  process.exit()
}

// ---------------------------------------------------------------------------------------------- options
const argv = process.argv.slice(2)
const flag = (name) => argv.includes(`--${name}`)
const value = (name) => {
  const i = argv.indexOf(`--${name}`)
  return i === -1 ? undefined : argv[i + 1]
}
const quick = flag('quick')
const startedAt = new Date()
const stamp = startedAt.toISOString().slice(0, 19).replace(/:/g, '-') + 'Z'
const outDir = path.resolve(value('out') ?? (quick ? path.join(here, 'results', 'tmp') : path.join(here, 'results')))
const writeLatest = !flag('no-latest') && value('out') === undefined && !quick && value('candidate') === undefined
const profileServer = value('profile')

const config = quick
  ? {
      heldN: [200, 500],
      pushRate: 1000,
      fanoutN: 300,
      pingpongChannels: 20,
      pingpongMs: 500,
      throughputConnections: 10,
      throughputWarmS: 0, // autocannon runs last a whole second at least: a quick run skips the warm-up rounds
      throughputS: 0.5,
      warmupPingpongMs: 200,
      warmupHeld: 50,
      multiplexClients: 50,
      perClient: 8000
    }
  : {
      heldN: [5000, 15000],
      pushRate: 1000,
      fanoutN: 5000,
      pingpongChannels: 200,
      pingpongMs: 10_000,
      throughputConnections: 50,
      throughputWarmS: 1,
      throughputS: 5,
      warmupPingpongMs: 1500,
      warmupHeld: 1000,
      multiplexClients: 1500,
      perClient: 8000
    }
config.pushWindow = 100 // held: at most this many messages in flight (pushed, not yet delivered)
config.pushMaxMs = quick ? 5000 : 20_000 // held: the push phase stops after this long, even if not every channel got its push
config.pollTimeoutMs = 60_000 // the plugin's default maxTimeout: held polls never time out during a scenario
config.payload = 'hello from the bench' // data = { k, text: payload }: ~40 bytes of JSON

const ALL_SCENARIOS = ['held', 'fanout', 'pingpong', 'throughput', 'multiplex']
const scenarioFilter = (value('scenarios') ?? ALL_SCENARIOS.join(',')).split(',')

const SERVERS = [
  { id: 'node-http', label: 'node:http floor', kind: 'node-http', instances: 1, baseline: true },
  { id: 'fastify-map', label: 'Fastify + Map of resolvers', kind: 'fastify-map', instances: 1, baseline: true },
  { id: 'memory', label: 'fastify-longpoll, memory', kind: 'memory', instances: 1 },
  // Full runs only (or named in --servers): the quick smoke run must stay short, and this row differs from
  // `memory` by one option.
  { id: 'memory-metrics', label: 'fastify-longpoll, memory, metrics: true', kind: 'memory-metrics', instances: 1, fullRunOnly: true },
  { id: 'redis-1', label: 'fastify-longpoll, Redis, 1 instance', kind: 'redis', instances: 1, redis: true },
  { id: 'redis-2', label: 'fastify-longpoll, Redis, 2 instances', kind: 'redis', instances: 2, redis: true }
]
// --candidate DIR: also measure the plugin (memory store) loaded from a patched build, in the same run.
const candidate = value('candidate')
if (candidate !== undefined) {
  SERVERS.splice(3, 0, { id: 'candidate', label: `fastify-longpoll, memory, candidate build (${candidate})`, kind: 'memory', instances: 1, env: { BENCH_PACKAGE: path.resolve(candidate) } })
}
const serverFilter = value('servers')?.split(',')
const servers = SERVERS.filter((s) => serverFilter === undefined ? !(quick && s.fullRunOnly === true) : serverFilter.includes(s.id))

const scenarioIds = [
  ...(scenarioFilter.includes('held') ? config.heldN.map((n) => `held-${n}`) : []),
  ...(scenarioFilter.includes('fanout') ? ['fanout'] : []),
  ...(scenarioFilter.includes('pingpong') ? ['pingpong'] : []),
  ...(scenarioFilter.includes('throughput') ? ['throughput-poll', 'throughput-push'] : []),
  ...(scenarioFilter.includes('multiplex') ? ['multiplex-10ch', 'multiplex-1ch'] : [])
]
/** Scenarios that measure idle-to-held memory: each gets a fresh server process in a full run. */
const FRESH_SERVER = (scenario) => scenario.startsWith('held-') || scenario.startsWith('multiplex-')
/** The baselines speak the one-channel protocol only. */
const NEEDS_PLUGIN = (scenario) => scenario.startsWith('multiplex-')

// ------------------------------------------------------------------------------------ progress and cleanup
const t0 = Date.now()
let loadAtStart = os.loadavg().map((x) => round(x, 2))
function log (message) {
  const s = Math.round((Date.now() - t0) / 100) / 10
  process.stderr.write(`[bench ${s.toFixed(1).padStart(6)}s] ${message}\n`)
}

const children = new Set()
let redis = null // { url, port, pid, sh, client }
function killAll () {
  // redis-server runs under a shell watchdog: kill it by its pid first, then the watchdog.
  if (redis !== null && redis.pid > 0) {
    try { process.kill(redis.pid, 'SIGKILL') } catch {}
  }
  for (const child of children) {
    try {
      if (child.watchdog === true) child.stdin.end() // it stops redis-server, then exits
      else child.kill('SIGKILL')
    } catch {}
  }
  children.clear()
}
process.on('exit', killAll)
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(signal, () => {
    log(`${signal}: stopping every process the bench started`)
    killAll()
    process.exit(130)
  })
}
process.on('uncaughtException', (err) => {
  log(`failed: ${err.stack ?? err}`)
  killAll()
  process.exit(1)
})
process.on('unhandledRejection', (err) => {
  log(`failed: ${err?.stack ?? err}`)
  killAll()
  process.exit(1)
})

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

function withTimeout (promise, ms, what) {
  let timer
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise((_resolve, reject) => { timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms) })
  ])
}

// ------------------------------------------------------------------------------------------ child processes
let nextId = 1
function forkChild (file, args, options = {}) {
  const child = fork(file, args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], ...options })
  children.add(child)
  child.pending = new Map()
  child.on('message', (msg) => {
    const waiter = child.pending.get(msg?.id)
    if (waiter === undefined) return
    child.pending.delete(msg.id)
    if (msg.type === 'failed') waiter.reject(new Error(msg.message))
    else waiter.resolve(msg.result ?? msg)
  })
  child.on('exit', (code, signal) => {
    children.delete(child)
    for (const waiter of child.pending.values()) waiter.reject(new Error(`${path.basename(file)} exited (${code ?? signal})`))
    child.pending.clear()
  })
  return child
}

function call (child, msg, ms = 120_000) {
  const id = nextId++
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
  try { child.send({ cmd: 'stop' }) } catch {}
  const done = await Promise.race([exited.then(() => true), sleep(10_000).then(() => false)])
  if (!done) child.kill('SIGKILL')
}

// ----------------------------------------------------------------------------------------------- servers

async function startServers (def, profile) {
  const procs = []
  for (let i = 0; i < def.instances; i++) {
    const execArgv = ['--expose-gc']
    if (profile) {
      const dir = path.join(here, 'results', 'tmp', 'profiles')
      mkdirSync(dir, { recursive: true })
      execArgv.push('--cpu-prof', `--cpu-prof-dir=${dir}`, `--cpu-prof-name=${def.id}-${stamp}-${i}-${Date.now()}.cpuprofile`)
    }
    const child = forkChild(path.join(here, 'server.js'), [def.kind], {
      execArgv,
      env: { ...process.env, REDIS_URL: redis?.url ?? '', NODE_ENV: 'production', ...def.env }
    })
    const ready = await waitReady(child, `${def.id} server`)
    procs.push({ child, base: `http://127.0.0.1:${ready.port}` })
  }
  return { def, procs, bases: procs.map((p) => p.base) }
}

async function stopServers (set) {
  await Promise.all(set.procs.map((p) => stopChild(p.child)))
}

/** Summed over the instances of a server under test: cpu (µs), rss and heap (bytes), held polls. */
async function serverStats (set, gc = false) {
  const all = await Promise.all(set.procs.map((p) => call(p.child, { cmd: 'stats', gc }, 30_000)))
  return {
    cpuUs: all.reduce((sum, s) => sum + s.cpu.user + s.cpu.system, 0),
    rss: all.reduce((sum, s) => sum + s.rss, 0),
    heapUsed: all.reduce((sum, s) => sum + s.heapUsed, 0),
    held: all.reduce((sum, s) => sum + s.held, 0),
    fds: all.every((s) => typeof s.fds === 'number') ? all.reduce((sum, s) => sum + s.fds, 0) : null,
    plugin: all.map((s) => s.plugin ?? null)
  }
}

async function waitHeld (set, n, ms) {
  const deadline = Date.now() + ms
  let held = -1
  while (Date.now() < deadline) {
    held = (await serverStats(set)).held
    if (held === n) return held
    await sleep(50)
  }
  return held
}

// ------------------------------------------------------------------------------------------------- clients
async function startClients (count) {
  const clients = []
  for (let i = 0; i < count; i++) {
    const child = forkChild(path.join(here, 'client.js'), [])
    await waitReady(child, 'client')
    clients.push(child)
  }
  return clients
}

async function closeClients (clients) {
  await Promise.all(clients.map((c) => call(c, { cmd: 'close' }).catch(() => {})))
  for (const c of clients) c.kill('SIGKILL')
}

function split (list, parts) {
  const out = Array.from({ length: parts }, () => [])
  const size = Math.ceil(list.length / parts)
  for (let i = 0; i < parts; i++) out[i] = list.slice(i * size, (i + 1) * size)
  return out
}

function tag () {
  return Math.random().toString(36).slice(2, 8)
}

// --------------------------------------------------------------------------------------------------- redis
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

async function startRedis () {
  const port = await freePort()
  // A shell watchdog: redis-server dies with the bench even if the bench is killed (stdin closes, `read` returns).
  const script = `redis-server --port ${port} --bind 127.0.0.1 --save '' --appendonly no --loglevel warning & r=$!; echo $r; trap 'kill $r 2>/dev/null' EXIT; read _; kill $r 2>/dev/null; wait $r`
  const sh = spawn('sh', ['-c', script], { stdio: ['pipe', 'pipe', 'inherit'] })
  sh.watchdog = true
  children.add(sh)
  sh.on('exit', () => children.delete(sh))
  const pid = await withTimeout(new Promise((resolve) => {
    sh.stdout.once('data', (chunk) => resolve(Number(String(chunk).trim().split('\n')[0])))
  }), 10_000, 'redis-server pid')
  const { Redis } = await import('ioredis')
  const url = `redis://127.0.0.1:${port}`
  let client
  for (let i = 0; i < 100; i++) {
    try {
      client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null })
      client.on('error', () => {}) // refused until redis-server listens: retried below
      await client.connect()
      await client.ping()
      break
    } catch {
      client?.disconnect()
      client = undefined
      await sleep(100)
    }
  }
  if (client === undefined) throw new Error(`redis-server on port ${port} did not answer`)
  return { url, port, pid, sh, client, scriptCommands: scriptCommands() }
}

function redisCpuUs () {
  if (redis === null) return 0
  try {
    const fields = readFileSync(`/proc/${redis.pid}/stat`, 'utf8').split(') ')[1].split(' ')
    const ticks = Number(fields[11]) + Number(fields[12]) // utime, stime
    return ticks * (1e6 / clockTicks)
  } catch {
    return 0
  }
}
let clockTicks = 100
try { clockTicks = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100 } catch {}

async function redisResetStats () {
  if (redis !== null) await redis.client.config('RESETSTAT')
}

/**
 * Commands the Lua scripts of the built Redis store and notifier run (`redis.call('RPUSH', ...)`). INFO
 * commandstats counts those too, so they are subtracted to count the commands the plugin sends (round trips).
 */
function scriptCommands () {
  const names = new Set()
  for (const file of ['dist/esm/redis/scripts.js']) {
    try {
      for (const m of readFileSync(path.join(root, file), 'utf8').matchAll(/redis\.p?call\(\s*['"]([A-Za-z]+)['"]/g)) names.add(m[1].toLowerCase())
    } catch {}
  }
  return names
}

/**
 * Commands since the last RESETSTAT (our own INFO/CONFIG excluded): { sent, total, byCommand }. `sent` counts the
 * commands the servers sent (EVALSHA, PUBLISH, SUBSCRIBE, ...), `total` also those their Lua scripts ran.
 */
async function redisCommands () {
  if (redis === null) return null
  const text = await redis.client.info('commandstats')
  const byCommand = {}
  let total = 0
  let inScripts = 0
  for (const line of text.split('\n')) {
    const m = /^cmdstat_([^:]+):calls=(\d+)/.exec(line.trim())
    if (m === null || m[1] === 'info' || m[1].startsWith('config')) continue
    byCommand[m[1]] = Number(m[2])
    total += Number(m[2])
    if (redis.scriptCommands.has(m[1])) inScripts += Number(m[2])
  }
  return { sent: total - inScripts, total, byCommand }
}

// -------------------------------------------------------------------------------------------------- scenarios
/** A short round of everything, so the measured rounds run on optimized code. */
async function warmUp (set) {
  const [client] = await startClients(1)
  try {
    const t = tag()
    await call(client, {
      cmd: 'pingpong',
      bases: set.bases,
      channels: Array.from({ length: 50 }, (_, i) => `warm-pp-${t}-${i}`),
      durationMs: config.warmupPingpongMs,
      drainMs: 5000,
      timeout: config.pollTimeoutMs,
      payload: config.payload
    })
    await call(client, { cmd: 'close' })
    await waitHeld(set, 0, 10_000)
    await call(client, { cmd: 'open', bases: set.bases, channels: Array.from({ length: config.warmupHeld }, (_, i) => `warm-h-${t}-${i}`), timeout: config.pollTimeoutMs })
    await waitHeld(set, config.warmupHeld, 10_000)
    await call(client, { cmd: 'push', rate: 2000, rounds: 1, drainMs: 5000, payload: config.payload })
    await call(client, { cmd: 'close' })
    await waitHeld(set, 0, 10_000)
    const poll = `${set.bases[0]}/poll?channel=warm-tp-${t}&timeout=0`
    if (config.throughputWarmS > 0) await autocannon({ url: poll, connections: 10, duration: config.throughputWarmS })
  } finally {
    await closeClients([client])
  }
}

async function held (set, n) {
  const workers = Math.ceil(n / config.perClient)
  const clients = await startClients(workers)
  const t = tag()
  const channels = Array.from({ length: n }, (_, i) => `held-${t}-${i}`)
  try {
    const idle = await serverStats(set, true)
    log(`${set.def.id}: held ${n}: opening ${n} polls over ${workers} client process(es)`)
    const opening = performance.now()
    await Promise.all(split(channels, workers).map((part, i) => call(clients[i], { cmd: 'open', bases: set.bases, channels: part, timeout: config.pollTimeoutMs }, 120_000)))
    const heldNow = await waitHeld(set, n, 30_000)
    const openMs = performance.now() - opening
    const full = await serverStats(set, true)
    await sleep(300) // let the GC's background threads finish before CPU is counted
    log(`${set.def.id}: held ${n}: ${heldNow} held after ${Math.round(openMs)} ms; RSS ${mib(idle.rss)} -> ${mib(full.rss)} MiB; pushing at ${config.pushRate}/s`)
    const before = await serverStats(set)
    const redisBefore = redisCpuUs()
    await redisResetStats()
    const parts = await Promise.all(clients.map((c) => call(c, { cmd: 'push', rate: config.pushRate / workers, window: Math.ceil(config.pushWindow / workers), maxMs: config.pushMaxMs, rounds: 1, drainMs: 10_000, payload: config.payload }, 300_000)))
    const after = await serverStats(set)
    const redisUs = redisCpuUs() - redisBefore
    const commands = await redisCommands()
    const r = merge(parts)
    const cpuUs = after.cpuUs - before.cpuUs
    const row = {
      n,
      heldReached: heldNow,
      openMs: round(openMs, 0),
      rssIdle: idle.rss,
      rssHeld: full.rss,
      rssPerPoll: round((full.rss - idle.rss) / n, 0),
      heapPerPoll: round((full.heapUsed - idle.heapUsed) / n, 0),
      pushed: r.pushed,
      acked: r.acked,
      pushFailed: r.pushFailed,
      delivered: r.delivered,
      lost: r.lost,
      duplicates: r.duplicates,
      outOfOrder: r.outOfOrder,
      violations: r.lost + r.duplicates + r.outOfOrder + (heldNow === n ? 0 : 1),
      pollErrors: r.pollErrors,
      pollStatus: r.pollStatus,
      latencyMs: percentiles(r.latencies),
      pushMs: round(Math.max(...parts.map((p) => p.pushMs)), 0),
      pushRate: round(r.acked / (Math.max(...parts.map((p) => p.pushMs)) / 1000), 0),
      cpuUs,
      cpuPerMsgUs: round(cpuUs / Math.max(1, r.delivered), 2),
      ...(set.def.redis ? redisFields(redisUs, commands, r.delivered, r.acked) : {})
    }
    log(`${set.def.id}: held ${n}: delivered ${r.delivered}/${r.acked}, lost ${r.lost}, p50 ${row.latencyMs.p50} ms, p99 ${row.latencyMs.p99} ms, CPU ${row.cpuPerMsgUs} µs/msg, RSS ${(row.rssPerPoll / 1024).toFixed(2)} KiB/poll, achieved ${row.pushRate} pushes/s`)
    return row
  } finally {
    await closeClients(clients)
    await waitHeld(set, 0, 20_000)
  }
}

async function fanout (set) {
  const n = config.fanoutN
  const clients = await startClients(1)
  const channel = `fan-${tag()}`
  try {
    log(`${set.def.id}: fanout: holding ${n} polls on one channel`)
    await call(clients[0], { cmd: 'open', bases: set.bases, channels: Array(n).fill(channel), timeout: config.pollTimeoutMs, repoll: false }, 120_000)
    const heldNow = await waitHeld(set, n, 30_000)
    await serverStats(set, true)
    await sleep(300)
    const before = await serverStats(set)
    const redisBefore = redisCpuUs()
    await redisResetStats()
    const r = await call(clients[0], { cmd: 'fanpush', channel, expect: n, waitMs: 30_000, payload: config.payload }, 60_000)
    const after = await serverStats(set)
    const redisUs = redisCpuUs() - redisBefore
    const commands = await redisCommands()
    const cpuUs = after.cpuUs - before.cpuUs
    const times = percentiles(r.times)
    const row = {
      n,
      heldReached: heldNow,
      delivered: r.delivered,
      lost: r.lost,
      duplicates: r.duplicates,
      outOfOrder: r.outOfOrder,
      violations: r.lost + r.duplicates + r.outOfOrder + (heldNow === n ? 0 : 1),
      pushAckMs: round(r.ackMs, 2),
      firstMs: r.times.length > 0 ? round(Math.min(...r.times), 2) : null,
      p50Ms: times.p50,
      lastMs: times.max,
      cpuUs,
      cpuPerMsgUs: round(cpuUs / Math.max(1, r.delivered), 2),
      ...(set.def.redis ? redisFields(redisUs, commands, r.delivered, 1) : {})
    }
    log(`${set.def.id}: fanout: ${r.delivered}/${n} delivered, last after ${row.lastMs} ms, CPU ${row.cpuPerMsgUs} µs/msg`)
    return row
  } finally {
    await closeClients(clients)
    await waitHeld(set, 0, 20_000)
  }
}

async function pingpong (set) {
  const clients = await startClients(1)
  const t = tag()
  try {
    log(`${set.def.id}: pingpong: ${config.pingpongChannels} channels for ${config.pingpongMs / 1000} s`)
    await serverStats(set, true)
    await sleep(300)
    const before = await serverStats(set)
    const redisBefore = redisCpuUs()
    await redisResetStats()
    const r = await call(clients[0], {
      cmd: 'pingpong',
      bases: set.bases,
      channels: Array.from({ length: config.pingpongChannels }, (_, i) => `pp-${t}-${i}`),
      durationMs: config.pingpongMs,
      drainMs: 10_000,
      timeout: config.pollTimeoutMs,
      payload: config.payload
    }, config.pingpongMs + 60_000)
    const after = await serverStats(set)
    const redisUs = redisCpuUs() - redisBefore
    const commands = await redisCommands()
    const cpuUs = after.cpuUs - before.cpuUs
    const row = {
      channels: config.pingpongChannels,
      durationMs: round(r.elapsedMs, 0),
      pushed: r.pushed,
      acked: r.acked,
      pushFailed: r.pushFailed,
      delivered: r.delivered,
      msgPerSec: round(r.deliveredAtDeadline / (r.elapsedMs / 1000), 0),
      lost: r.lost,
      duplicates: r.duplicates,
      outOfOrder: r.outOfOrder,
      violations: r.lost + r.duplicates + r.outOfOrder,
      pollErrors: r.pollErrors,
      pollStatus: r.pollStatus,
      latencyMs: percentiles(r.latencies),
      cpuUs,
      cpuPerMsgUs: round(cpuUs / Math.max(1, r.delivered), 2),
      ...(set.def.redis ? redisFields(redisUs, commands, r.delivered, r.acked) : {})
    }
    log(`${set.def.id}: pingpong: ${row.msgPerSec} msg/s, p50 ${row.latencyMs.p50} ms, p99 ${row.latencyMs.p99} ms, CPU ${row.cpuPerMsgUs} µs/msg, violations ${row.violations}`)
    return row
  } finally {
    await closeClients(clients)
    await waitHeld(set, 0, 20_000)
  }
}

async function throughput (set, what) {
  const t = tag()
  const opts = { connections: config.throughputConnections, url: set.bases.length === 1 ? set.bases[0] : set.bases }
  if (what === 'poll') {
    // Short polls (timeout=0) on a channel that holds one message: every answer reads and returns it.
    const channel = `tp-poll-${t}`
    const agent = pushAgent(1)
    for (const base of set.bases.slice(0, 1)) {
      const res = await request(agent, parseBase(base), 'POST', '/push', JSON.stringify({ channel, data: { k: 1, text: config.payload } }))
      if (res.status !== 200) throw new Error(`prefill push answered ${res.status}`)
    }
    agent.destroy()
    opts.url = [].concat(opts.url).map((b) => `${b}/poll?channel=${channel}&timeout=0`)
  } else {
    opts.url = [].concat(opts.url).map((b) => `${b}/push`)
    opts.method = 'POST'
    opts.headers = { 'content-type': 'application/json' }
    opts.body = JSON.stringify({ channel: `tp-push-${t}`, data: { k: 1, text: config.payload } })
  }
  if (opts.url.length === 1) opts.url = opts.url[0]
  log(`${set.def.id}: throughput ${what}: autocannon, ${opts.connections} connections, ${config.throughputS} s`)
  if (config.throughputWarmS > 0) await autocannon({ ...opts, duration: config.throughputWarmS })
  await serverStats(set, true)
  await sleep(300)
  const before = await serverStats(set)
  const redisBefore = redisCpuUs()
  await redisResetStats()
  const result = await autocannon({ ...opts, duration: config.throughputS })
  const after = await serverStats(set)
  const redisUs = redisCpuUs() - redisBefore
  const commands = await redisCommands()
  const responses = result['2xx'] + result.non2xx
  const cpuUs = after.cpuUs - before.cpuUs
  const row = {
    connections: opts.connections,
    durationS: config.throughputS,
    reqPerSec: round(result.requests.average, 0),
    responses,
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    lost: 0,
    violations: result.non2xx + result.errors + result.timeouts,
    latencyMs: { p50: result.latency.p50, p99: result.latency.p99, max: result.latency.max, mean: result.latency.average },
    cpuUs,
    cpuPerReqUs: round(cpuUs / Math.max(1, responses), 2),
    ...(set.def.redis ? redisFields(redisUs, commands, responses, what === 'push' ? responses : 0) : {})
  }
  log(`${set.def.id}: throughput ${what}: ${row.reqPerSec} req/s, p99 ${row.latencyMs.p99} ms, CPU ${row.cpuPerReqUs} µs/req`)
  return row
}

function redisFields (redisUs, commands, delivered, pushes) {
  if (commands === null) return {}
  return {
    redisCpuUs: round(redisUs, 0),
    redisCpuPerMsgUs: round(redisUs / Math.max(1, delivered), 2),
    redisCommands: commands.sent,
    redisCommandsPerPush: pushes > 0 ? round(commands.sent / pushes, 2) : null,
    redisCommandsWithScripts: commands.total,
    redisCommandsByName: commands.byCommand
  }
}

function merge (parts) {
  const out = { pushed: 0, acked: 0, pushFailed: 0, delivered: 0, lost: 0, duplicates: 0, outOfOrder: 0, pollErrors: 0, pollStatus: {}, latencies: [] }
  for (const p of parts) {
    for (const key of ['pushed', 'acked', 'pushFailed', 'delivered', 'lost', 'duplicates', 'outOfOrder', 'pollErrors']) out[key] += p[key]
    for (const [status, count] of Object.entries(p.pollStatus)) out.pollStatus[status] = (out.pollStatus[status] ?? 0) + count
    for (const l of p.latencies) out.latencies.push(l)
  }
  return out
}

const mib = (bytes) => (bytes / 1048576).toFixed(1)

/** What a scenario module (bench/scenarios/*.js) gets from the runner. */
const scenarioContext = {
  config,
  log,
  startClients,
  closeClients,
  call,
  serverStats,
  waitHeld,
  sleep,
  split,
  tag,
  merge,
  percentiles,
  round,
  redisCpuUs,
  redisResetStats,
  redisCommands,
  redisFields
}

// ------------------------------------------------------------------------------------------------------- main
function machine () {
  const cpus = os.cpus()
  return {
    cpu: cpus[0]?.model?.trim() ?? 'unknown',
    cores: cpus.length,
    ramGiB: round(os.totalmem() / 1024 ** 3, 1),
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    fdLimit: (() => { try { return Number(execFileSync('sh', ['-c', 'ulimit -n']).toString().trim()) } catch { return null } })()
  }
}

async function ensureBuilt () {
  if (!existsSync(path.join(root, 'dist', 'esm', 'index.js'))) {
    log('dist/ is missing: building (npm run build)')
    execFileSync('npm', ['run', 'build', '--silent'], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] })
  }
  const lib = await import('fastify-longpoll')
  return { redisClasses: typeof lib.RedisStore === 'function' && typeof lib.RedisNotifier === 'function' }
}

function redisServerInstalled () {
  try {
    execFileSync('sh', ['-c', 'command -v redis-server'], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

/** --wait-idle S: wait up to S seconds for the 1-minute load average to fall under 1.0 (a shared machine). */
async function waitIdle () {
  const limit = Number(value('wait-idle') ?? 0)
  if (!(limit > 0)) return
  const deadline = Date.now() + limit * 1000
  while (os.loadavg()[0] >= 1.0 && Date.now() < deadline) {
    log(`waiting for an idle machine: load average ${os.loadavg().map((x) => x.toFixed(2)).join(', ')}`)
    await sleep(15_000)
  }
}

async function main () {
  await waitIdle()
  loadAtStart = os.loadavg().map((x) => round(x, 2))
  log(`${quick ? 'quick smoke run' : 'full run'}: servers ${servers.map((s) => s.id).join(', ')}; scenarios ${scenarioIds.join(', ')}`)
  const { redisClasses } = await ensureBuilt()
  const wantsRedis = servers.some((s) => s.redis)
  let redisNote = null
  if (wantsRedis) {
    if (!redisClasses) redisNote = 'not available: RedisStore/RedisNotifier are not exported by the built package (lib/stores/redis.ts not written yet?)'
    else if (!redisServerInstalled()) redisNote = 'not available: redis-server is not installed (Debian: apt-get install redis-server)'
    else {
      redis = await startRedis()
      log(`redis-server ${redis.url} (pid ${redis.pid})`)
    }
  }

  const rows = []
  const serverInfo = []
  for (const def of servers) {
    const skipped = def.redis && redisNote !== null ? redisNote : null
    serverInfo.push({ id: def.id, label: def.label, kind: def.kind, instances: def.instances, baseline: def.baseline === true, skipped })
    if (skipped !== null) {
      log(`${def.id}: skipped, ${skipped}`)
      for (const scenario of scenarioIds) rows.push({ server: def.id, scenario, skipped })
      continue
    }
    // A fresh server for each held size, so each idle RSS is measured on a process that never held more
    // (a quick run uses one server for everything: it checks that the suite works, not what it measures).
    const applicable = scenarioIds.filter((s) => !(def.baseline === true && NEEDS_PLUGIN(s)))
    for (const scenario of scenarioIds.filter((s) => !applicable.includes(s))) rows.push({ server: def.id, scenario, skipped: 'not applicable: one-channel protocol only' })
    const groups = (quick
      ? [applicable]
      : [
          ...applicable.filter(FRESH_SERVER).map((s) => [s]),
          applicable.filter((s) => !FRESH_SERVER(s))
        ]).filter((g) => g.length > 0)
    for (const group of groups) {
      const profile = profileServer?.split(',').includes(def.id) === true
      const set = await startServers(def, profile)
      try {
        log(`${def.id}: started (${set.bases.join(', ')}), warming up`)
        await warmUp(set)
        for (const scenario of group) {
          let row
          if (scenario.startsWith('held-')) row = await held(set, Number(scenario.slice(5)))
          else if (scenario === 'fanout') row = await fanout(set)
          else if (scenario === 'pingpong') row = await pingpong(set)
          else if (scenario === 'throughput-poll') row = await throughput(set, 'poll')
          else if (scenario === 'throughput-push') row = await throughput(set, 'push')
          else if (scenario === 'multiplex-10ch') row = await multiplex(scenarioContext, set, 10)
          else if (scenario === 'multiplex-1ch') row = await multiplex(scenarioContext, set, 1)
          rows.push({ server: def.id, scenario, ...row })
        }
      } finally {
        await stopServers(set)
      }
    }
  }

  const results = {
    date: startedAt.toISOString(),
    quick,
    command: `node bench/run.js ${argv.join(' ')}`.trim(),
    durationS: round((Date.now() - t0) / 1000, 1),
    machine: machine(),
    loadAverage: { atStart: loadAtStart, atEnd: os.loadavg().map((x) => round(x, 2)) },
    node: process.version,
    method: {
      ...config,
      summary: 'Each server under test runs in its own forked process(es) on 127.0.0.1 and is warmed up before it is measured; ' +
        'load comes from separate forked client processes on the same machine. Server CPU (user+system) and RSS are read by the ' +
        'server process itself (process.cpuUsage(), process.memoryUsage() after a forced GC) and sent over IPC. Latency is measured by the ' +
        'client from the moment a push is sent to the moment the poll answer carrying it has been read.'
    },
    servers: serverInfo,
    scenarios: scenarioIds,
    rows
  }
  results.targets = evaluateTargets(results)
  mkdirSync(outDir, { recursive: true })
  const files = {
    json: JSON.stringify(results, null, 2) + '\n',
    md: renderMarkdown(results),
    svg: renderSvg(results)
  }
  for (const [ext, text] of Object.entries(files)) {
    const file = path.join(outDir, `${stamp}.${ext}`)
    writeFileSync(file, text)
    if (writeLatest) copyFileSync(file, path.join(outDir, `latest.${ext}`))
  }
  log(`wrote ${path.join(outDir, stamp)}.{json,md,svg}${writeLatest ? ' and latest.{json,md,svg}' : ''} in ${results.durationS} s`)
  process.stdout.write(files.md)
}

try {
  await main()
} finally {
  if (redis !== null) {
    redis.client.disconnect()
    const exited = new Promise((resolve) => redis.sh.once('exit', resolve))
    redis.sh.stdin.end() // the watchdog stops redis-server
    await Promise.race([exited, sleep(3000)])
  }
  killAll()
}
