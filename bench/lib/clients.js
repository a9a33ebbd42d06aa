// Load-generating client processes (bench/client.js) and the sums of what they report.
import path from 'node:path'
import { benchDir } from './config.js'
import { measure } from './measure.js'
import { call, forkChild, waitReady } from './processes.js'

/** Forks `count` client processes (each holds at most `perClient` polls: the fd limit is per process). */
export async function startClients (count, { env } = {}) {
  const clients = []
  for (let i = 0; i < count; i++) {
    const child = forkChild(path.join(benchDir, 'client.js'), [], env === undefined ? {} : { env: { ...process.env, ...env } })
    clients.push(child)
    await waitReady(child, 'client')
  }
  return clients
}

/** Destroys every client's sockets (held polls are aborted), then kills the processes. */
export async function closeClients (clients) {
  await Promise.all(clients.map((c) => call(c, { cmd: 'close' }).catch(() => {})))
  for (const c of clients) c.kill('SIGKILL')
}

/** `list` in `parts` consecutive slices of (nearly) equal length. */
export function split (list, parts) {
  const size = Math.ceil(list.length / parts)
  return Array.from({ length: parts }, (_, i) => list.slice(i * size, (i + 1) * size))
}

/** The clients' push/delivery counts summed, their latencies concatenated. */
export function merge (parts) {
  const out = { pushed: 0, acked: 0, pushFailed: 0, pushErrors: {}, delivered: 0, lost: 0, duplicates: 0, outOfOrder: 0, pollErrors: 0, pollErrorCodes: {}, pollStatus: {}, latencies: [] }
  for (const p of parts) {
    for (const key of ['pushed', 'acked', 'pushFailed', 'delivered', 'lost', 'duplicates', 'outOfOrder', 'pollErrors']) out[key] += p[key]
    for (const [status, count] of Object.entries(p.pollStatus)) out.pollStatus[status] = (out.pollStatus[status] ?? 0) + count
    for (const [code, count] of Object.entries(p.pollErrorCodes ?? {})) out.pollErrorCodes[code] = (out.pollErrorCodes[code] ?? 0) + count
    for (const [why, count] of Object.entries(p.pushErrors ?? {})) out.pushErrors[why] = (out.pushErrors[why] ?? 0) + count
    for (const l of p.latencies) out.latencies.push(l)
  }
  return out
}

/**
 * The suite's push phase (held, multiplex): one push per channel of every client's polls at `config.pushRate`/s in
 * all, measured on `set` (and `redis`, or null). Resolves `{ m: measure's result, r: the clients' counts merged,
 * pushMs: the longest client's push time }`.
 */
export async function pushEachChannel (config, set, redis, clients) {
  const workers = clients.length
  const m = await measure({ stats: set.stats, redis }, () =>
    Promise.all(clients.map((c) => call(c, { cmd: 'push', rate: config.pushRate / workers, window: Math.ceil(config.pushWindow / workers), maxMs: config.pushMaxMs, rounds: 1, drainMs: 10_000, payload: config.payload }, 300_000))))
  return { m, r: merge(m.result), pushMs: Math.max(...m.result.map((p) => p.pushMs)) }
}
