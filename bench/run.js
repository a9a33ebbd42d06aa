#!/usr/bin/env node
// The benchmark suite (`npm run bench`, `npm run bench -- --quick`; bench/README.md has the method): the servers
// under test and the scenarios, in run order. The runner is bench/lib/suite.js.
//
//   node bench/run.js [--quick] [--out DIR] [--servers a,b] [--scenarios held,fanout,pingpong,throughput,multiplex,pushmany]
//                     [--profile SERVER,...] [--no-latest] [--wait-idle SECONDS] [--candidate DIR]
//   node bench/run.js --queues [--quick] [--out DIR]      the work-queue bench (bench/queues/run.js)
//   node bench/run.js --soak MINUTES [--stores memory,redis] [--out DIR]    the soak (bench/soak.js)
//   node bench/run.js --scale [N] [--scale-rate R] [--out DIR]   N held polls (default 100,000) over several
//                     processes of examples/cluster on one redis-server (bench/scenarios/scale.js)
//
// A scenario is a module in bench/scenarios/ with a default export:
//   { name, variants (config) => [{ id, ...params }], run (ctx, set, variant) => row,
//     freshServer?, pluginOnly?, notApplicable? (why a baseline skips it), targets? ({ ids, check, … }), chart? (id) => bars, markdown? (view) => lines }
// (held.js is the model). To add one: write the module, list it below, give suiteConfig (lib/config.js) its sizes.
import process from 'node:process'
import { fileURLToPath } from 'node:url'
import fanout from './scenarios/fanout.js'
import held from './scenarios/held.js'
import multiplex from './scenarios/multiplex.js'
import pingpong from './scenarios/pingpong.js'
import pushmany from './scenarios/pushmany.js'
import throughput from './scenarios/throughput.js'

export const scenarios = [held, fanout, pingpong, throughput, multiplex, pushmany]

export const servers = [
  { id: 'node-http', label: 'node:http floor', kind: 'node-http', instances: 1, baseline: true },
  { id: 'fastify-map', label: 'Fastify + Map of resolvers', kind: 'fastify-map', instances: 1, baseline: true },
  { id: 'memory', label: 'fastify-longpoll, memory', kind: 'memory', instances: 1 },
  // Full runs only (or named in --servers): the quick smoke run must stay short, and this row differs from
  // `memory` by one option.
  { id: 'memory-metrics', label: 'fastify-longpoll, memory, metrics: true', kind: 'memory-metrics', instances: 1, fullRunOnly: true },
  { id: 'redis-1', label: 'fastify-longpoll, Redis, 1 instance', kind: 'redis', instances: 1, redis: true },
  { id: 'redis-2', label: 'fastify-longpoll, Redis, 2 instances', kind: 'redis', instances: 2, redis: true }
]

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const argv = process.argv.slice(2)
  if (argv.includes('--soak')) {
    await import('./soak.js') // the soak has a runner of its own
  } else if (argv.includes('--queues')) {
    // The work-queue bench has a runner of its own (bench/queues/run.js, `npm run bench:queues`).
    process.argv.splice(process.argv.indexOf('--queues'), 1)
    await import('./queues/run.js')
  } else if (argv.includes('--scale')) {
    const { runScale } = await import('./scenarios/scale.js')
    await runScale(argv)
  } else {
    const { runSuite } = await import('./lib/suite.js')
    await runSuite({ scenarios, servers, argv })
  }
  process.exit()
}
