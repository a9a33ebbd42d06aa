// A load-generating client, forked by run.js (one or more per scenario, so that no process holds more sockets
// than the fd limit allows). It holds polls, pushes, and checks every delivery: order, loss, duplicates, and
// push→delivery latency, measured here from the moment a push is sent to the moment its delivery's body ends.
//
// Commands (IPC, each answered with { type: 'done', id, result } or { type: 'failed', id, message }):
//   open      { bases, channels, timeout, batch, repoll, localAddress, next, rotate, idempotent }
//                                                           hold one poll per entry of `channels` (an entry that is
//                                                           an array of names holds one poll of those channels);
//                                                           `bases` may carry a prefix (http://127.0.0.1:3001/lp);
//                                                           `localAddress`: the connections' source address;
//                                                           `next`: once a poll got a message, it re-polls this
//                                                           channel instead (the scale bench's shared channel);
//                                                           `rotate: false`: a poll stays on one instance (else
//                                                           each re-poll goes to the next one); `idempotent: true`:
//                                                           pushes carry an Idempotency-Key, failed ones are retried
//   push      { rate, window, maxMs, rounds, drainMs, payload }  push to each channel in turn, wait for deliveries
//   fanpush   { channel, expect, waitMs, payload }          one push; wait until `expect` polls received it
//   fanwait   { expect, waitMs }                            wait until `expect` polls received a message marked
//                                                           { fan: true } (pushed by someone else); answer the
//                                                           receipt times (performance.timeOrigin + now, ms)
//   pingpong  { bases, channels, durationMs, drainMs, timeout, payload }
//   expect    { fromK, toK, waitMs }                        the server pushed k = fromK..toK to every poll's channel
//                                                           (bench/lib/server-publish.js): wait until each has them
//   status    {}                                            { pollers, inflight: requests sent and not answered, doubled:
//                                                           pollers with more than one, pollErrorCodes, and this
//                                                           phase's pushed, acked, delivered }
//   close     {}                                            destroy every socket (held polls are aborted)
import process from 'node:process'
import { parseBase, pollAgent, pushAgent, request } from './lib/http.js'

if (typeof process.send !== 'function') {
  console.error('bench/client.js is forked by bench/run.js (it needs an IPC channel)')
  process.exit(2)
}
process.on('disconnect', () => process.exit(0))

let bases = []
let pollAgents = []
let pushAgents = []
let pollers = []
let closing = false
let repoll = true
let pollTimeout = 60_000
let pushing = null // pingpong: (poller) => void, called on delivery
let nextChannel = null // open { next }: the channel a poll follows once it got a message
let rotate = true // open { rotate: false }: each poll stays on one instance (one socket per poll)
let idempotent = false // open { idempotent: true }: pushes carry an Idempotency-Key and are retried on failure
const keyPrefix = `${process.pid}-${Math.random().toString(36).slice(2, 8)}`

const counts = newCounts()

function newCounts () {
  return { delivered: 0, duplicates: 0, outOfOrder: 0, pushed: 0, acked: 0, pushFailed: 0, pushErrors: {}, pollErrors: 0, pollErrorCodes: {}, pollStatus: {}, latencies: [], fanDelivered: 0, fanDuplicates: 0 }
}

function setup (urls, localAddress) {
  closing = false
  bases = urls.map((url) => parseBase(url, localAddress))
  pollAgents = bases.map(() => pollAgent())
  pushAgents = bases.map(() => pushAgent())
  pollers = []
  Object.assign(counts, newCounts())
}

function newPoller (name, idx) {
  const names = Array.isArray(name) ? name : [name]
  // sent: k -> send time of every acked-or-pending push; seen: ks delivered; lastK: per channel, the newest k seen
  return {
    names,
    query: names.map((n) => `channel=${n}`).join('&'),
    idx,
    cursor: null,
    polls: 0,
    inst: 0,
    lastK: names.map(() => 0),
    pushedK: 0,
    sent: new Map(),
    acked: new Set(),
    seen: new Set(),
    received: -1,
    fanAt: -1,
    inflight: 0
  }
}

function pollOnce (p, onConnected) {
  if (closing) return
  p.inst = rotate ? (p.idx + p.polls++) % bases.length : p.idx % bases.length
  const path = `/poll?${p.query}&timeout=${pollTimeout}${p.cursor === null ? '' : `&cursor=${p.cursor}`}`
  // One request per poller: a retried one ends the one before it first.
  p.req?.destroy()
  const pending = request(pollAgents[p.inst], bases[p.inst], 'GET', path, undefined, { onConnected })
  p.req = pending.req
  p.inflight++
  pending.then(
    (res) => { p.inflight--; onAnswer(p, res) },
    (err) => {
      p.inflight--
      if (closing) return
      counts.pollErrors++
      counts.pollErrorCodes[err.code ?? 'other'] = (counts.pollErrorCodes[err.code ?? 'other'] ?? 0) + 1
      // A connect that failed (a SYN dropped too often on a loaded machine) is retried, and whoever waits for
      // this poll's connection (open's batch) waits for the retry's.
      setTimeout(() => pollOnce(p, onConnected), 100)
    }
  )
}

function onAnswer (p, res) {
  if (closing) return
  counts.pollStatus[res.status] = (counts.pollStatus[res.status] ?? 0) + 1
  if (res.status !== 200) {
    setTimeout(() => pollOnce(p), 100)
    return
  }
  const body = JSON.parse(res.body)
  p.cursor = body.cursor
  let newest = 0
  for (const m of body.messages) {
    if (m.data.fan === true) {
      // The fan-out message, on the shared channel: once per poller, timed on the machine's clock.
      if (p.fanAt >= 0) counts.fanDuplicates++
      else {
        p.fanAt = performance.timeOrigin + res.at
        counts.fanDelivered++
      }
      continue
    }
    const { k, c = 0 } = m.data
    if (p.seen.has(k)) {
      counts.duplicates++
      continue
    }
    // Per channel, in push order (across the channels of one poll, pushes in flight together may overtake).
    if (k < p.lastK[c]) counts.outOfOrder++
    p.seen.add(k)
    p.lastK[c] = Math.max(p.lastK[c], k)
    newest = Math.max(newest, k)
    counts.delivered++
    p.received = res.at
    const sentAt = p.sent.get(k)
    if (sentAt !== undefined) counts.latencies.push(res.at - sentAt)
    // Published by the server itself: `t` is its wall-clock time (same machine, same clock).
    else if (typeof m.data.t === 'number') counts.latencies.push(performance.timeOrigin + res.at - m.data.t)
  }
  if (nextChannel !== null && newest > 0 && p.names[0] !== nextChannel) {
    // Its own message came: from now on it follows the shared channel, from that channel's start.
    p.names = [nextChannel]
    p.query = `channel=${nextChannel}`
    p.cursor = null
  }
  // A poll that got the fan-out message is done: no re-poll, so the fan-out measures delivery alone.
  if (repoll && p.fanAt < 0) pollOnce(p)
  if (pushing !== null && newest > 0 && newest === p.pushedK) pushing(p)
}

function sendPush (p, payload) {
  const k = ++p.pushedK
  // With several instances, push to one the poll is not held on, so delivery must cross instances.
  const inst = bases.length > 1 ? (p.inst + 1) % bases.length : 0
  // A poll of several channels gets its pushes on each of its channels in turn.
  const c = (k - 1) % p.names.length
  const body = JSON.stringify({ channel: p.names[c], data: c === 0 ? { k, text: payload } : { k, c, text: payload } })
  counts.pushed++
  p.sent.set(k, performance.now())
  // Against the plugin (`open { idempotent: true }`) a push that failed on the way (a kept-alive socket the
  // server closed as it was reused) is sent again with the same Idempotency-Key: stored once whatever happened
  // to the first. The baselines have no such key, so theirs are not retried (a retry could store it twice).
  const headers = idempotent ? { 'idempotency-key': `${keyPrefix}.${p.idx}.${k}` } : undefined
  return pushOnce(p, k, inst, body, headers, idempotent ? 3 : 0)
}

function pushOnce (p, k, inst, body, headers, retries) {
  return request(pushAgents[inst], bases[inst], 'POST', '/push', body, { headers }).then(
    (res) => {
      if (res.status >= 200 && res.status < 300) {
        counts.acked++
        p.acked.add(k)
      } else pushFailed(res.status)
    },
    (err) => {
      if (retries > 0 && !closing) return pushOnce(p, k, inst, body, headers, retries - 1)
      pushFailed(err.code ?? 'other')
    }
  )
}

function pushFailed (why) {
  counts.pushFailed++
  counts.pushErrors[why] = (counts.pushErrors[why] ?? 0) + 1
}

function lostCount () {
  let lost = 0
  for (const p of pollers) for (const k of p.acked) if (!p.seen.has(k)) lost++
  return lost
}

async function until (condition, ms) {
  const deadline = Date.now() + ms
  while (!condition() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5))
  return condition()
}

function summary (extra = {}) {
  const { latencies, ...rest } = counts
  return { ...rest, lost: lostCount(), latencies, ...extra }
}

const commands = {
  async open ({ bases: urls, channels, timeout, batch = 500, repoll: again = true, localAddress, next = null, rotate: spread = true, idempotent: keyed = false }) {
    setup(urls, localAddress)
    idempotent = keyed
    repoll = again
    nextChannel = next
    rotate = spread
    pollTimeout = timeout
    pushing = null
    pollers = channels.map((name, idx) => newPoller(name, idx))
    // Connect in batches: thousands of simultaneous SYNs overflow the listen backlog and stall for seconds.
    for (let i = 0; i < pollers.length; i += batch) {
      const slice = pollers.slice(i, i + batch)
      await new Promise((resolve) => {
        let left = slice.length
        for (const p of slice) {
          let connected = false // once per poll, though a retried connect reports again
          pollOnce(p, () => {
            if (connected) return
            connected = true
            if (--left === 0) resolve()
          })
        }
      })
    }
    return { opened: pollers.length }
  },

  // Pushes at `rate`/s, round-robin over the channels, with at most `window` messages in flight (sent, not yet
  // delivered): when the server (or a busy machine) cannot keep up, the rate drops instead of a queue growing
  // in the client, so latency stays the server's, and the achieved rate is reported.
  async push ({ rate, rounds, drainMs, payload, window = 100, maxMs = 60_000 }) {
    Object.assign(counts, newCounts())
    // One push per channel of every poll, per round.
    const total = pollers.reduce((sum, p) => sum + p.names.length, 0) * rounds
    const t0 = performance.now()
    let sent = 0
    const pending = []
    await new Promise((resolve) => {
      const tick = () => {
        const due = Math.min(total, Math.floor((performance.now() - t0) * rate / 1000) + 1)
        while (sent < due && counts.pushed - counts.pushFailed - counts.delivered < window) {
          pending.push(sendPush(pollers[sent % pollers.length], payload))
          sent++
        }
        if (sent < total && performance.now() - t0 < maxMs) setTimeout(tick, 1)
        else resolve()
      }
      tick()
    })
    const pushMs = performance.now() - t0
    await Promise.all(pending)
    const drained = await until(() => counts.delivered + counts.duplicates >= counts.acked && lostCount() === 0, drainMs)
    return summary({ pushMs, drained })
  },

  async fanpush ({ channel, expect, waitMs, payload }) {
    Object.assign(counts, newCounts())
    const p = newPoller(channel, 0)
    pollers.push(p)
    const t0 = performance.now()
    await sendPush(p, payload)
    const ackMs = performance.now() - t0
    const ok = await until(() => counts.delivered >= expect, waitMs)
    // Every poller saw the same push: receipt times relative to it.
    const times = []
    for (const q of pollers) if (q !== p && q.received >= 0) times.push(q.received - t0)
    // One push, `expect` receivers: count a receiver that never got it as lost.
    const receivers = pollers.length - 1
    const got = times.length
    const { latencies, ...rest } = counts
    return { ...rest, delivered: got, lost: receivers - got, ok, ackMs, times }
  },

  async fanwait ({ expect, waitMs }) {
    const ok = await until(() => counts.fanDelivered >= expect, waitMs)
    const times = []
    for (const p of pollers) if (p.fanAt >= 0) times.push(p.fanAt)
    return { ok, delivered: counts.fanDelivered, duplicates: counts.fanDuplicates, lost: pollers.length - counts.fanDelivered, times }
  },

  async pingpong ({ bases: urls, channels, durationMs, drainMs, timeout, payload }) {
    setup(urls)
    nextChannel = null
    rotate = true
    repoll = true
    pollTimeout = timeout
    pollers = channels.map((name, idx) => newPoller(name, idx))
    const t0 = performance.now()
    const deadline = t0 + durationMs
    pushing = (p) => { if (performance.now() < deadline) sendPush(p, payload) }
    for (const p of pollers) pollOnce(p)
    for (const p of pollers) sendPush(p, payload)
    await new Promise((resolve) => setTimeout(resolve, durationMs))
    const elapsedMs = performance.now() - t0
    const deliveredAtDeadline = counts.delivered
    pushing = null
    const drained = await until(() => lostCount() === 0 && counts.acked + counts.pushFailed === counts.pushed, drainMs)
    return summary({ elapsedMs, deliveredAtDeadline, drained })
  },

  async expect ({ fromK, toK, waitMs }) {
    const has = (p) => { for (let k = fromK; k <= toK; k++) if (!p.seen.has(k)) return false; return true }
    const expected = pollers.length * (toK - fromK + 1)
    // Deliveries are counted once per k and poll (duplicates apart), so the count says when to check them all.
    const drained = await until(() => counts.delivered >= expected && pollers.every(has), waitMs)
    let lost = 0
    for (const p of pollers) for (let k = fromK; k <= toK; k++) if (!p.seen.has(k)) lost++
    const result = summary({ drained })
    Object.assign(counts, newCounts()) // the next phase counts from zero
    return { ...result, lost, expected }
  },

  async status () {
    let inflight = 0
    let doubled = 0
    for (const p of pollers) {
      inflight += p.inflight
      if (p.inflight > 1) doubled++
    }
    return { pollers: pollers.length, inflight, doubled, pollErrorCodes: counts.pollErrorCodes, pushed: counts.pushed, acked: counts.acked, delivered: counts.delivered }
  },

  async close () {
    closing = true
    pushing = null
    for (const agent of [...pollAgents, ...pushAgents]) agent.destroy()
    return { closed: true }
  }
}

process.on('message', async (msg) => {
  const command = commands[msg?.cmd]
  if (command === undefined) return
  try {
    const result = await command(msg)
    process.send({ type: 'done', id: msg.id, result })
  } catch (err) {
    process.send({ type: 'failed', id: msg.id, message: err.stack ?? String(err) })
  }
})
process.send({ type: 'ready' })
