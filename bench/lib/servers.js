// The servers under test of the main suite: bench/server.js forked once per instance, and what the scenarios
// ask of a started set — its counters summed over instances, and a wait until it holds a number of polls.
import { mkdirSync } from 'node:fs'
import path from 'node:path'
import { benchDir } from './config.js'
import { call, forkChild, sleep, stopChild, waitReady } from './processes.js'

/**
 * Starts `def.instances` processes of bench/server.js <def.kind>. `redisUrl` for Redis kinds; `profile` adds
 * --cpu-prof (profiles in bench/results/tmp/profiles/). Resolves to a set: `{ def, bases, stats(gc), waitHeld(n, ms), stop() }`.
 */
export async function startServers (def, { redisUrl = '', profile = false, stamp = '' } = {}) {
  const procs = []
  const set = {
    def,
    procs,
    bases: [],
    /** Summed over the instances: cpuUs (user + system), rss, heapUsed (bytes), held polls, fds; plugin stats each. */
    async stats (gc = false) {
      const all = await Promise.all(procs.map((p) => call(p.child, { cmd: 'stats', gc }, 30_000)))
      const sum = (f) => all.reduce((total, s) => total + f(s), 0)
      return {
        cpuUs: sum((s) => s.cpu.user + s.cpu.system),
        rss: sum((s) => s.rss),
        heapUsed: sum((s) => s.heapUsed),
        held: sum((s) => s.held),
        fds: all.every((s) => typeof s.fds === 'number') ? sum((s) => s.fds) : null,
        plugin: all.map((s) => s.plugin ?? null),
        processes: all.map((s) => ({ held: s.held, rss: s.rss, fds: s.fds ?? null }))
      }
    },
    /** Polls the servers' held count until it is `n` (a bounded wait: resolves the last count after `ms`). */
    async waitHeld (n, ms) {
      const deadline = Date.now() + ms
      let held = -1
      while (Date.now() < deadline) {
        held = (await set.stats()).held
        if (held === n) return held
        await sleep(50)
      }
      return held
    },
    async stop () {
      await Promise.all(procs.map((p) => stopChild(p.child)))
    }
  }
  try {
    for (let i = 0; i < def.instances; i++) {
      const execArgv = ['--expose-gc']
      if (profile) {
        const dir = path.join(benchDir, 'results', 'tmp', 'profiles')
        mkdirSync(dir, { recursive: true })
        execArgv.push('--cpu-prof', `--cpu-prof-dir=${dir}`, `--cpu-prof-name=${def.id}-${stamp}-${i}-${Date.now()}.cpuprofile`)
      }
      const child = forkChild(path.join(benchDir, 'server.js'), [def.kind], {
        execArgv,
        env: { ...process.env, REDIS_URL: redisUrl, NODE_ENV: 'production', ...def.env }
      })
      const ready = await waitReady(child, `${def.id} server`)
      procs.push({ child, base: `http://127.0.0.1:${ready.port}` })
      set.bases.push(`http://127.0.0.1:${ready.port}`)
    }
  } catch (err) {
    await set.stop()
    throw err
  }
  return set
}
