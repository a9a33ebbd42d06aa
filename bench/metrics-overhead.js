// What Prometheus counting costs per delivered message: the same fan-out (N polls held on one channel, one
// push answers them all) on two apps in one process, one with `metrics: true`, measured in alternating rounds
// with this process's own CPU time (process.cpuUsage), so the load of other processes on a shared machine
// falls on both sides alike. Reports the median CPU per delivered message of each and their ratio.
//
//   npm run build && node --expose-gc bench/metrics-overhead.js [--polls 2000] [--rounds 15]
//   (BENCH_BOTH_OFF=1: metrics off on both sides, to see the method's own noise)
import process from 'node:process'
import Fastify from 'fastify'
import { Registry } from 'prom-client'
import longpoll from 'fastify-longpoll'

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`)
  return i < 0 ? fallback : Number(process.argv[i + 1])
}
const polls = arg('polls', 2000)
const rounds = arg('rounds', 15)

async function app (metrics) {
  const server = Fastify({ logger: false })
  await server.register(longpoll, metrics ? { metrics: { registry: new Registry() } } : {})
  await server.ready()
  return server
}

/** Holds `polls` polls on a channel, then measures CPU from the push to the last answer. */
async function round (server, channel) {
  const { id } = await server.longpoll.push(channel, 'start')
  const answers = Array.from({ length: polls }, () => server.inject(`/poll?channel=${channel}&cursor=${id}&timeout=60000`))
  while (server.longpoll.stats().heldPolls < polls) await new Promise((resolve) => setImmediate(resolve))
  if (typeof global.gc === 'function') global.gc()
  const before = process.cpuUsage()
  await server.longpoll.push(channel, { text: 'hello' })
  const done = await Promise.all(answers)
  const used = process.cpuUsage(before)
  if (done.some((answer) => answer.statusCode !== 200 || answer.json().messages.length !== 1)) throw new Error('a poll missed the message')
  return (used.user + used.system) / polls
}

const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]

// Fresh apps every round, created and measured in alternating order: an app's cost depends on more than its
// options (which was created first, what ran in it before), and that must fall on both sides alike.
// BENCH_BOTH_OFF=1 runs metrics off on both sides: the ratio it prints is the method's own noise.
const withMetrics = process.env.BENCH_BOTH_OFF !== '1'
const results = { off: [], on: [] }
for (let i = -2; i < rounds; i++) {
  const kinds = i % 2 === 0 ? [['off', false], ['on', withMetrics]] : [['on', withMetrics], ['off', false]]
  const apps = []
  for (const [name, metrics] of kinds) apps.push([name, await app(metrics)])
  for (const [name, server] of apps) {
    const cpu = await round(server, `r${i}`)
    if (i >= 0) results[name].push(cpu) // rounds -2 and -1 warm up
  }
  for (const [, server] of apps) await server.close()
}
const offUs = median(results.off)
const onUs = median(results.on)
console.log(JSON.stringify({
  node: process.version,
  polls,
  rounds,
  cpuPerMessageUs: { metricsOff: Number(offUs.toFixed(2)), metricsOn: Number(onUs.toFixed(2)) },
  ratio: Number((onUs / offUs).toFixed(3))
}))
