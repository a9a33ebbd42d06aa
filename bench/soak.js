// The soak (`npm run bench -- --soak MINUTES`, or `node bench/soak.js MINUTES`): for the given minutes, on the
// memory store and on Redis at the same time, two plugin instances each hold polls that churn through every way
// a poll ends — answered by a push, timed out, aborted by the client, disconnected, closed with their instance
// (instance 1 of each pair restarts every minute) — while every 10 s each server reports its live heap, RSS,
// active handles and timers, listeners, the plugin's stats, and redis-server its keys and used memory. At the
// end: the slope of each series after a warm-up and whether it is flat (bench/soak/analysis.js says how that is
// decided), and the client's delivery check (lost and duplicated must be 0). See bench/README.md, "Soak".
//
//   node bench/soak.js MINUTES [--stores memory,redis] [--out DIR] [--sample SECONDS] [--restart-every SECONDS]
import { mkdirSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import process from 'node:process'
import { fileURLToPath } from 'node:url'
import { judge } from './soak/analysis.js'
import { LOAD, SOAK_OPTIONS } from './soak/config.js'
import { guard, call, sleep, start, startRedis, stop } from './soak/processes.js'
import { renderSoak } from './soak/report.js'

const here = path.dirname(fileURLToPath(import.meta.url))

// ---------------------------------------------------------------------------------------------- options
const argv = process.argv.slice(2)
const value = (name) => {
  const i = argv.indexOf(`--${name}`)
  return i === -1 ? undefined : argv[i + 1]
}
const minutes = Number(value('soak') ?? argv[0])
if (!Number.isFinite(minutes) || minutes <= 0 || minutes > 24 * 60) {
  console.error('usage: npm run bench -- --soak MINUTES [--stores memory,redis] [--out DIR] [--sample SECONDS] [--restart-every SECONDS]')
  process.exit(2)
}
const durationS = minutes * 60
const stores = (value('stores') ?? 'memory,redis').split(',')
for (const s of stores) {
  if (s !== 'memory' && s !== 'redis') {
    console.error(`unknown store ${s}: memory or redis`)
    process.exit(2)
  }
}
const sampleS = Number(value('sample') ?? (durationS >= 300 ? 10 : Math.max(1, durationS / 30)))
const restartS = Number(value('restart-every') ?? (durationS >= 180 ? 60 : durationS / 3))
const warmupS = Math.min(120, 0.2 * durationS)
const outDir = path.resolve(value('out') ?? path.join(here, 'results'))
const startedAt = new Date()
const stamp = startedAt.toISOString().slice(0, 19).replace(/:/g, '-') + 'Z'

const t0 = Date.now()
const elapsedS = () => (Date.now() - t0) / 1000
function log (message) {
  process.stderr.write(`[soak ${elapsedS().toFixed(1).padStart(7)}s] ${message}\n`)
}
guard(log)

// ----------------------------------------------------------------------------------------------- processes
let redis = null

async function startServer (store) {
  const child = await start(path.join(here, 'soak', 'server.js'), [store], {
    execArgv: ['--expose-gc'],
    env: { ...process.env, REDIS_URL: redis?.url ?? '', NODE_ENV: 'production' }
  })
  return { child, base: `http://127.0.0.1:${child.ready.port}`, startedAtS: elapsedS() }
}

/** One store's pair of instances and its client. Instance 0 lives for the whole run; instance 1 restarts. */
async function startStore (store) {
  const servers = await Promise.all([startServer(store), startServer(store)])
  const client = await start(path.join(here, 'soak', 'client.js'), [])
  await call(client, { cmd: 'start', mode: store, bases: servers.map((s) => s.base) })
  return { store, servers, client, restarting: null, restarts: [], samples: [] }
}

async function restart (set) {
  const began = elapsedS()
  // Memory: the channels homed on the instance start a new life with its replacement, so the client is told
  // (it ends their segments and lets their pushes in flight finish). Redis: the client finds out by itself,
  // from 503s and refused connections, and goes to the other instance with its cursors.
  // The replacement is started first (as a rolling deploy would), so that the outage is the close alone and
  // not a process start, which takes seconds on a busy machine.
  const replacement = await startServer(set.store)
  const draining = elapsedS()
  if (set.store === 'memory') await call(set.client, { cmd: 'restarting', slot: 1 })
  const stopping = elapsedS()
  const killed = await stop(set.servers[1].child)
  set.servers[1] = replacement
  await call(set.client, { cmd: 'up', slot: 1, base: replacement.base })
  const ms = (a, b) => Math.round((b - a) * 1000)
  set.restarts.push({ atS: began - runStart, startMs: ms(began, draining), outageMs: ms(draining, elapsedS()), drainMs: ms(draining, stopping), closeMs: ms(stopping, elapsedS()), killed })
}

async function sampleStore (set, t) {
  const servers = await Promise.all(set.servers.map((s, slot) =>
    slot === 1 && set.restarting !== null ? null : call(s.child, { cmd: 'sample' }, 30_000).catch(() => null)))
  const client = await call(set.client, { cmd: 'counts' }, 30_000)
  set.samples.push({ t, servers, client })
}

async function sampleRedis () {
  if (redis === null) return null
  const [dbsize, info] = await Promise.all([redis.client.dbsize(), redis.client.info('memory')])
  return { dbsize, usedMemory: Number(/used_memory:(\d+)/.exec(info)?.[1]) }
}

// ------------------------------------------------------------------------------------------------------ run
const loadStart = os.loadavg()
log(`soak: ${minutes} min on ${stores.join(' and ')}, a sample every ${sampleS} s, instance 1 restarts every ${restartS} s, warm-up ${warmupS} s`)
if (stores.includes('redis')) redis = await startRedis()
const sets = await Promise.all(stores.map(startStore))
const redisSamples = []

const runStart = elapsedS()
const endS = runStart + durationS
let nextSample = runStart + sampleS
// The two stores restart half a period apart, so their restarts never coincide.
const nextRestart = sets.map((_, i) => runStart + restartS * (1 + i / sets.length))
while (elapsedS() < endS) {
  const wake = Math.min(nextSample, ...nextRestart, endS)
  await sleep(Math.max(0, (wake - elapsedS()) * 1000))
  const now = elapsedS()
  sets.forEach((set, i) => {
    if (now >= nextRestart[i] && nextRestart[i] < endS - 1) {
      nextRestart[i] += restartS
      if (set.restarting !== null) return // the last one has not finished: skip this one
      log(`${set.store}: restarting instance 1`)
      set.restarting = restart(set).then(() => {
        const r = set.restarts.at(-1)
        log(`${set.store}: instance 1 replaced: start ${r.startMs} ms, then out for ${r.outageMs} ms (drain ${r.drainMs}, close ${r.closeMs}${r.killed ? ', killed' : ''})`)
      }, (err) => {
        // A replacement that failed to start is reported, and the next period tries again: instance 1 keeps serving.
        set.restarts.push({ atS: now - runStart, failed: err.message })
        log(`${set.store}: restart failed: ${err.message}`)
      }).finally(() => { set.restarting = null })
    } else if (now >= nextRestart[i]) nextRestart[i] = Infinity
  })
  if (now >= nextSample) {
    nextSample += sampleS
    const t = now - runStart
    await Promise.all(sets.map((set) => sampleStore(set, t)))
    const r = await sampleRedis()
    if (r !== null) redisSamples.push({ t, ...r })
    const brief = sets.map((s) => {
      const last = s.samples[s.samples.length - 1]
      const a = last.servers[0]
      return `${s.store}: heap ${(a?.heapUsed / 2 ** 20).toFixed(1)} MiB, held ${a?.plugin.heldPolls}, acked ${last.client.pushAcked}`
    })
    log(`${Math.round(t)} s  ${brief.join(' | ')}${r === null ? '' : ` | redis keys ${r.dbsize}, ${(r.usedMemory / 2 ** 20).toFixed(1)} MiB`}`)
  }
}

// ------------------------------------------------------------------------------------------------- finish
log('load off: waiting for pending restarts and deliveries')
await Promise.all(sets.map((s) => s.restarting))
const verdicts = await Promise.all(sets.map((s) => call(s.client, { cmd: 'finish', drainMs: 15_000 }, 60_000)))
await Promise.all(sets.flatMap((s) => [...s.servers.map((srv) => stop(srv.child)), stop(s.client)]))
if (redis !== null) await redis.stop()
log('every process stopped')

// ------------------------------------------------------------------------------------------------ analysis
/** The series of the long-lived instance (0) of a store, as [[minutes, value]] after the warm-up. */
function seriesOf (set) {
  const after = set.samples.filter((s) => s.t >= warmupS && s.servers[0] !== null)
  const get = (fn) => after.map((s) => [s.t / 60, fn(s.servers[0])])
  const out = {
    heapUsed: { kind: 'heapUsed', points: get((x) => x.heapUsed) },
    rss: { kind: 'rss', points: get((x) => x.rss) },
    activeResources: { kind: 'count', points: get((x) => Object.values(x.resources).reduce((a, b) => a + b, 0)) },
    heldPolls: { kind: 'count', points: get((x) => x.plugin.heldPolls) },
    pluginChannels: { kind: 'count', points: get((x) => x.plugin.channels) }
  }
  const types = new Set(after.flatMap((s) => Object.keys(s.servers[0].resources)))
  for (const type of types) out[`resources.${type}`] = { kind: 'count', points: get((x) => x.resources[type] ?? 0) }
  const listenerKeys = new Set(after.flatMap((s) => Object.keys(s.servers[0].listeners)))
  for (const key of listenerKeys) {
    if (key === 'sockets') continue
    out[`listeners.${key}`] = { kind: 'count', points: get((x) => x.listeners[key] ?? 0) }
  }
  out['listeners.sockets.total'] = { kind: 'count', points: get((x) => x.listeners.sockets.total) }
  out['listeners.sockets.maxPerSocket'] = { kind: 'count', points: get((x) => x.listeners.sockets.max) }
  out['sockets.open'] = { kind: 'count', points: get((x) => x.listeners.sockets.sockets) }
  return out
}

function rates (set) {
  const s = set.samples
  const per = []
  for (let i = 1; i < s.length; i++) {
    const dt = s[i].t - s[i - 1].t
    const a = s[i - 1].client
    const b = s[i].client
    per.push({
      pushesAcked: (b.pushAcked - a.pushAcked) / dt,
      answeredOk: (b.answered.ok - a.answered.ok) / dt,
      timeouts: (b.answered.timeout - a.answered.timeout) / dt,
      disconnected: (b.answered.disconnected - a.answered.disconnected) / dt,
      aborted: (b.aborted - a.aborted) / dt
    })
  }
  const out = {}
  for (const key of ['pushesAcked', 'answeredOk', 'timeouts', 'disconnected', 'aborted']) {
    const v = per.map((p) => p[key])
    out[key] = v.length === 0 ? null : { mean: v.reduce((x, y) => x + y, 0) / v.length, min: Math.min(...v), max: Math.max(...v) }
  }
  return out
}

const results = {
  kind: 'soak',
  startedAt: startedAt.toISOString(),
  minutes,
  machine: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model, node: process.version, loadAtStart: loadStart, loadAtEnd: os.loadavg() },
  method: { sampleS, restartS, warmupS, load: LOAD, pluginOptions: SOAK_OPTIONS },
  stores: sets.map((set, i) => {
    const series = {}
    for (const [name, s] of Object.entries(seriesOf(set))) series[name] = judge(s.points, s.kind)
    const v = verdicts[i]
    return {
      store: set.store,
      restarts: set.restarts,
      rates: rates(set),
      series,
      delivery: {
        expected: v.expected,
        received: v.received,
        lost: v.lost,
        duplicates: v.counts.duplicates,
        outOfOrder: v.counts.outOfOrder,
        phantoms: v.counts.phantoms,
        unexpectedGaps: v.counts.unexpectedGaps,
        badCursor: v.counts.badCursor,
        lostWakeups: v.counts.lostWakeups,
        slowWakeups: v.counts.slowWakeups,
        retentionGaps: v.counts.retentionGaps,
        trimmed: v.trimmed,
        stalls: v.counts.stalls,
        excused: v.excused,
        drained: v.drained
      },
      counts: v.counts,
      unexpected: v.unexpected,
      finalPlugin: set.samples.at(-1)?.servers[0]?.plugin ?? null,
      samples: set.samples.map((s) => ({ t: s.t, servers: s.servers, client: s.client }))
    }
  })
}
if (redis !== null || redisSamples.length > 0) {
  const after = redisSamples.filter((s) => s.t >= warmupS)
  results.redis = {
    series: {
      dbsize: judge(after.map((s) => [s.t / 60, s.dbsize]), 'count'),
      usedMemory: judge(after.map((s) => [s.t / 60, s.usedMemory]), 'redisUsedMemory')
    },
    samples: redisSamples
  }
}
const violations = results.stores.reduce((n, s) => n + s.delivery.lost + s.delivery.duplicates + s.delivery.outOfOrder +
  s.delivery.phantoms + s.delivery.unexpectedGaps + s.delivery.badCursor + s.delivery.lostWakeups + (s.delivery.drained ? 0 : 1), 0)
const notFlat = [
  ...results.stores.flatMap((s) => Object.entries(s.series).filter(([, j]) => j.flat === false).map(([name]) => `${s.store} ${name}`)),
  ...Object.entries(results.redis?.series ?? {}).filter(([, j]) => j.flat === false).map(([name]) => `redis ${name}`)
]
results.violations = violations
results.notFlat = notFlat

mkdirSync(outDir, { recursive: true })
const base = path.join(outDir, `soak-${stamp}`)
writeFileSync(`${base}.json`, JSON.stringify(results, null, 2) + '\n')
const md = renderSoak(results)
writeFileSync(`${base}.md`, md)
process.stdout.write(md)
log(`wrote ${path.relative(process.cwd(), base)}.{json,md}; violations ${violations}; not flat: ${notFlat.length === 0 ? 'none' : notFlat.join(', ')}`)
process.exit(violations === 0 ? 0 : 1)
