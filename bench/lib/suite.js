// The main suite's runner: for each server under test, fresh server processes per group of scenarios, a warm-up,
// then each scenario module's variants in turn; the rows, targets and tables written to bench/results/.
import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import process from 'node:process'
import { loadAverage, outputDir, parseArgs, rootDir, runHeader, runStamp, suiteConfig } from './config.js'
import { sleep, supervise } from './processes.js'
import { redisServerInstalled, startRedis } from './redis-server.js'
import { evaluateTargets, renderMarkdown, renderSvg } from './report.js'
import { writeResults } from './results.js'
import { startServers } from './servers.js'
import { warmUp } from './warmup.js'

const t0 = Date.now()
export function log (message) {
  process.stderr.write(`[bench ${((Date.now() - t0) / 1000).toFixed(1).padStart(6)}s] ${message}\n`)
}

/**
 * `scenarios`: the scenario modules, in run order; `servers`: the servers under test. Options (argv):
 * --quick --out DIR --servers a,b --scenarios held,fanout,… --profile SERVER,… --no-latest --wait-idle S --candidate DIR
 */
export async function runSuite ({ scenarios, servers: allServers, argv }) {
  supervise(log)
  const args = parseArgs(argv)
  const quick = args.flag('quick')
  const { startedAt, stamp } = runStamp()
  const { outDir, isResultsDir } = outputDir(args, quick)
  const config = suiteConfig(quick)

  const defs = [...allServers]
  // --candidate DIR: also measure the plugin (memory store) loaded from a patched build, in the same run.
  const candidate = args.value('candidate')
  if (candidate !== undefined) {
    defs.splice(defs.findIndex((s) => s.id === 'memory') + 1, 0, { id: 'candidate', label: `fastify-longpoll, memory, candidate build (${candidate})`, kind: 'memory', instances: 1, env: { BENCH_PACKAGE: path.resolve(candidate) } })
  }
  const serverFilter = args.list('servers')
  const servers = defs.filter((s) => serverFilter === undefined ? !(quick && s.fullRunOnly === true) : serverFilter.includes(s.id))
  const wanted = args.list('scenarios') ?? scenarios.map((s) => s.name)
  const unknown = wanted.filter((name) => !scenarios.some((s) => s.name === name))
  if (unknown.length > 0) throw new Error(`unknown scenario ${unknown.join(', ')} (known: ${scenarios.map((s) => s.name).join(', ')})`)
  /** Every variant to run: { module, id, ... } in registry order. */
  const variants = scenarios.filter((s) => wanted.includes(s.name)).flatMap((module) => module.variants(config).map((v) => ({ ...v, module })))

  await waitIdle(Number(args.value('wait-idle') ?? 0))
  const loadAtStart = loadAverage()
  log(`${quick ? 'quick smoke run' : 'full run'}: servers ${servers.map((s) => s.id).join(', ')}; scenarios ${variants.map((v) => v.id).join(', ')}`)
  const { redisClasses } = await ensureBuilt()
  let redis = null
  let redisNote = null
  try {
    if (servers.some((s) => s.redis)) {
      if (!redisClasses) redisNote = 'not available: RedisStore/RedisNotifier are not exported by the built package'
      else if (!redisServerInstalled()) redisNote = 'not available: redis-server is not installed (Debian: apt-get install redis-server)'
      else {
        redis = await startRedis()
        log(`redis-server ${redis.url} (pid ${redis.pid})`)
      }
    }

    const rows = []
    const serverInfo = []
    const profiled = args.list('profile') ?? []
    for (const def of servers) {
      const skipped = def.redis && redisNote !== null ? redisNote : null
      serverInfo.push({ id: def.id, label: def.label, kind: def.kind, instances: def.instances, baseline: def.baseline === true, skipped })
      if (skipped !== null) {
        log(`${def.id}: skipped, ${skipped}`)
        for (const v of variants) rows.push({ server: def.id, scenario: v.id, skipped })
        continue
      }
      const applicable = variants.filter((v) => !(def.baseline === true && v.module.pluginOnly === true))
      for (const v of variants.filter((x) => !applicable.includes(x))) rows.push({ server: def.id, scenario: v.id, skipped: `not applicable: ${v.module.notApplicable ?? 'one-channel protocol only'}` })
      // A fresh server for each variant that measures idle-to-held memory, so its idle RSS is read on a process
      // that never held more (a quick run uses one server for everything: it checks that the suite works).
      const groups = (quick
        ? [applicable]
        : [...applicable.filter((v) => v.module.freshServer === true).map((v) => [v]), applicable.filter((v) => v.module.freshServer !== true)]
      ).filter((g) => g.length > 0)
      for (const group of groups) {
        const set = await startServers(def, { redisUrl: redis?.url, profile: profiled.includes(def.id), stamp })
        try {
          log(`${def.id}: started (${set.bases.join(', ')}), warming up`)
          await warmUp(config, set)
          for (const v of group) rows.push({ server: def.id, scenario: v.id, ...await v.module.run({ config, log, redis }, set, v) })
        } finally {
          await set.stop()
        }
      }
    }

    const results = {
      ...runHeader({ startedAt, loadAtStart, command: `node bench/run.js ${argv.join(' ')}`.trim() }),
      quick,
      method: {
        ...config,
        summary: 'Each server under test runs in its own forked process(es) on 127.0.0.1 and is warmed up before it is measured; ' +
          'load comes from separate forked client processes on the same machine. Server CPU (user+system) and RSS are read by the ' +
          'server process itself (process.cpuUsage(), process.memoryUsage() after a forced GC) and sent over IPC. Latency is measured by the ' +
          'client from the moment a push is sent to the moment the poll answer carrying it has been read.'
      },
      servers: serverInfo,
      scenarios: variants.map((v) => v.id),
      rows
    }
    results.targets = evaluateTargets(results, scenarios)
    const md = renderMarkdown(results, scenarios)
    const pointer = isResultsDir && !args.flag('no-latest') && candidate === undefined
    const base = writeResults({ outDir, stamp, files: { json: JSON.stringify(results, null, 2) + '\n', md, svg: renderSvg(results, scenarios) }, pointer })
    log(`wrote ${base}.{json,md,svg}${pointer ? ' (bench/results/README.md points to it)' : ''} in ${results.durationS} s`)
    process.stdout.write(md)
  } finally {
    await redis?.stop()
  }
}

async function ensureBuilt () {
  if (!existsSync(path.join(rootDir, 'dist', 'esm', 'index.js'))) {
    log('dist/ is missing: building (npm run build)')
    execFileSync('npm', ['run', 'build', '--silent'], { cwd: rootDir, stdio: ['ignore', 'ignore', 'inherit'] })
  }
  const lib = await import('fastify-longpoll')
  return { redisClasses: typeof lib.RedisStore === 'function' && typeof lib.RedisNotifier === 'function' }
}

/** --wait-idle S: wait up to S seconds for the 1-minute load average to fall under 1.0 (a shared machine). */
async function waitIdle (limitS) {
  if (!(limitS > 0)) return
  const deadline = Date.now() + limitS * 1000
  while (os.loadavg()[0] >= 1.0 && Date.now() < deadline) {
    log(`waiting for an idle machine: load average ${loadAverage().join(', ')}`)
    await sleep(15_000)
  }
}
