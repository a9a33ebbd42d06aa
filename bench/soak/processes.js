// The soak's child processes, on the bench's own supervision (bench/lib/processes.js: every child and the
// redis-server killed on exit, on a signal and on a crash) and redis-server (bench/lib/redis-server.js). What the
// soak adds: a start waits for the child's `ready` for up to two minutes (tens of seconds on a loaded machine),
// and a stop says whether the child had to be killed (a replaced instance's own close path is part of the soak).
import path from 'node:path'
import { forkChild, sleep, supervise, waitReady } from '../lib/processes.js'

export { call, sleep } from '../lib/processes.js'
export { startRedis } from '../lib/redis-server.js'

/** Kill every child on the way out, whatever the way. */
export const guard = supervise

/** Forks `file` and waits for its `ready` message; `child.ready` is that message, `child.exited` its exit. */
export async function start (file, args, options = {}) {
  const child = forkChild(file, args, options)
  child.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal)))
  try {
    child.ready = await waitReady(child, path.basename(file), 120_000)
  } catch (err) {
    child.kill('SIGKILL')
    throw err
  }
  return child
}

/** Asks a child to close (a server: its own close path), SIGKILL after `ms`. Resolves with whether it was killed. */
export async function stop (child, ms = 15_000) {
  if (child.exitCode !== null || child.signalCode !== null) return false
  try { child.send({ cmd: 'stop' }) } catch {}
  const done = await Promise.race([child.exited.then(() => true), sleep(ms).then(() => false)])
  if (!done) {
    child.kill('SIGKILL')
    await child.exited
  }
  return !done
}
