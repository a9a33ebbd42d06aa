// multiplex: N clients each follow 10 channels — as one 10-channel poll each (`multiplex-10ch`), and, on a fresh
// server of the same kind, as 10 one-channel polls each (`multiplex-1ch`, what a client without many-channel polls
// must do). Then one push per channel, in turn, at up to `pushRate`/s; every delivery is checked (order per
// channel, loss, duplicates) and timed. Reported per client: server RSS and fds; per message: server CPU.
//
// N is 1,500, not the 2,000 of issue 8: ten one-channel polls per client are 10 sockets per client on the server,
// and 20,000 would exceed the fd limit of one process here (20,000, hard).

export const CHANNELS_PER_CLIENT = 10

/** Runs one variant on a started server set. `ctx` holds run.js's process, stats and Redis helpers. */
export async function multiplex (ctx, set, perPoll) {
  const { config, log, startClients, closeClients, call, serverStats, waitHeld, sleep, split, tag, merge, percentiles, round } = ctx
  const n = config.multiplexClients
  const t = tag()
  const client = (i) => Array.from({ length: CHANNELS_PER_CLIENT }, (_, c) => `mx-${t}-${i}-${c}`)
  // One entry per held poll: an array of 10 names (one poll of 10 channels), or a single name.
  const polls = perPoll === CHANNELS_PER_CLIENT
    ? Array.from({ length: n }, (_, i) => client(i))
    : Array.from({ length: n }, (_, i) => client(i)).flat()
  const workers = Math.ceil(polls.length / config.perClient)
  const clients = await startClients(workers)
  try {
    const idle = await serverStats(set, true)
    log(`${set.def.id}: multiplex ${perPoll}ch: ${n} clients × ${CHANNELS_PER_CLIENT} channels as ${polls.length} polls`)
    await Promise.all(split(polls, workers).map((part, i) => call(clients[i], { cmd: 'open', bases: set.bases, channels: part, timeout: config.pollTimeoutMs }, 120_000)))
    const heldNow = await waitHeld(set, polls.length, 30_000)
    const full = await serverStats(set, true)
    await sleep(300) // let the GC's background threads finish before CPU is counted
    const before = await serverStats(set)
    const redisBefore = ctx.redisCpuUs()
    await ctx.redisResetStats()
    const parts = await Promise.all(clients.map((c) => call(c, { cmd: 'push', rate: config.pushRate / workers, window: Math.ceil(config.pushWindow / workers), maxMs: config.pushMaxMs, rounds: 1, drainMs: 10_000, payload: config.payload }, 300_000)))
    const after = await serverStats(set)
    const redisUs = ctx.redisCpuUs() - redisBefore
    const commands = await ctx.redisCommands()
    const r = merge(parts)
    const cpuUs = after.cpuUs - before.cpuUs
    const pushMs = Math.max(...parts.map((p) => p.pushMs))
    const row = {
      clients: n,
      channelsPerClient: CHANNELS_PER_CLIENT,
      channelsPerPoll: perPoll,
      polls: polls.length,
      heldReached: heldNow,
      rssPerClient: round((full.rss - idle.rss) / n, 0),
      heapPerClient: round((full.heapUsed - idle.heapUsed) / n, 0),
      fdsPerClient: full.fds === null ? null : round((full.fds - idle.fds) / n, 2),
      pushed: r.pushed,
      acked: r.acked,
      pushFailed: r.pushFailed,
      delivered: r.delivered,
      lost: r.lost,
      duplicates: r.duplicates,
      outOfOrder: r.outOfOrder,
      violations: r.lost + r.duplicates + r.outOfOrder + (heldNow === polls.length ? 0 : 1),
      pollErrors: r.pollErrors,
      pollStatus: r.pollStatus,
      latencyMs: percentiles(r.latencies),
      pushRate: round(r.acked / (pushMs / 1000), 0),
      cpuUs,
      cpuPerMsgUs: round(cpuUs / Math.max(1, r.delivered), 2),
      ...(set.def.redis ? ctx.redisFields(redisUs, commands, r.delivered, r.acked) : {})
    }
    log(`${set.def.id}: multiplex ${perPoll}ch: ${(row.rssPerClient / 1024).toFixed(2)} KiB and ${row.fdsPerClient} fds per client, CPU ${row.cpuPerMsgUs} µs/msg, p50 ${row.latencyMs.p50} ms, p99 ${row.latencyMs.p99} ms, lost ${r.lost}`)
    return row
  } finally {
    await closeClients(clients)
    await waitHeld(set, 0, 20_000)
  }
}

/** Issue 8's targets, within one server kind: the 10-channel poll against the ten one-channel polls it replaces. */
export function multiplexTargets (rows) {
  const out = []
  for (const server of new Set(rows.filter((r) => r.scenario === 'multiplex-10ch').map((r) => r.server))) {
    const many = rows.find((r) => r.server === server && r.scenario === 'multiplex-10ch' && r.skipped === undefined)
    const single = rows.find((r) => r.server === server && r.scenario === 'multiplex-1ch' && r.skipped === undefined)
    if (many === undefined || single === undefined) continue
    const target = (what, field, value, referenceValue, limit) => {
      const ratio = referenceValue > 0 ? value / referenceValue : Infinity
      out.push({ server, scenario: 'multiplex-10ch', what, field, value, reference: `${server} multiplex-1ch`, referenceValue, ratio: Math.round(ratio * 1000) / 1000, limit, met: ratio <= limit })
    }
    // ≤ 0.2× the ten polls it replaces is the same bound as ≤ 2× the memory of one one-channel held poll.
    target('RSS/client vs 10 polls', 'rssPerClient', many.rssPerClient, single.rssPerClient, 0.2)
    target('CPU/msg vs 1-channel polls', 'cpuPerMsgUs', many.cpuPerMsgUs, single.cpuPerMsgUs, 1.2)
  }
  return out
}
