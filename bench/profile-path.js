#!/usr/bin/env node
// The cost of one delivered message, push → wake → answer → re-poll, for each server under test, counted in
// CPU instructions (valgrind's callgrind) so that a before/after comparison holds on a loaded, shared machine:
// instruction counts do not change with what else runs; CPU seconds do.
//
//   npm run build && node bench/profile-path.js [--servers node-http,fastify-map,memory,redis]
//       [--scenarios held,pingpong,fanout] [--mode callgrind|cpu] [--held 100] [--rounds 2] [--channels 20]
//       [--messages 300] [--fanout 500] [--warmup 3000] [--package DIR] [--cpu-prof] [--keep] [--perf-map] [--json FILE]
//       [--free-ticks]
//
// Each server runs in a fresh process of its own (the same servers as bench/server.js: the node:http floor, the
// Fastify + Map baseline, the plugin on memory, the plugin on one Redis instance), under
// `valgrind --tool=callgrind --instr-atstart=no` in callgrind mode (the default). It is warmed up with
// instrumentation off, then instrumentation is switched on (callgrind_control -i on) for the measured phase
// only, and off again once the server holds every re-poll; the instructions counted (user space, every thread
// of the process: main, GC and compiler threads) are divided by the messages delivered. The kernel's part (the
// socket syscalls) is not counted; it is alike for every server, one read and one write per request.
// `--mode cpu` reads process.cpuUsage() instead (noisy on a shared machine, quick), and `--cpu-prof` writes a
// V8 CPU profile of each server process to bench/results/tmp/profiles/ for `node bench/profile.js`.
//
// Scenarios, the client (this process) driving them with raw http over keep-alive sockets:
//   held      `--held` polls, one channel each; `--rounds` rounds of one push per channel (at most 20 in
//             flight), each poll answered and re-polled with its cursor.
//   pingpong  `--channels` channels, a poller and a pusher each; the pusher pushes again as soon as its message
//             is delivered, until `--messages` are delivered in all.
//   fanout    `--fanout` polls on one channel, one push; measured from the push to the last answer (no
//             re-polls), `--rounds` times.
import { execFile, fork, spawn } from 'node:child_process'
import { mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import net from 'node:net'
import path from 'node:path'
import process from 'node:process'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { pinTickObject } from './lib/pin-tick.js'

const here = path.dirname(fileURLToPath(import.meta.url))
const args = process.argv.slice(2)
const value = (name, fallback) => {
  const i = args.indexOf(`--${name}`)
  return i === -1 ? fallback : args[i + 1]
}

// ——— the server side (a forked child) ———

async function serve (kind) {
  pinTickObject() // every server alike: bench/lib/pin-tick.js (--free-ticks: not)
  process.on('disconnect', () => process.exit(0))
  process.on('SIGTERM', () => process.exit(0))
  const server = await startServer(kind)
  process.on('message', (msg) => {
    if (msg?.cmd === 'held') process.send({ id: msg.id, held: server.held() })
    else if (msg?.cmd === 'gc') {
      global.gc?.()
      process.send({ id: msg.id })
    } else if (msg?.cmd === 'cpu') {
      const { user, system } = process.cpuUsage()
      process.send({ id: msg.id, cpu: user + system })
    } else if (msg?.cmd === 'stop') server.close().finally(() => process.exit(0))
  })
  process.send({ ready: true, port: server.port })
}

async function startServer (kind) {
  if (kind === 'node-http') return (await import('./baselines/node-http.js')).start()
  if (kind === 'fastify-map') return (await import('./baselines/fastify-map.js')).start()
  const { default: Fastify } = await import('fastify')
  const lib = await import(process.env.BENCH_PACKAGE ? pathToFileURL(path.resolve(process.env.BENCH_PACKAGE, 'index.js')).href : 'fastify-longpoll')
  const app = Fastify({ logger: false })
  const options = {}
  const owned = []
  if (kind === 'redis') {
    const { Redis } = await import('ioredis')
    owned.push(new Redis(process.env.REDIS_URL), new Redis(process.env.REDIS_URL))
    options.store = new lib.RedisStore({ redis: owned[0] })
    options.notifier = new lib.RedisNotifier({ redis: owned[1] })
  } else if (kind !== 'memory') throw new Error(`unknown server ${kind}`)
  await app.register(lib.default, options)
  await app.listen({ host: '127.0.0.1', port: 0, backlog: 4096 })
  return {
    port: app.server.address().port,
    held: () => app.longpoll.stats().heldPolls,
    async close () {
      app.server.closeAllConnections()
      await app.close()
      for (const client of owned) client.disconnect()
    }
  }
}

// ——— the orchestrator and client ———

async function main () {
  const mode = value('mode', 'callgrind')
  const servers = value('servers', 'node-http,fastify-map,memory').split(',')
  const scenarios = value('scenarios', 'held,pingpong,fanout').split(',')
  const config = {
    held: Number(value('held', 100)),
    rounds: Number(value('rounds', 2)),
    channels: Number(value('channels', 20)),
    messages: Number(value('messages', 300)),
    fanout: Number(value('fanout', 500)),
    /** Messages delivered before each measurement, instrumentation off. */
    warmup: Number(value('warmup', 3000))
  }
  const outDir = path.join(here, 'results', 'tmp', 'callgrind')
  mkdirSync(outDir, { recursive: true })
  let redis = null
  const results = []
  try {
    if (servers.includes('redis')) redis = await startRedis()
    // One process per server for every scenario (a valgrind start costs a minute); each scenario's counters
    // start from zero, and its warm-up runs with instrumentation off.
    for (const kind of servers) {
      const server = await launch(kind, mode, outDir, redis)
      try {
        for (const scenario of scenarios) {
          const measured = await run(scenario, server, config)
          const row = { scenario, server: kind, mode, ...measured, perMessage: measured.cost / measured.delivered }
          results.push(row)
          const unit = mode === 'cpu' ? 'µs' : 'instructions'
          console.error(`${scenario.padEnd(9)} ${kind.padEnd(12)} ${fmt(row.perMessage)} ${unit}/msg  (${measured.delivered} delivered)`)
        }
      } finally {
        await server.stop()
      }
    }
  } finally {
    redis?.kill('SIGTERM')
  }
  console.log(table(results, servers, scenarios, mode))
  const json = value('json', null)
  if (json !== null) writeFileSync(json, JSON.stringify({ date: new Date().toISOString(), config, results }, null, 2))
}

function fmt (n) {
  return n >= 1000 ? Math.round(n).toLocaleString('en-US') : n.toFixed(1)
}

function table (results, servers, scenarios, mode) {
  const unit = mode === 'cpu' ? 'CPU µs / message' : 'instructions / message'
  const lines = [`| ${unit} | ${scenarios.join(' | ')} |`, `|---|${scenarios.map(() => '--:').join('|')}|`]
  const cell = (scenario, server) => results.find((r) => r.scenario === scenario && r.server === server)?.perMessage
  for (const server of servers) {
    lines.push(`| ${server} | ${scenarios.map((s) => {
      const v = cell(s, server)
      if (v === undefined) return '—'
      const floor = cell(s, 'node-http')
      const map = cell(s, 'fastify-map')
      const ratios = []
      if (floor !== undefined && server !== 'node-http') ratios.push(`${(v / floor).toFixed(2)}× floor`)
      if (map !== undefined && server !== 'node-http' && server !== 'fastify-map') ratios.push(`${(v / map).toFixed(2)}× map`)
      if (server === 'redis' && cell(s, 'memory') !== undefined) ratios.push(`${(v / cell(s, 'memory')).toFixed(2)}× memory`)
      return `${fmt(v)}${ratios.length > 0 ? ` (${ratios.join(', ')})` : ''}`
    }).join(' | ')} |`)
  }
  return lines.join('\n')
}

async function freePort () {
  return await new Promise((resolve, reject) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address()
      s.close(() => resolve(port))
    }).on('error', reject)
  })
}

async function startRedis () {
  const port = await freePort()
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' })
  child.url = `redis://127.0.0.1:${port}`
  for (let i = 0; i < 100; i++) {
    const up = await new Promise((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => { s.end(); resolve(true) }).on('error', () => resolve(false))
    })
    if (up) return child
    await sleep(50)
  }
  child.kill('SIGTERM')
  throw new Error('redis-server did not start')
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/** Forks one server; returns its port, an IPC ask(), and measure start/stop in the chosen mode. */
async function launch (kind, mode, outDir, redis) {
  const stamp = `${kind}-${Date.now()}`
  // BENCH_NODE_ARGS: more flags for the server's node (e.g. --trace-deopt), space-separated.
  const nodeArgs = ['--expose-gc', ...(process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean)]
  // --perf-map: V8 writes /tmp/perf-<pid>.map, which bench/profile-callgrind.js uses to name JIT code in a dump.
  if (args.includes('--perf-map')) nodeArgs.push('--perf-basic-prof')
  if (args.includes('--cpu-prof')) {
    const dir = path.join(here, 'results', 'tmp', 'profiles')
    nodeArgs.push('--cpu-prof', `--cpu-prof-dir=${dir}`, `--cpu-prof-name=path-${stamp}.cpuprofile`)
  }
  const outFile = path.join(outDir, `${stamp}.out`)
  const options = {
    env: { ...process.env, NODE_ENV: 'production', BENCH_FREE_TICKS: args.includes('--free-ticks') ? '1' : '0', REDIS_URL: redis?.url ?? '', BENCH_PACKAGE: value('package', process.env.BENCH_PACKAGE ?? '') },
    stdio: ['ignore', process.env.BENCH_NODE_ARGS ? 'inherit' : 'ignore', 'inherit', 'ipc']
  }
  if (mode === 'callgrind') {
    options.execPath = 'valgrind'
    options.execArgv = ['--tool=callgrind', '--instr-atstart=no', `--callgrind-out-file=${outFile}`, '-q', process.execPath, ...nodeArgs]
  } else {
    options.execArgv = nodeArgs
  }
  const child = fork(fileURLToPath(import.meta.url), ['--serve', kind], options)
  const pending = new Map()
  let nextId = 0
  const ready = new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`${kind} server exited (${code}) before it was ready`)))
    child.on('message', (msg) => {
      if (msg.ready) resolve(msg.port)
      else pending.get(msg.id)?.(msg)
    })
  })
  const port = await ready
  const ask = (cmd) => new Promise((resolve) => {
    const id = ++nextId
    pending.set(id, (msg) => { pending.delete(id); resolve(msg) })
    child.send({ cmd, id })
  })
  const control = (...flags) => new Promise((resolve, reject) => {
    execFile('callgrind_control', [...flags, String(child.pid)], (err) => err ? reject(err) : resolve())
  })
  let cpu = 0
  let started = 0
  return {
    kind,
    port,
    ask,
    /**
     * A full GC, so that the measured phase does not inherit a major collection the warm-up made due. It comes
     * before the warm-up's last REWARM messages, never straight before the measurement: a full GC collects the
     * maps of objects that have no instance at that moment, which deoptimizes the code that embeds them, and the
     * measured phase would count V8 optimizing it again.
     */
    async gc () {
      await ask('gc')
    },
    async on () {
      if (mode === 'callgrind') await control('-i', 'on')
      else started = (await ask('cpu')).cpu
    },
    async off () {
      if (mode === 'callgrind') await control('-i', 'off')
      else cpu += (await ask('cpu')).cpu - started
    },
    /** Instructions (callgrind) or CPU µs counted while on. */
    async cost (label) {
      if (mode !== 'callgrind') {
        const spent = cpu
        cpu = 0
        return spent
      }
      for (const f of readdirSync(outDir)) if (f.startsWith(`${stamp}.out`)) rmSync(path.join(outDir, f))
      await control('-d') // dumps and zeroes the counters
      const dumps = readdirSync(outDir).filter((f) => f.startsWith(`${stamp}.out`))
      let total = 0
      for (const f of dumps) {
        const m = /^totals: (\d+)/m.exec(readFileSync(path.join(outDir, f), 'utf8'))
        if (m !== null) total += Number(m[1])
        // --keep: the dump stays, for callgrind_annotate (C++ and V8 builtins by name; JIT code is unnamed).
        if (args.includes('--keep')) renameSync(path.join(outDir, f), path.join(outDir, `${kind}-${label}-${child.pid}.callgrind`))
        else rmSync(path.join(outDir, f))
      }
      return total
    },
    async stop () {
      const exited = new Promise((resolve) => child.once('exit', resolve))
      child.send({ cmd: 'stop' })
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000)
      await exited
      clearTimeout(timer)
      for (const f of readdirSync(outDir)) if (f.startsWith(`${stamp}.out`)) rmSync(path.join(outDir, f))
    }
  }
}

// ——— HTTP ———

const pollAgent = new http.Agent({ keepAlive: true, maxSockets: Infinity, scheduling: 'lifo' })
const pushAgent = new http.Agent({ keepAlive: true, maxSockets: 20, scheduling: 'lifo' })

function request (agent, port, method, path, body) {
  return new Promise((resolve, reject) => {
    const headers = body === undefined ? undefined : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }
    const req = http.request({ agent, host: '127.0.0.1', port, method, path, headers }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (chunk) => { text += chunk })
      res.on('end', () => resolve({ status: res.statusCode, body: text }))
      res.on('error', reject)
    })
    req.on('error', (err) => {
      // A keep-alive socket the server closed as it was reused (valgrind makes idle gaps long): the request never
      // reached the server, so sending it again on a new socket is safe.
      if (err.code === 'ECONNRESET' && req.reusedSocket) request(agent, port, method, path, body).then(resolve, reject)
      else reject(err)
    })
    req.end(body)
  })
}

/** One poller per channel: polls with its cursor; on an answer counts its messages and (if `again`) re-polls. */
function poller (port, channel, counts, cursor = null) {
  const p = {
    channel,
    cursor,
    again: true,
    poll () {
      const query = `/poll?channel=${channel}&timeout=60000${p.cursor === null ? '' : `&cursor=${p.cursor}`}`
      request(pollAgent, port, 'GET', query).then((res) => {
        if (res.status !== 200) throw new Error(`poll answered ${res.status}: ${res.body}`)
        const body = JSON.parse(res.body)
        p.cursor = body.cursor
        counts.delivered += body.messages.length
        if (p.again) p.poll()
        counts.onAnswer(p, body)
      }).catch((err) => counts.fail(err))
    }
  }
  return p
}

function push (port, channel, k) {
  return request(pushAgent, port, 'POST', '/push', JSON.stringify({ channel, data: { k, text: 'hello from the bench' } })).then((res) => {
    if (res.status !== 200) throw new Error(`push answered ${res.status}: ${res.body}`)
  })
}

async function until (condition, what, ms = 600_000) {
  const deadline = Date.now() + ms
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(20)
  }
}

function newCounts () {
  const counts = { delivered: 0, error: null, onAnswer: () => {}, fail: (err) => { counts.error ??= err } }
  return counts
}

/** Opens one poll per channel and waits until the server holds them all. */
async function open (server, channels, counts, cursor = null) {
  const pollers = channels.map((c) => poller(server.port, c, counts, cursor))
  for (const p of pollers) p.poll()
  await until(async () => (await server.ask('held')).held >= pollers.length, 'the polls to be held')
  return pollers
}

/** After a scenario: its channels disconnected (answering what is still held), so that the next starts from none. */
async function release (server, channels) {
  for (const channel of channels) {
    const res = await request(pushAgent, server.port, 'DELETE', `/disconnect?channel=${channel}`)
    if (res.status !== 200) throw new Error(`disconnect answered ${res.status}: ${res.body}`)
  }
  await until(async () => (await server.ask('held')).held === 0, 'every poll to be released')
}

/**
 * The last messages of the warm-up, delivered after its full GC (see `gc`): the GC deoptimizes some 35 functions
 * of Node's http and streams (`--trace-deopt`: "weak objects"), and with 1,000 messages after it some of them
 * were still being optimized again inside the measured window.
 */
const REWARM = 3000

async function run (scenario, server, config) {
  const counts = newCounts()
  const tag = `${scenario}-${Date.now().toString(36)}`
  const check = () => { if (counts.error !== null) throw counts.error }

  if (scenario === 'held' || scenario === 'pingpong') {
    const n = scenario === 'held' ? config.held : config.channels
    const channels = Array.from({ length: n }, (_, i) => `${tag}-${i}`)
    const pollers = await open(server, channels, counts)
    let k = 0
    /** Pushes `per` messages on every channel: held, one per channel in turn with at most 20 in flight; pingpong,
     * each channel's next push once its previous message is delivered. */
    const phase = async (per) => {
      const target = counts.delivered + per * n
      if (scenario === 'held') {
        for (let r = 0; r < per; r++) {
          const inFlight = new Set()
          for (const c of channels) {
            const sent = push(server.port, c, ++k).catch((err) => counts.fail(err)).finally(() => inFlight.delete(sent))
            inFlight.add(sent)
            if (inFlight.size >= 20) await Promise.race(inFlight)
          }
          await Promise.all(inFlight)
          // The next round's push on a channel must find its re-poll (or the retained message), either way one
          // answer per message: wait for this round's deliveries.
          const roundTarget = target - (per - r - 1) * n
          await until(async () => { check(); return counts.delivered >= roundTarget }, 'the round\'s deliveries')
        }
      } else {
        const left = new Map(channels.map((c) => [c, per]))
        counts.onAnswer = (p, body) => {
          if (body.messages.length === 0) return
          const more = left.get(p.channel)
          if (more > 0) {
            left.set(p.channel, more - 1)
            push(server.port, p.channel, ++k).catch((err) => counts.fail(err))
          }
        }
        for (const c of channels) {
          left.set(c, per - 1)
          push(server.port, c, ++k).catch((err) => counts.fail(err))
        }
      }
      await until(async () => { check(); return counts.delivered >= target }, 'every delivery')
      await until(async () => { check(); return (await server.ask('held')).held >= n }, 'every re-poll to be held')
    }
    // Warm-up with instrumentation off, long enough that the measured phase runs optimized code rather than
    // counting V8's baseline code and its optimizing compiler's threads.
    await phase(Math.ceil(Math.max(0, config.warmup - REWARM) / n))
    await server.gc()
    await phase(Math.ceil(Math.min(config.warmup, REWARM) / n))
    const per = scenario === 'held' ? config.rounds : Math.ceil(config.messages / n)
    const before = counts.delivered
    await server.on()
    await phase(per)
    await server.off()
    const delivered = counts.delivered - before
    const cost = await server.cost(scenario)
    for (const p of pollers) p.again = false
    await release(server, channels)
    return { delivered, cost }
  }

  if (scenario === 'fanout') {
    const channel = `${tag}-all`
    let delivered = 0
    let cursor = 'latest'
    const warmups = Math.max(2, Math.ceil(config.warmup / config.fanout))
    for (let round = -warmups; round < config.rounds; round++) { // warm-up rounds with instrumentation off
      const pollers = await open(server, Array.from({ length: config.fanout }, () => channel), counts, cursor)
      for (const p of pollers) p.again = false
      const target = counts.delivered + config.fanout
      if (round === -Math.min(warmups, Math.ceil(REWARM / config.fanout))) await server.gc() // then REWARM messages before the measured rounds
      if (round >= 0) await server.on()
      await push(server.port, channel, round + warmups + 1)
      await until(async () => { check(); return counts.delivered >= target }, 'the fan-out\'s deliveries')
      if (round >= 0) {
        await server.off()
        delivered += config.fanout
      }
      // The next round's polls start after this round's message, so they are held until its push.
      cursor = pollers[0].cursor
    }
    const cost = await server.cost(scenario)
    await release(server, [channel])
    return { delivered, cost }
  }
  throw new Error(`unknown scenario ${scenario}`)
}

if (args[0] === '--serve') await serve(args[1])
else await main()
