// scale (`npm run bench -- --scale [N]`, N default 100,000): N polls held at once, one channel each, on one
// machine. One process may hold 20,000 fds here (hard), so the servers are several processes of one app —
// examples/cluster/server.js, the README's recipe for several instances — sharing one redis-server, and the load
// comes from several client processes, each on a source address of its own (127.0.0.2, 127.0.0.3, …), so that
// no address runs out of ephemeral ports. At most `perProcess` (15,000) polls per server and per client process.
//
//   1. hold: every client opens its polls (each poll stays on one instance); time until the servers hold N;
//      server RSS per held poll (all held − idle, after a forced GC), Redis used_memory and pub/sub channels.
//   2. push: one push per channel at a steady rate (`--scale-rate`, default 1,000/s, at most `window` in flight),
//      each to an instance other than the one holding its poll, so every delivery crosses Redis pub/sub;
//      push→delivery p50/p99/max, lost (pushed with a 2xx, never delivered), duplicates, out of order.
//   3. fan-out: each poll, once its own message came, re-polls one shared channel (so N polls wait on it, spread
//      over every instance); one push to it; the time from the push to the first, median and last delivery.
//
// Every wait is bounded; every process and the redis-server are stopped at the end, on error and on a signal.
// Results: bench/results/scale-<date>.{json,md} (--out DIR elsewhere).
import process from 'node:process'
import { closeClients, merge, split, startClients } from '../lib/clients.js'
import { loadAverage, outputDir, parseArgs, runHeader, runStamp } from '../lib/config.js'
import { parseBase, pushAgent, request } from '../lib/http.js'
import { measure, redisFields } from '../lib/measure.js'
import { call, supervise, tag } from '../lib/processes.js'
import { startRedis } from '../lib/redis-server.js'
import { writeResults } from '../lib/results.js'
import { startServers } from '../lib/servers.js'
import { percentiles, round } from '../lib/stats.js'

const t0 = Date.now()
function log (message) {
  process.stderr.write(`[bench:scale ${((Date.now() - t0) / 1000).toFixed(1).padStart(7)}s] ${message}\n`)
}

export async function runScale (argv) {
  supervise(log)
  const args = parseArgs(argv)
  const after = argv[argv.indexOf('--scale') + 1]
  const n = after !== undefined && /^\d+$/.test(after) ? Number(after) : 100_000
  if (!(n >= 2)) throw new Error(`--scale ${after}: give a number of polls ≥ 2`)
  const { startedAt, stamp } = runStamp()
  // A scale run always writes its results (it is never a smoke run): bench/results/ unless --out.
  const { outDir, isResultsDir } = outputDir(args, false)
  const perProcess = 15_000
  const config = {
    n,
    perProcess,
    servers: Math.max(2, Math.ceil(n / perProcess)),
    clients: Math.max(2, Math.ceil(n / perProcess)),
    pushRate: Number(args.value('scale-rate') ?? 1000),
    pushWindow: 200,
    // Holds long enough that no poll times out during the run (a timeout would be answered and re-polled, not
    // lost — the client counts poll answers by status — but would blur the held count).
    maxTimeoutMs: 3_600_000,
    payload: 'hello from the scale bench'
  }
  // Bounds, generous for a shared machine: how long each phase may take before the run fails.
  const bounds = {
    // 100,000 polls: 50 min to hold them all. A 2-core machine shared with a load average of 40 held 5,000 in
    // 36 s, then about 57,000 of 100,000 in 20 min, its last minutes at 7 polls/s.
    openMs: Math.max(120_000, n * 30),
    pushMs: Math.max(120_000, n * 40), // 25 pushes/s at least
    drainMs: 120_000,
    fanoutMs: Math.max(60_000, n * 3)
  }
  const shared = `scale-all-${tag()}`
  const t = tag()
  log(`scale: ${n.toLocaleString('en-US')} polls over ${config.servers} server processes (examples/cluster/server.js) and ${config.clients} client processes, one redis-server`)

  const redis = await startRedis()
  let set = null
  let clients = []
  try {
    log(`redis-server ${redis.url} (pid ${redis.pid})`)
    set = await startServers({ id: 'scale', kind: 'cluster-example', instances: config.servers, env: { BENCH_MAX_TIMEOUT: String(config.maxTimeoutMs) } }, { redisUrl: redis.url })
    const bases = set.bases.map((b) => `${b}/lp`)
    clients = await startClients(config.clients)
    const sources = clients.map((_, i) => `127.0.0.${2 + i}`)

    // 1. hold
    const idle = await set.stats(true)
    const redisIdle = await redis.memory()
    log(`holding: ${n} polls from ${sources.join(', ')}; servers idle at ${mib(idle.rss)} MiB RSS in all`)
    const channels = Array.from({ length: n }, (_, i) => `scale-${t}-${i}`)
    const opening = performance.now()
    // The servers' held count, reported while the clients open (and awaited after, bounded).
    const progress = waitHeld(set, n, bounds.openMs, clients)
    await Promise.all(split(channels, clients.length).map((part, i) => call(clients[i], {
      cmd: 'open', bases, channels: part, timeout: config.maxTimeoutMs, localAddress: sources[i], next: shared, rotate: false, batch: 100, idempotent: true
    }, bounds.openMs)))
    const heldNow = await progress
    const holdMs = performance.now() - opening
    const full = await set.stats(true)
    const redisFull = await redis.memory()
    if (heldNow !== n) throw new Error(`only ${heldNow} of ${n} polls held after ${Math.round(holdMs)} ms`)
    log(`held ${heldNow} in ${(holdMs / 1000).toFixed(1)} s; server RSS ${mib(idle.rss)} -> ${mib(full.rss)} MiB (${kib((full.rss - idle.rss) / n)} KiB per poll); Redis used_memory ${mib(redisIdle.usedMemory)} -> ${mib(redisFull.usedMemory)} MiB, ${redisFull.pubsubChannels} pub/sub channels`)

    // 2. one push per channel
    log(`pushing: one push per channel at up to ${config.pushRate}/s, at most ${config.pushWindow} in flight`)
    // Progress every 30 s: the clients' counts (a 100,000-push phase takes minutes on a shared machine).
    const reporting = setInterval(async () => {
      const seen = await Promise.all(clients.map((c) => call(c, { cmd: 'status' }))).catch(() => [])
      const total = (key) => seen.reduce((sum, s) => sum + s[key], 0).toLocaleString('en-US')
      log(`  pushed ${total('pushed')}, acknowledged ${total('acked')}, delivered ${total('delivered')} (load average ${loadAverage().join(', ')})`)
    }, 30_000)
    const pushing = await measure({ stats: set.stats, redis }, () => Promise.all(clients.map((c) => call(c, {
      cmd: 'push',
      rate: config.pushRate / clients.length,
      window: Math.ceil(config.pushWindow / clients.length),
      maxMs: bounds.pushMs,
      rounds: 1,
      drainMs: bounds.drainMs,
      payload: config.payload
    }, bounds.pushMs + bounds.drainMs + 60_000)))).finally(() => clearInterval(reporting))
    const r = merge(pushing.result)
    const pushMs = Math.max(...pushing.result.map((p) => p.pushMs))
    const push = {
      pushed: r.pushed,
      acked: r.acked,
      pushFailed: r.pushFailed,
      pushErrors: r.pushErrors,
      delivered: r.delivered,
      lost: r.lost,
      duplicates: r.duplicates,
      outOfOrder: r.outOfOrder,
      pollErrors: r.pollErrors,
      pollErrorCodes: r.pollErrorCodes,
      pollStatus: r.pollStatus,
      latencyMs: percentiles(r.latencies),
      pushMs: round(pushMs, 0),
      pushRate: round(r.acked / (pushMs / 1000), 0),
      cpuPerMsgUs: round(pushing.cpuUs / Math.max(1, r.delivered), 2),
      ...redisFields(pushing, r.delivered, r.acked)
    }
    log(`pushed ${r.acked}/${n} at ${push.pushRate}/s (failed: ${r.pushFailed} ${JSON.stringify(r.pushErrors)}): delivered ${r.delivered}, lost ${r.lost}, duplicates ${r.duplicates}, p50 ${push.latencyMs.p50} ms, p99 ${push.latencyMs.p99} ms, max ${push.latencyMs.max} ms`)

    // 3. fan-out: every poll re-polled the shared channel after its own message
    const reheld = await waitHeld(set, n, bounds.openMs, clients)
    log(`fan-out: ${reheld} polls held on ${shared}; one push`)
    const fanning = await measure({ stats: set.stats, redis }, async () => {
      const waits = clients.map((c, i) => call(c, { cmd: 'fanwait', expect: split(channels, clients.length)[i].length, waitMs: bounds.fanoutMs }, bounds.fanoutMs + 30_000))
      const agent = pushAgent(1)
      const sentAt = performance.timeOrigin + performance.now()
      const res = await request(agent, parseBase(bases[0]), 'POST', '/push', JSON.stringify({ channel: shared, data: { fan: true, text: config.payload } }))
      agent.destroy()
      if (res.status !== 200) throw new Error(`the fan-out push answered ${res.status}: ${res.body}`)
      return { sentAt, ackMs: performance.timeOrigin + res.at - sentAt, parts: await Promise.all(waits) }
    })
    const { sentAt, ackMs, parts } = fanning.result
    const times = parts.flatMap((p) => p.times.map((at) => at - sentAt))
    const fan = {
      held: reheld,
      delivered: parts.reduce((sum, p) => sum + p.delivered, 0),
      lost: parts.reduce((sum, p) => sum + p.lost, 0),
      duplicates: parts.reduce((sum, p) => sum + p.duplicates, 0),
      pushAckMs: round(ackMs, 1),
      deliveryMs: percentiles(times),
      firstMs: times.length > 0 ? round(Math.min(...times), 1) : null,
      lastMs: times.length > 0 ? round(Math.max(...times), 1) : null,
      cpuPerMsgUs: round(fanning.cpuUs / Math.max(1, times.length), 2),
      ...redisFields(fanning, times.length, 1)
    }
    log(`fan-out: ${fan.delivered}/${n} delivered, first after ${fan.firstMs} ms, median ${fan.deliveryMs.p50} ms, last ${fan.lastMs} ms; lost ${fan.lost}`)

    const results = {
      kind: 'scale',
      ...runHeader({ startedAt, loadAtStart, command: `node bench/run.js ${argv.join(' ')}`.trim() }),
      method: {
        ...config,
        bounds,
        summary: `${config.servers} processes of examples/cluster/server.js (Fastify, the plugin under /lp, RedisStore + RedisNotifier on one ` +
          `redis-server), each on its own loopback port; ${config.clients} forked client processes, each connecting from its own source address ` +
          '(127.0.0.2, …) and holding one socket per poll, each poll on one instance. Server CPU and RSS are read by each server process ' +
          '(after a forced GC for RSS) and summed; Redis memory and channels from INFO. Pushes go to another instance than the poll\'s, so every ' +
          'delivery crosses Redis pub/sub; push→delivery is timed by the client that pushes and polls. Fan-out times are on the machine clock ' +
          '(performance.timeOrigin + now) from the orchestrator\'s push to each poll\'s answer read in its client.'
      },
      hold: {
        n,
        held: heldNow,
        holdMs: round(holdMs, 0),
        serverRssIdle: idle.rss,
        serverRssHeld: full.rss,
        rssPerPoll: round((full.rss - idle.rss) / n, 0),
        heapPerPoll: round((full.heapUsed - idle.heapUsed) / n, 0),
        fdsHeld: full.fds,
        perServer: full.processes,
        redisUsedMemoryIdle: redisIdle.usedMemory,
        redisUsedMemoryHeld: redisFull.usedMemory,
        redisBytesPerPoll: round((redisFull.usedMemory - redisIdle.usedMemory) / n, 0),
        redisPubsubChannels: redisFull.pubsubChannels
      },
      push,
      fanout: fan
    }
    results.violations = (heldNow === n ? 0 : 1) + push.lost + push.duplicates + push.outOfOrder + (push.acked === n ? 0 : 1) + fan.lost + fan.duplicates
    const md = renderScale(results)
    const base = writeResults({ outDir, kind: 'scale', stamp, files: { json: JSON.stringify(results, null, 2) + '\n', md }, pointer: isResultsDir })
    log(`wrote ${base}.{json,md} in ${results.durationS} s`)
    process.stdout.write(md)
    if (results.violations > 0) process.exitCode = 1
  } finally {
    await closeClients(clients)
    await set?.stop()
    await redis.stop()
  }
}

const loadAtStart = loadAverage()
const mib = (bytes) => (bytes / 1048576).toFixed(1)
const kib = (bytes) => (bytes / 1024).toFixed(2)

/**
 * The servers' held count until it is `n`, every 500 ms (N polls: no event to wait on across processes); bounded.
 * Every 30 s it logs the count with what the clients see: requests in flight and failed connects by code.
 */
async function waitHeld (set, n, ms, clients = []) {
  const deadline = Date.now() + ms
  let held = -1
  let last = 0
  while (Date.now() < deadline) {
    held = (await set.stats()).held
    if (held === n) return held
    if (Date.now() - last > 30_000) {
      const seen = await Promise.all(clients.map((c) => call(c, { cmd: 'status' })))
      const inflight = seen.reduce((sum, s) => sum + s.inflight, 0)
      const errors = {}
      for (const s of seen) for (const [code, count] of Object.entries(s.pollErrorCodes)) errors[code] = (errors[code] ?? 0) + count
      log(`  ${held.toLocaleString('en-US')} of ${n.toLocaleString('en-US')} held; clients: ${inflight.toLocaleString('en-US')} requests in flight, failed ${JSON.stringify(errors)} (load average ${loadAverage().join(', ')})`)
      // More held than requests in flight: connections a client's kernel gave up on (ETIMEDOUT, closed without a
      // packet) after the server had accepted them. Seen when the loopback dropped packets (bench/lib/http.js).
      if (held > n) log(`  ${held - n} more polls held than pollers: half-open connections of clients that gave up`)
      last = Date.now()
    }
    await new Promise((resolve) => setTimeout(resolve, 500))
  }
  return held
}

const fmt = (x, digits = 1) => (x === null || x === undefined || Number.isNaN(x) ? '—' : Number(x).toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: 0 }))

export function renderScale (results) {
  const { machine: m, method, hold, push, fanout } = results
  return [
    `# fastify-longpoll at scale: ${fmt(hold.n, 0)} held polls on one machine`,
    '',
    `- **Date:** ${results.date} · **duration:** ${results.durationS} s · **command:** \`${results.command}\``,
    `- **Machine:** ${m.cpu}, ${m.cores} cores, ${m.ramGiB} GiB RAM, ${m.os}, fd limit ${m.fdLimit} per process · **Node:** ${results.node} · **load average** at start ${results.loadAverage.atStart.join(', ')}, at end ${results.loadAverage.atEnd.join(', ')}`,
    `- **Method:** ${method.summary}`,
    `- **Violations:** ${results.violations} (polls not held, pushes not acknowledged, lost, duplicated or out-of-order deliveries)`,
    '',
    '## Hold',
    '',
    '| polls | server processes | client processes | time to hold all (s) | server RSS / held poll (KiB) | server heap / held poll (KiB) | Redis used_memory (MiB, idle → held) | Redis bytes / poll | pub/sub channels |',
    '|--:|--:|--:|--:|--:|--:|--:|--:|--:|',
    `| ${fmt(hold.held, 0)}/${fmt(hold.n, 0)} | ${method.servers} | ${method.clients} | ${fmt(hold.holdMs / 1000, 1)} | ${fmt(hold.rssPerPoll / 1024, 2)} | ${fmt(hold.heapPerPoll / 1024, 2)} | ${fmt(hold.redisUsedMemoryIdle / 1048576, 1)} → ${fmt(hold.redisUsedMemoryHeld / 1048576, 1)} | ${fmt(hold.redisBytesPerPoll, 0)} | ${fmt(hold.redisPubsubChannels, 0)} |`,
    '',
    `Per server process (held polls, RSS MiB, fds): ${hold.perServer.map((p) => `${fmt(p.held, 0)} / ${fmt(p.rss / 1048576, 0)} / ${fmt(p.fds, 0)}`).join(' · ')}`,
    '',
    `## One push per channel, at up to ${fmt(method.pushRate, 0)}/s (at most ${method.pushWindow} in flight), each through another instance than its poll's`,
    '',
    '| pushed (2xx) | pushes/s achieved | delivered | lost | duplicates | out of order | p50 (ms) | p99 (ms) | max (ms) | server CPU / msg (µs, all processes) | Redis cmds / push |',
    '|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|',
    `| ${fmt(push.acked, 0)}/${fmt(hold.n, 0)} | ${fmt(push.pushRate, 0)} | ${fmt(push.delivered, 0)} | ${push.lost} | ${push.duplicates} | ${push.outOfOrder} | ${fmt(push.latencyMs.p50, 1)} | ${fmt(push.latencyMs.p99, 1)} | ${fmt(push.latencyMs.max, 1)} | ${fmt(push.cpuPerMsgUs, 0)} | ${fmt(push.redisCommandsPerPush, 2)} |`,
    '',
    '## Fan-out: every poll, once its own message came, re-polls one shared channel; one push to it',
    '',
    '| polls held on it | delivered | lost | push answered (ms) | first (ms) | p50 (ms) | p99 (ms) | last delivery (ms) | server CPU / delivery (µs) |',
    '|--:|--:|--:|--:|--:|--:|--:|--:|--:|',
    `| ${fmt(fanout.held, 0)} | ${fmt(fanout.delivered, 0)} | ${fanout.lost} | ${fmt(fanout.pushAckMs, 1)} | ${fmt(fanout.firstMs, 1)} | ${fmt(fanout.deliveryMs.p50, 1)} | ${fmt(fanout.deliveryMs.p99, 1)} | ${fmt(fanout.lastMs, 1)} | ${fmt(fanout.cpuPerMsgUs, 1)} |`,
    '',
    'A poll that got the fan-out message does not poll again, so the last delivery measures the fan-out alone. Latency and CPU share ' +
      'the machine with the client processes (2 cores here): read them as this machine\'s, under this load.',
    ''
  ].join('\n')
}
