// multiplex: N clients each follow 10 channels — as one 10-channel poll each (`multiplex-10ch`), and, on a fresh
// server of the same kind, as 10 one-channel polls each (`multiplex-1ch`, what a client without many-channel polls
// must do). Then one push per channel, in turn, at up to `pushRate`/s; every delivery is checked (order per
// channel, loss, duplicates) and timed. Reported per client: server RSS and fds; per message: server CPU.
//
// N is 1,500, not the 2,000 of issue 8: ten one-channel polls per client are 10 sockets per client on the server,
// and 20,000 would exceed the fd limit of one process here (20,000, hard).
import { closeClients, pushEachChannel, split, startClients } from '../lib/clients.js'
import { redisFields } from '../lib/measure.js'
import { call, tag } from '../lib/processes.js'
import { percentiles, round } from '../lib/stats.js'

export const CHANNELS_PER_CLIENT = 10

export default {
  name: 'multiplex',
  variants: () => [{ id: 'multiplex-10ch', perPoll: CHANNELS_PER_CLIENT }, { id: 'multiplex-1ch', perPoll: 1 }],
  freshServer: true, // idle-to-held memory per client
  pluginOnly: true, // the baselines speak the one-channel protocol only

  async run ({ config, log, redis }, set, { perPoll }) {
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
      const idle = await set.stats(true)
      log(`${set.def.id}: multiplex ${perPoll}ch: ${n} clients × ${CHANNELS_PER_CLIENT} channels as ${polls.length} polls`)
      await Promise.all(split(polls, workers).map((part, i) => call(clients[i], { cmd: 'open', bases: set.bases, channels: part, timeout: config.pollTimeoutMs }, 120_000)))
      const heldNow = await set.waitHeld(polls.length, 30_000)
      const full = await set.stats(true)
      const { m, r, pushMs } = await pushEachChannel(config, set, set.def.redis ? redis : null, clients)
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
        cpuUs: m.cpuUs,
        cpuPerMsgUs: round(m.cpuUs / Math.max(1, r.delivered), 2),
        ...redisFields(m, r.delivered, r.acked)
      }
      log(`${set.def.id}: multiplex ${perPoll}ch: ${(row.rssPerClient / 1024).toFixed(2)} KiB and ${row.fdsPerClient} fds per client, CPU ${row.cpuPerMsgUs} µs/msg, p50 ${row.latencyMs.p50} ms, p99 ${row.latencyMs.p99} ms, lost ${r.lost}`)
      return row
    } finally {
      await closeClients(clients)
      await set.waitHeld(0, 20_000)
    }
  },

  /** Issue 8's targets, within one server kind: the 10-channel poll against the ten one-channel polls it replaces. */
  targets ({ results, check }) {
    for (const server of new Set(results.rows.filter((r) => r.scenario === 'multiplex-10ch').map((r) => r.server))) {
      // ≤ 0.2× the ten polls it replaces is the same bound as ≤ 2× the memory of one one-channel held poll.
      check(server, 'multiplex-10ch', 'RSS/client vs 10 polls', 'rssPerClient', server, 0.2, 'multiplex-1ch')
      check(server, 'multiplex-10ch', 'CPU/msg vs 1-channel polls', 'cpuPerMsgUs', server, 1.2, 'multiplex-1ch')
    }
  },

  markdown ({ ids, method, results, fmt, kib, label, redisCell }) {
    if (!ids.includes('multiplex-10ch')) return []
    const first = results.rows.find((r) => r.scenario === 'multiplex-10ch' && !r.skipped)
    const per = first?.channelsPerClient ?? CHANNELS_PER_CLIENT
    const lines = [
      `## multiplex: ${fmt(first?.clients, 0)} clients each following ${per} channels, as one ${per}-channel poll each or as ${per} one-channel polls each (a fresh server for each); then one push per channel in turn at up to ${fmt(method.pushRate, 0)} pushes/s`,
      '',
      '| server | polls per client | held polls | RSS / client (KiB) | fds / client | server CPU / msg (µs) | p50 (ms) | p99 (ms) | delivered | lost | Redis cmds / push | target met? |',
      '|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|'
    ]
    for (const row of results.rows.filter((r) => r.scenario.startsWith('multiplex-') && !r.skipped)) {
      const targets = results.targets.filter((t) => t.server === row.server && t.scenario === row.scenario)
      const cell = targets.length === 0 ? '—' : targets.map((t) => `${t.met ? '✅' : '❌'} ${t.what} ${fmt(t.ratio, 2)}× (≤ ${t.limit}×)`).join('<br>')
      lines.push(`| ${label(row.server)} | ${row.channelsPerClient / row.channelsPerPoll} | ${fmt(row.polls, 0)} | ${kib(row.rssPerClient)} | ${fmt(row.fdsPerClient, 2)} | ${fmt(row.cpuPerMsgUs, 1)} | ${fmt(row.latencyMs.p50, 2)} | ${fmt(row.latencyMs.p99, 2)} | ${fmt(row.delivered, 0)}/${fmt(row.acked, 0)} | ${row.lost} | ${redisCell(row, 'redisCommandsPerPush', 2)} | ${cell} |`)
    }
    lines.push('')
    return lines
  }
}
