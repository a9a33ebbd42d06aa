// The soak's load and its delivery check, forked by bench/soak.js (one process per store). It pushes at a
// steady rate, holds polls that end every way a poll can end — answered by a push, timed out, aborted by the
// client, disconnected, closed with their instance — and checks that every client received every message of
// its channel exactly once, in order, with gaps only where the contract allows one.
//
// Commands (IPC, answered { type: 'done', id, result }):
//   start      { mode: 'memory'|'redis', bases }   mode memory: each channel lives on one instance (its home)
//   restarting { slot }   memory: the instance in `slot` is about to close; resolves when no push to it is in flight
//   up         { slot, base }   the instance in `slot` listens at `base` (again, after a restart)
//   counts     {}         counters so far
//   finish     { drainMs }   stop the load, wait for deliveries, stop; resolves with the verdict
import http from 'node:http'
import process from 'node:process'
import { parseBase, pollAgent, pushAgent } from '../lib/http.js'
import { LOAD, SOAK_OPTIONS } from './config.js'

if (typeof process.send !== 'function') {
  console.error('bench/soak/client.js is forked by bench/soak.js (it needs an IPC channel)')
  process.exit(2)
}
process.on('disconnect', () => process.exit(0))

const polls = pollAgent()
const pushes = pushAgent(128) // more sockets than channels: a push never queues in the client
const timers = new Set() // every timer this client runs, cleared on finish
let mode = 'memory'
let slots = [] // { base, up, downUntil, pushesInFlight }
let channels = []
let pollers = []
let loadOn = false
let closing = false

const counts = {
  pushSent: 0,
  pushAcked: 0,
  pushFailed: 0,
  pushSkippedBusy: 0, // a push or disconnect due while every channel had one in flight
  pushSkippedDown: 0, // ... while every channel without one had its instance down
  pushMsTotal: 0,
  pushMsMax: 0,
  disconnects: 0,
  disconnectFailed: 0,
  polls: 0,
  answered: { ok: 0, timeout: 0, disconnected: 0 },
  aborted: 0,
  pollStatus: {}, // non-200 answers by status
  pollErrors: 0, // refused, reset
  messages: 0,
  duplicates: 0,
  outOfOrder: 0,
  phantoms: 0, // a message the pusher never sent
  gapsAllowed: 0, // after a disconnect or a memory-instance restart
  retentionGaps: 0, // the poller fell more than maxMessages behind: the answer is a full list, flagged gap
  unexpectedGaps: 0,
  badCursor: 0,
  slowWakeups: 0, // a short poll answered `timeout` although a message for it was acked ≥ 1 s before (a starved machine can do that)
  lostWakeups: 0, // a 25 s poll answered `timeout` although a message for it was acked ≥ 5 s before: guarantee 4 broken
  stalls: 0 // a poller went STALL_MS without a 200 answer
}
const STALL_MS = 30_000
const unexpected = [] // the first few unexpected events, for the report

function note (what) {
  if (unexpected.length < 20) unexpected.push({ at: new Date().toISOString(), ...what })
}

function later (fn, ms) {
  const timer = setTimeout(() => {
    timers.delete(timer)
    fn()
  }, ms)
  timers.add(timer)
}

/** http.request with an AbortSignal: resolves { status, body }, rejects on a network error or an abort. */
function send (agent, base, method, path, body, signal) {
  return new Promise((resolve, reject) => {
    const headers = body === undefined ? undefined : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }
    const req = http.request({ agent, host: base.host, port: base.port, method, path, headers, signal }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (chunk) => { text += chunk })
      res.on('end', () => resolve({ status: res.statusCode, body: text }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(body)
  })
}

// ------------------------------------------------------------------------------------------------ instances
function usable (slot) {
  const s = slots[slot]
  return s.up && s.downUntil <= Date.now()
}

/** Redis: any instance will do; prefer `preferred`, else another that is not known to be down. */
function pickSlot (preferred) {
  for (let i = 0; i < slots.length; i++) {
    const slot = (preferred + i) % slots.length
    if (usable(slot)) return slot
  }
  return -1
}

function failed (slot) {
  if (mode === 'redis') slots[slot].downUntil = Date.now() + LOAD.slotDownMs
}

// ---------------------------------------------------------------------------------------------------- polls
function newPoller (channel, index) {
  const short = index % LOAD.shortTimeoutEvery === 0
  return {
    channel,
    cursor: null,
    timeout: () => short ? LOAD.shortTimeoutMs[0] + Math.floor(Math.random() * (LOAD.shortTimeoutMs[1] - LOAD.shortTimeoutMs[0])) : null,
    seen: new Set(),
    lastK: 0,
    maxKBySeg: new Map(), // seg -> the newest k received from it
    trimmedSpans: [], // [after, before]: the k strictly between were trimmed by retention (a retention gap)
    gapAllowed: false,
    polls: 0,
    held: null, // { controller, since } while a poll is in flight
    lastOkAt: Date.now(),
    history: [] // the last few polls: { slot, port, sentAt, ms, outcome }, for the report of an unexpected event
  }
}

function poll (p) {
  if (closing) return
  const ch = p.channel
  const slot = mode === 'memory' ? (usable(ch.home) ? ch.home : -1) : pickSlot(p.polls % slots.length)
  if (slot === -1) return later(() => poll(p), LOAD.retryMs)
  p.polls++
  counts.polls++
  const timeout = p.timeout()
  const query = `channel=${ch.name}${timeout === null ? '' : `&timeout=${timeout}`}${p.cursor === null ? '' : `&cursor=${p.cursor}`}`
  const controller = new AbortController()
  const sentAt = Date.now()
  p.held = { controller, since: sentAt }
  const entry = { slot, port: slots[slot].base.port, sentAt, ms: null, outcome: null, timeout }
  p.history.push(entry)
  if (p.history.length > 8) p.history.shift()
  send(polls, slots[slot].base, 'GET', `/poll?${query}`, undefined, controller.signal).then(
    (res) => {
      p.held = null
      entry.ms = Date.now() - sentAt
      entry.outcome = res.status === 200 ? JSON.parse(res.body).status : res.status
      answer(p, slot, res, sentAt, timeout)
    },
    (err) => {
      p.held = null
      entry.ms = Date.now() - sentAt
      entry.outcome = err.code ?? err.name
      if (closing) return
      if (err.name === 'AbortError') {
        counts.aborted++
        return poll(p) // with the same cursor: whatever the aborted poll might have carried comes again
      }
      counts.pollErrors++
      failed(slot)
      later(() => poll(p), LOAD.retryMs)
    }
  )
}

function history (p) {
  return p.history.map((h) => `${h.slot}:${h.port} +${h.sentAt - p.history[0].sentAt}ms ${h.outcome} in ${h.ms}ms${h.timeout === null ? '' : ` (timeout ${h.timeout})`}`)
}

function answer (p, slot, res, sentAt, timeout) {
  if (closing) return
  const now = Date.now()
  if (res.status === 200 && now - p.lastOkAt > STALL_MS) {
    counts.stalls++
    note({ what: 'stall', channel: p.channel.name, ms: now - p.lastOkAt, history: history(p) })
  }
  if (res.status === 200) p.lastOkAt = now
  if (res.status !== 200) {
    counts.pollStatus[res.status] = (counts.pollStatus[res.status] ?? 0) + 1
    if (res.status === 400) {
      // The only 400 a well-behaved client can get is a cursor the server no longer accepts: a violation.
      counts.badCursor++
      note({ what: 'poll answered 400', channel: p.channel.name, cursor: p.cursor, body: res.body.slice(0, 300) })
      p.cursor = null
    }
    if (res.status === 503) failed(slot)
    return later(() => poll(p), LOAD.retryMs)
  }
  const body = JSON.parse(res.body)
  const ch = p.channel
  counts.answered[body.status] = (counts.answered[body.status] ?? 0) + 1
  if (body.gap === true) {
    const first = body.messages[0]?.data.k
    if (p.gapAllowed) counts.gapsAllowed++
    else if (body.messages.length >= SOAK_OPTIONS.maxMessages && first !== undefined) {
      // The whole retained list came back: the messages between the cursor and it were trimmed (§1.1, `gap`).
      counts.retentionGaps++
      p.trimmedSpans.push([p.lastK, first])
    } else {
      counts.unexpectedGaps++
      note({ what: 'unexpected gap', channel: ch.name, cursor: p.cursor, answer: res.body.slice(0, 160), history: history(p) })
    }
  }
  if (body.status === 'timeout') {
    // Guarantee 4: a message acked while this poll was held (well after it was sent, well before it answered)
    // must have woken it. On a machine loaded far past its cores a server can be starved for seconds, so a
    // miss by 1 s is only counted (slow); a 25 s poll that sat 5 s past an acked message is a lost wake-up.
    for (const [k, push] of ch.pushes) {
      if (k > p.lastK && push.state === 'acked' && push.seg === ch.seg && push.ackedAt > sentAt + 1000 && push.ackedAt < now - 1000) {
        const lost = timeout === null && push.ackedAt < now - 5000
        if (lost) counts.lostWakeups++
        else counts.slowWakeups++
        if (lost || counts.slowWakeups <= 3) note({ what: lost ? 'lost wake-up' : 'slow wake-up', channel: ch.name, k, ackedAfterMs: push.ackedAt - sentAt, heldMs: now - sentAt, history: history(p) })
        break
      }
    }
  }
  for (const m of body.messages) {
    const { k } = m.data
    const push = ch.pushes.get(k)
    if (push === undefined) {
      counts.phantoms++
      note({ what: 'message never pushed', channel: ch.name, data: m.data })
      continue
    }
    if (p.seen.has(k)) {
      counts.duplicates++
      note({ what: 'duplicate', channel: ch.name, k, id: m.id })
      continue
    }
    if (k < p.lastK) {
      counts.outOfOrder++
      note({ what: 'out of order', channel: ch.name, k, after: p.lastK })
    }
    p.seen.add(k)
    p.lastK = Math.max(p.lastK, k)
    p.maxKBySeg.set(push.seg, Math.max(p.maxKBySeg.get(push.seg) ?? 0, k))
    counts.messages++
    // A message from the current segment: the poller is past the disconnect/restart, a later gap needs a new one.
    if (push.seg === ch.seg) p.gapAllowed = false
  }
  p.cursor = body.cursor
  poll(p)
}

// --------------------------------------------------------------------------------------- pushes, disconnects
/**
 * A channel's messages are numbered k = 1, 2, ... and tagged with its segment: a segment ends with a disconnect
 * (its retained messages are deleted) or, on memory, with a restart of its home instance. A message acked in a
 * segment that ended may be missing only if it was in that segment's tail (no later message of the same segment
 * reached the poller); anything else acked and missing is lost.
 */
function newChannel (name, index) {
  const ch = { name, home: index % slots.length, nextK: 1, seg: 0, segEnds: [], pushes: new Map(), busy: false, pollers: [] }
  for (let i = 0; i < LOAD.pollersPerChannel; i++) ch.pollers.push(newPoller(ch, i))
  return ch
}

function endSegment (ch, cause) {
  ch.segEnds[ch.seg] = cause
  ch.seg++
  for (const p of ch.pollers) p.gapAllowed = true
}

function push (ch) {
  const slot = mode === 'memory' ? ch.home : pickSlot(Math.floor(Math.random() * slots.length))
  const k = ch.nextK++
  const record = { state: 'pending', seg: ch.seg }
  ch.pushes.set(k, record)
  ch.busy = true
  slots[slot].pushesInFlight++
  counts.pushSent++
  const body = JSON.stringify({ channel: ch.name, data: { k, seg: ch.seg } })
  const sentAt = Date.now()
  send(pushes, slots[slot].base, 'POST', '/push', body).then(
    (res) => {
      record.state = res.status >= 200 && res.status < 300 ? 'acked' : 'failed'
      record.ackedAt = Date.now()
      if (record.state === 'acked') counts.pushAcked++
      else {
        counts.pushFailed++
        failed(slot)
      }
    },
    () => {
      // Not acked: it may or may not be stored (the connection died after the store), so either is fine.
      record.state = 'failed'
      counts.pushFailed++
      failed(slot)
    }
  ).finally(() => {
    const ms = Date.now() - sentAt
    counts.pushMsTotal += ms
    if (ms > counts.pushMsMax) counts.pushMsMax = ms
    ch.busy = false
    slots[slot].pushesInFlight--
  })
}

function disconnect (ch) {
  const slot = mode === 'memory' ? ch.home : pickSlot(Math.floor(Math.random() * slots.length))
  ch.busy = true
  endSegment(ch, 'disconnect')
  counts.disconnects++
  send(pushes, slots[slot].base, 'DELETE', `/disconnect?channel=${ch.name}`).then(
    (res) => { if (res.status >= 300) counts.disconnectFailed++ },
    () => { counts.disconnectFailed++ }
  ).finally(() => { ch.busy = false })
}

/** The first channel from index `from` on (wrapping) with nothing in flight and an instance up; null if none. */
function free (from) {
  let down = false
  for (let i = 0; i < channels.length; i++) {
    const ch = channels[(from + i) % channels.length]
    if (ch.busy) continue
    if (reachable(ch)) return ch
    down = true
  }
  if (down) counts.pushSkippedDown++
  else counts.pushSkippedBusy++
  return null
}

function reachable (ch) {
  return mode === 'redis' ? pickSlot(0) !== -1 : usable(ch.home)
}

/** Steady rates: the pusher, the aborter and the disconnector each catch up with the wall clock every 20 ms. */
function runLoad () {
  const t0 = Date.now()
  let pushesDue = 0
  let abortsDue = 0
  let disconnectsDue = 0
  let next = 0
  const tick = () => {
    if (!loadOn) return
    const elapsed = Date.now() - t0
    // Each due push goes to the next channel, round-robin, that has nothing in flight; a disconnect to a random
    // such channel. Only when every channel is busy (or down) is one skipped, and counted.
    for (; pushesDue < Math.floor(elapsed * LOAD.pushesPerSecond / 1000); pushesDue++) {
      const ch = free(next)
      if (ch === null) continue
      next = channels.indexOf(ch) + 1
      push(ch)
    }
    for (; abortsDue < Math.floor(elapsed * LOAD.abortsPerSecond / 1000); abortsDue++) {
      const p = pollers[Math.floor(Math.random() * pollers.length)]
      if (p.held !== null && Date.now() - p.held.since >= 100) p.held.controller.abort()
    }
    for (; disconnectsDue < Math.floor(elapsed / LOAD.disconnectEveryMs); disconnectsDue++) {
      const ch = free(Math.floor(Math.random() * channels.length))
      if (ch !== null) disconnect(ch)
    }
    later(tick, 20)
  }
  tick()
}

// ------------------------------------------------------------------------------------------------- verdict
function verdict (final = false) {
  let expected = 0
  let received = 0
  let lost = 0
  const excused = { disconnect: 0, restart: 0 }
  let trimmed = 0
  for (const ch of channels) {
    for (const p of ch.pollers) {
      for (const [k, push] of ch.pushes) {
        if (push.state !== 'acked') continue
        expected++
        if (p.seen.has(k)) {
          received++
          continue
        }
        const cause = ch.segEnds[push.seg]
        if (cause !== undefined && (p.maxKBySeg.get(push.seg) ?? 0) < k) excused[cause]++
        else if (p.trimmedSpans.some(([after, before]) => k > after && k < before)) trimmed++
        else {
          lost++
          if (final) note({ what: 'lost', channel: ch.name, k, seg: push.seg, segment: cause ?? 'current' })
        }
      }
    }
  }
  return { expected, received, lost, excused, trimmed }
}

async function until (condition, ms) {
  const deadline = Date.now() + ms
  while (!condition() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50))
  return condition()
}

const commands = {
  start ({ mode: m, bases }) {
    mode = m
    slots = bases.map((base) => ({ base: parseBase(base), up: true, downUntil: 0, pushesInFlight: 0 }))
    channels = Array.from({ length: LOAD.channels }, (_, i) => newChannel(`soak-${mode}-${i}`, i))
    pollers = channels.flatMap((ch) => ch.pollers)
    for (const p of pollers) poll(p)
    loadOn = true
    runLoad()
    return { pollers: pollers.length }
  },

  async restarting ({ slot }) {
    slots[slot].up = false
    if (mode === 'memory') for (const ch of channels) if (ch.home === slot) endSegment(ch, 'restart')
    await until(() => slots[slot].pushesInFlight === 0, 10_000)
    return { inFlight: slots[slot].pushesInFlight }
  },

  up ({ slot, base }) {
    slots[slot].base = parseBase(base)
    slots[slot].up = true
    slots[slot].downUntil = 0
    return {}
  },

  counts () {
    return { ...counts, answered: { ...counts.answered }, pollStatus: { ...counts.pollStatus } }
  },

  async finish ({ drainMs }) {
    loadOn = false
    await until(() => channels.every((ch) => !ch.busy), drainMs)
    // Every acked message has reached every poller of its channel, or its segment ended.
    const drained = await until(() => verdict().lost === 0, drainMs)
    closing = true
    for (const timer of timers) clearTimeout(timer)
    timers.clear()
    for (const p of pollers) p.held?.controller.abort()
    polls.destroy()
    pushes.destroy()
    const result = verdict(true)
    return { ...result, drained, counts: commands.counts(), unexpected }
  }
}

process.on('message', async (msg) => {
  if (msg?.cmd === 'stop') process.exit(0)
  const command = commands[msg?.cmd]
  if (command === undefined) return
  try {
    process.send({ type: 'done', id: msg.id, result: await command(msg) })
  } catch (err) {
    process.send({ type: 'failed', id: msg.id, message: err.stack ?? String(err) })
  }
})
process.send({ type: 'ready' })
