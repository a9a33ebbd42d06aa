// Command-line options and the sizes of a run, shared by the bench runners (run.js, queues/run.js, scale).
import { readFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { round } from './stats.js'

export const benchDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
export const rootDir = path.resolve(benchDir, '..')
export const resultsDir = path.join(benchDir, 'results')

/** `--name` flags and `--name value` options of an argv (process.argv.slice(2)). */
export function parseArgs (argv) {
  const flag = (name) => argv.includes(`--${name}`)
  const value = (name) => {
    const i = argv.indexOf(`--${name}`)
    return i === -1 ? undefined : argv[i + 1]
  }
  return { argv, flag, value, list: (name) => value(name)?.split(',') }
}

/** A run's start and its file stamp, e.g. 2026-12-01T11-17-22Z (sorts by name in time order). */
export function runStamp (date = new Date()) {
  return { startedAt: date, stamp: date.toISOString().slice(0, 19).replace(/:/g, '-') + 'Z' }
}

/** The fields every result file starts with: when, the command, how long, on what machine under what load, Node. */
export function runHeader ({ startedAt, loadAtStart, command }) {
  return {
    date: startedAt.toISOString(),
    command,
    durationS: round((Date.now() - startedAt.getTime()) / 1000, 1),
    machine: machine(),
    loadAverage: { atStart: loadAtStart, atEnd: loadAverage() },
    node: process.version
  }
}

/** Where a run writes: --out DIR, else bench/results/ (bench/results/tmp/ for a quick run, git-ignored). */
export function outputDir (args, quick) {
  const out = args.value('out')
  return {
    outDir: path.resolve(out ?? (quick ? path.join(resultsDir, 'tmp') : resultsDir)),
    // Only a full run into bench/results/ moves bench/results/README.md's pointer to the newest run.
    isResultsDir: out === undefined && !quick
  }
}

/** The sizes of the main suite (bench/run.js), quick (a smoke run: seconds) or full. */
export function suiteConfig (quick) {
  const config = quick
    ? {
        // A smoke run: small enough to finish within test/bench.test.ts's bound on a shared, loaded machine.
        heldN: [100, 200],
        pushRate: 1000,
        fanoutN: 200,
        pingpongChannels: 20,
        pingpongMs: 500,
        throughputConnections: 10,
        throughputWarmS: 0, // autocannon runs last a whole second at least: a quick run skips the warm-up rounds
        throughputS: 0.5,
        warmupPingpongMs: 200,
        warmupHeld: 20,
        multiplexClients: 20,
        pushManyChannels: 200,
        pushManyRate: 2000,
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
        pushManyChannels: 10_000,
        pushManyRate: 10_000,
        perClient: 8000
      }
  config.pushWindow = 100 // held: at most this many messages in flight (pushed, not yet delivered)
  config.pushMaxMs = quick ? 5000 : 20_000 // held: the push phase stops after this long, even if not every channel got its push
  config.pollTimeoutMs = 60_000 // the plugin's default maxTimeout: held polls never time out during a scenario
  config.payload = 'hello from the bench' // data = { k, text: payload }: ~40 bytes of JSON
  return config
}

/** The machine a run measured on, for the header of its results. */
export function machine () {
  const cpus = os.cpus()
  return {
    cpu: cpus[0]?.model?.trim() ?? 'unknown',
    cores: cpus.length,
    ramGiB: round(os.totalmem() / 1024 ** 3, 1),
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    fdLimit: fdLimit()
  }
}

/** The soft limit on open files (/proc/self/limits: "Max open files  <soft>  <hard>  files"), or null. */
function fdLimit () {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max open files'))
    return line === undefined ? null : Number(line.split(/\s+/)[3])
  } catch {
    return null
  }
}

export const loadAverage = () => os.loadavg().map((x) => round(x, 2))
