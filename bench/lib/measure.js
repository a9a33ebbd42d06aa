// The one measuring helper: settle (forced GC, then a pause for the GC's background threads), read the
// processes' counters and redis-server's before, run the work, read them after; report the deltas.
import { sleep } from './processes.js'
import { round } from './stats.js'

/**
 * `stats(gc)` resolves to a snapshot of the measured processes' counters (numbers: `cpuUs`, `rss`, … — summed
 * over processes by the caller); `redis` is a controller from redis-server.js or null. Resolves to
 * `{ result, before, after, delta(field), cpuUs, rssDelta, redisUs, commands }`: `cpuUs` is after.cpuUs − before.cpuUs,
 * `redisUs` redis-server's CPU and `commands` its INFO commandstats over the work (null without Redis).
 */
export async function measure ({ stats, redis = null, gc = true, settleMs = 300 }, work) {
  if (gc) {
    await stats(true)
    await sleep(settleMs) // the GC's background threads would otherwise be counted as the work's CPU
  }
  const before = await stats(false)
  if (redis !== null) await redis.resetStats()
  const redisBefore = redis === null ? 0 : await redis.cpuUs()
  const result = await work()
  const after = await stats(false)
  const redisUs = redis === null ? null : await redis.cpuUs() - redisBefore
  const commands = redis === null ? null : await redis.commands()
  const delta = (field) => typeof after[field] === 'number' && typeof before[field] === 'number' ? after[field] - before[field] : null
  return { result, before, after, delta, cpuUs: delta('cpuUs'), rssDelta: delta('rss'), redisUs, commands }
}

/** A row's Redis columns: redis-server CPU per message, commands sent per push, and the breakdown by name. */
export function redisFields ({ redisUs, commands }, delivered, pushes) {
  if (commands === null || commands === undefined) return {}
  return {
    redisCpuUs: round(redisUs, 0),
    redisCpuPerMsgUs: round(redisUs / Math.max(1, delivered), 2),
    redisCommands: commands.sent,
    redisCommandsPerPush: pushes > 0 ? round(commands.sent / pushes, 2) : null,
    redisCommandsWithScripts: commands.total,
    redisCommandsByName: commands.byName
  }
}
