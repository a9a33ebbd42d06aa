// Contract §1.4 (many channels in one poll) as one suite, run on memory (one instance) and on Redis (one and two
// instances): `pollAt` is where polls go, `pushAt` where pushes and disconnects go.
import type { Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import type { LongPollOptions, LongPollStore } from '../../lib/index.js'
import { heldPolls, poll, push, until } from './app.js'

export interface Instance { app: FastifyInstance, base: string }
export interface ManySetup {
  pollAt: Instance
  pushAt: Instance
  /** The store of `pollAt`, wrapped by the suite to watch its reads (see `watchReads`). */
  reads: ReadWatch
}
export type MakeSetup = (t: Test, options?: LongPollOptions) => Promise<ManySetup>

/** Counts a store's reads and the most that were in flight at once. */
export class ReadWatch {
  /** Channels read. */
  total = 0
  /** Calls of `readMany`. */
  calls = 0
  inFlight = 0
  maxInFlight = 0
  reset (): void {
    this.total = 0
    this.calls = 0
    this.maxInFlight = 0
  }
}

/** The same store, with its channel reads counted (through `read` and `readMany`): for the "one read per group" and "reads go out together" checks. */
export function watchReads (store: LongPollStore, watch: ReadWatch): LongPollStore {
  const counted = async <T>(channels: number, reading: Promise<T>): Promise<T> => {
    watch.total += channels
    watch.inFlight += channels
    watch.maxInFlight = Math.max(watch.maxInFlight, watch.inFlight)
    try {
      return await reading
    } finally {
      watch.inFlight -= channels
    }
  }
  const read = store.read.bind(store)
  store.read = async (...args) => await counted(1, read(...args))
  const readMany = store.readMany?.bind(store)
  if (readMany !== undefined) {
    store.readMany = async (reads, ...rest) => {
      watch.calls++
      return await counted(reads.length, readMany(reads, ...rest))
    }
  }
  return store
}

/** GET /poll with repeated `channel` parameters. */
export async function pollMany (base: string, channels: string[], query: Record<string, string | number> = {}, init: RequestInit = {}): Promise<{ status: number, body: any, text: string }> {
  const params = new URLSearchParams()
  for (const channel of channels) params.append('channel', channel)
  for (const [key, value] of Object.entries(query)) params.set(key, String(value))
  const response = await fetch(`${base}/poll?${params}`, init)
  const text = await response.text()
  return { status: response.status, body: JSON.parse(text), text }
}

async function disconnect (base: string, channel: string): Promise<number> {
  return (await fetch(`${base}/disconnect?channel=${channel}`, { method: 'DELETE' })).status
}

let unique = 0
function names (what: string, k: number): string[] {
  unique++
  return Array.from({ length: k }, (_, i) => `many.${what}.${unique}.${i}`)
}

export function manyChannelSuite (t: Test, make: MakeSetup): void {
  t.test('messages carry their channel; the cursor has one entry per channel, aligned', async (t) => {
    const { pollAt, pushAt } = await make(t)
    const [a, b, c] = names('shape', 3) as [string, string, string]
    const a1 = await push(pushAt.base, a, 'a1')
    const b1 = await push(pushAt.base, b, { b: 1 })
    const a2 = await push(pushAt.base, a, 'a2')
    const { status, body } = await pollMany(pollAt.base, [a, b, c], { timeout: 0 })
    t.equal(status, 200)
    t.equal(body.status, 'ok')
    // Round-robin over the channels that have messages; per channel in push order.
    t.same(body.messages.map((m: any) => [m.channel, m.id, m.data]), [[a, a1.body.id, 'a1'], [b, b1.body.id, { b: 1 }], [a, a2.body.id, 'a2']])
    const entries = body.cursor.split(',')
    t.equal(entries.length, 3, 'three cursor entries')
    t.equal(entries[0], a2.body.id, 'entry 1 is channel a\'s newest')
    t.equal(entries[1], b1.body.id, 'entry 2 is channel b\'s newest')
    t.match(entries[2], /^[A-Za-z0-9_-]+\.0$/, 'entry 3 is a concrete cursor of the empty channel c')
    t.notOk('gap' in body)
    t.notOk('gaps' in body)
    // Passed back, it answers nothing new.
    const again = await pollMany(pollAt.base, [a, b, c], { timeout: 0, cursor: body.cursor })
    t.same(again.body.messages, [])
    t.equal(again.body.status, 'timeout')
    t.equal(again.body.cursor, body.cursor, 'the same cursor back')
  })

  t.test('each cursor entry may be empty, latest, a cursor or a message id', async (t) => {
    const { pollAt, pushAt } = await make(t)
    const [a, b, c, d] = names('entries', 4) as [string, string, string, string]
    for (const channel of [a, b, c, d]) {
      await push(pushAt.base, channel, `${channel}:1`)
      await push(pushAt.base, channel, `${channel}:2`)
    }
    const firstOfC = (await pollMany(pollAt.base, [c], { timeout: 0, limit: 1 })).body.messages[0].id
    const cursorOfD = (await pollMany(pollAt.base, [d], { timeout: 0, limit: 1 })).body.cursor
    const { body } = await pollMany(pollAt.base, [a, b, c, d], { timeout: 0, cursor: `,latest,${firstOfC},${cursorOfD}` })
    const byChannel = (channel: string): unknown[] => body.messages.filter((m: any) => m.channel === channel).map((m: any) => m.data)
    t.same(byChannel(a), [`${a}:1`, `${a}:2`], 'empty entry: from the oldest retained message')
    t.same(byChannel(b), [], 'latest: nothing already stored')
    t.same(byChannel(c), [`${c}:2`], 'a message id: after that message')
    t.same(byChannel(d), [`${d}:2`], 'a cursor: after it')
    // An absent cursor is every channel from its oldest message.
    const all = await pollMany(pollAt.base, [a, b], { timeout: 0 })
    t.equal(all.body.messages.length, 4)
  })

  t.test('a one-channel poll is byte for byte the one-channel protocol: no `channel` on its messages', async (t) => {
    const { pollAt, pushAt } = await make(t)
    const [a] = names('one', 1) as [string]
    const pushed = await push(pushAt.base, a, { x: 1 })
    const { text, body } = await pollMany(pollAt.base, [a], { timeout: 0 })
    t.equal(text, `{"status":"ok","messages":[{"id":"${pushed.body.id}","data":{"x":1},"time":${body.messages[0].time as number}}],"cursor":"${pushed.body.id}"}`)
  })

  t.test('a held poll answers as soon as any of its channels has a message, never at its timeout', async (t) => {
    const { pollAt, pushAt } = await make(t)
    const channels = names('wake', 3)
    const { body: start } = await pollMany(pollAt.base, channels, { timeout: 0, cursor: 'latest,latest,latest' })
    for (const [i, channel] of channels.entries()) {
      const started = Date.now()
      const held = pollMany(pollAt.base, channels, { timeout: 30_000, cursor: start.cursor })
      await heldPolls(pollAt.app, 1)
      const pushed = await push(pushAt.base, channel, i)
      const { body } = await held
      t.equal(body.status, 'ok', `woken by channel ${i + 1}`)
      t.same(body.messages.map((m: any) => [m.channel, m.id]), [[channel, pushed.body.id]])
      t.ok(Date.now() - started < 10_000, 'answered on the push')
      start.cursor = body.cursor
    }
    t.equal(pollAt.app.longpoll.stats().heldPolls, 0)
  })

  t.test('a poll of k channels is one held poll against maxHeldPolls', async (t) => {
    const { pollAt } = await make(t, { maxHeldPolls: 1 })
    const channels = names('limit', 5)
    const controller = new AbortController()
    const held = pollMany(pollAt.base, channels, { timeout: 30_000 }, { signal: controller.signal }).catch(() => null)
    await heldPolls(pollAt.app, 1)
    t.equal(pollAt.app.longpoll.stats().channels, 5, 'registered on its five channels')
    const refused = await pollMany(pollAt.base, names('limit-other', 1), { timeout: 30_000 })
    t.equal(refused.status, 503, 'a second poll is over the limit of one')
    controller.abort()
    await held
    await heldPolls(pollAt.app, 0)
    t.equal(pollAt.app.longpoll.stats().channels, 0, 'an aborted poll leaves every channel')
  })

  t.test('gaps: names the channels that missed messages', async (t) => {
    const { pollAt, pushAt } = await make(t, { maxMessages: 2 })
    const [a, b, c] = names('gaps', 3) as [string, string, string]
    const first = await push(pushAt.base, a, 1)
    for (let i = 2; i <= 4; i++) await push(pushAt.base, a, i) // a keeps 3, 4: after 1, message 2 was trimmed
    await push(pushAt.base, b, 'b')
    const { body: bCursor } = await pollMany(pollAt.base, [b], { timeout: 0 })
    const { body } = await pollMany(pollAt.base, [a, b, c], { timeout: 0, cursor: `${first.body.id},${bCursor.cursor},otherlife.3` })
    t.equal(body.gap, true)
    t.same(body.gaps, [a, c], 'a was trimmed, c\'s cursor is from another life; b is whole')
    t.same(body.messages.map((m: any) => m.data), [3, 4])
  })

  t.test('disconnect of one of three channels mid-hold: answered at once, the others kept', async (t) => {
    const { pollAt, pushAt } = await make(t)
    const [a, b, c] = names('disconnect', 3) as [string, string, string]
    for (const channel of [a, b, c]) await push(pushAt.base, channel, `${channel}:old`)
    const { body: start } = await pollMany(pollAt.base, [a, b, c], { timeout: 0 })
    const held = pollMany(pollAt.base, [a, b, c], { timeout: 30_000, cursor: start.cursor })
    await heldPolls(pollAt.app, 1)
    t.equal(await disconnect(pushAt.base, b), 200)
    const { body } = await held
    t.equal(body.status, 'disconnected')
    t.same(body.disconnected, [b])
    t.same(body.messages, [])
    t.equal(body.cursor, start.cursor, 'every entry concrete; b\'s belongs to the life that ended')
    // Polling on with that cursor: b from its new life with a gap; a and c untouched.
    await push(pushAt.base, a, `${a}:new`)
    await push(pushAt.base, b, `${b}:new`)
    const next = await pollMany(pollAt.base, [a, b, c], { timeout: 0, cursor: body.cursor })
    t.same(next.body.messages.map((m: any) => m.data), [`${a}:new`, `${b}:new`])
    t.same(next.body.gaps, [b])
  })

  t.test('round-robin under limit: a busy channel never starves a quiet one', async (t) => {
    const { pollAt, pushAt } = await make(t)
    const [busy, quiet, other] = names('fair', 3) as [string, string, string]
    for (let i = 0; i < 30; i++) await push(pushAt.base, busy, i)
    await push(pushAt.base, quiet, 'q')
    await push(pushAt.base, other, 'o')
    const { body } = await pollMany(pollAt.base, [busy, quiet, other], { timeout: 0, limit: 4 })
    t.same(body.messages.map((m: any) => [m.channel, m.data]), [[busy, 0], [quiet, 'q'], [other, 'o'], [busy, 1]])
    // The rest of the busy channel comes on the next polls, nothing lost or repeated.
    const seen: number[] = body.messages.filter((m: any) => m.channel === busy).map((m: any) => m.data)
    let cursor = body.cursor
    while (seen.length < 30) {
      const page = await pollMany(pollAt.base, [busy, quiet, other], { timeout: 0, limit: 4, cursor })
      t.ok(page.body.messages.every((m: any) => m.channel === busy), 'only the busy channel has more')
      seen.push(...page.body.messages.map((m: any) => m.data))
      cursor = page.body.cursor
    }
    t.same(seen, Array.from({ length: 30 }, (_, i) => i))
    // With limit below the number of channels that have messages, the first ones get one each.
    await push(pushAt.base, quiet, 'q2')
    await push(pushAt.base, other, 'o2')
    await push(pushAt.base, busy, 30)
    const small = await pollMany(pollAt.base, [busy, quiet, other], { timeout: 0, limit: 2, cursor })
    t.same(small.body.messages.map((m: any) => m.data), [30, 'q2'])
    const rest = await pollMany(pollAt.base, [busy, quiet, other], { timeout: 0, limit: 2, cursor: small.body.cursor })
    t.same(rest.body.messages.map((m: any) => m.data), ['o2'], 'the third channel\'s message was kept')
  })

  t.test('authorize is asked once per channel; any denial is 403 and nothing is held', async (t) => {
    const asked: string[] = []
    const { pollAt } = await make(t, {
      authorize: async (_request, { action, channel }) => {
        if (action === 'poll') asked.push(channel as string)
        return !(channel as string).endsWith('.1')
      }
    })
    const channels = names('authorize', 3)
    const denied = await pollMany(pollAt.base, channels, { timeout: 30_000 })
    t.equal(denied.status, 403)
    t.equal(denied.body.code, 'FST_LONGPOLL_FORBIDDEN')
    t.same([...asked].sort(), [...channels].sort(), 'once per channel')
    t.equal(pollAt.app.longpoll.stats().heldPolls, 0)
    const allowed = await pollMany(pollAt.base, [channels[0] as string, channels[2] as string], { timeout: 0 })
    t.equal(allowed.status, 200)
  })

  t.test('a poll\'s reads go out together, and polls waiting alike share one read and one answer', async (t) => {
    const { pollAt, pushAt, reads } = await make(t)
    const channels = names('shared', 5)
    reads.reset()
    await pollMany(pollAt.base, channels, { timeout: 0 })
    t.equal(reads.total, 5, 'one read per channel')
    t.equal(reads.maxInFlight, 5, 'all five in flight at once, not one after another')
    t.equal(reads.calls, 1, 'in one readMany (one round trip on Redis)')
    const { body: start } = await pollMany(pollAt.base, channels, { timeout: 0, cursor: 'latest,latest,latest,latest,latest' })
    reads.reset()
    const polls = Array.from({ length: 20 }, () => pollMany(pollAt.base, channels, { timeout: 30_000, cursor: start.cursor }))
    await heldPolls(pollAt.app, 20)
    // Every poll's first reads have returned, so every poll is held (not still reading) when the push lands.
    await until(() => reads.total === 100 && reads.inFlight === 0, 15_000, 'the twenty polls\' first reads')
    reads.reset()
    await push(pushAt.base, channels[3] as string, 'all')
    const answers = await Promise.all(polls)
    t.ok(answers.every((a) => a.text === answers[0]?.text), 'the same bytes for all twenty')
    t.equal(JSON.parse(answers[0]?.text as string).messages[0].data, 'all')
    t.equal(reads.total, 1, 'one store read for twenty held polls')
  })

  t.test('500 rounds of a push on one of 5 channels racing a just-started 5-channel poll: none at its timeout', async (t) => {
    const { pollAt, pushAt } = await make(t)
    const channels = names('race', 5)
    let cursor = (await pollMany(pollAt.base, channels, { timeout: 0, cursor: ',,,,' })).body.cursor
    let lost = 0
    let wrong = 0
    for (let round = 0; round < 500; round++) {
      const held = pollMany(pollAt.base, channels, { timeout: 60_000, cursor })
      for (let i = 0; i < round % 4; i++) await new Promise((resolve) => setImmediate(resolve))
      const channel = channels[Math.floor(Math.random() * 5)] as string
      const { body: pushed } = await push(pushAt.base, channel, round)
      const { body } = await held
      if (body.status !== 'ok') lost++
      else if (body.messages.length !== 1 || body.messages[0].id !== pushed.id || body.messages[0].channel !== channel) wrong++
      cursor = body.cursor
    }
    t.equal(lost, 0, 'no poll waited for its timeout')
    t.equal(wrong, 0, 'each poll got exactly the message of its round, on its channel')
  })

  t.test('2,000 messages pushed at random over 10 channels, read through one loop: exactly once, in order', async (t) => {
    const { pollAt, pushAt } = await make(t, { maxMessages: 5000 })
    const channels = names('loop', 10)
    const total = 2000
    const received = new Map<string, number[]>(channels.map((c) => [c, []]))
    let count = 0
    const reader = (async () => {
      let cursor: string | undefined
      while (count < total) {
        const query: Record<string, string | number> = { timeout: 10_000, limit: 37 }
        if (cursor !== undefined) query.cursor = cursor
        const { status, body } = await pollMany(pollAt.base, channels, query)
        if (status !== 200) throw new Error(`poll answered ${status}: ${JSON.stringify(body)}`)
        for (const message of body.messages) {
          received.get(message.channel)?.push(message.data)
          count++
        }
        cursor = body.cursor
      }
    })()
    const sent = new Map<string, number[]>(channels.map((c) => [c, []]))
    for (let i = 0; i < total; i += 20) {
      // Bursts of concurrent pushes; each channel's order is the order its pushes were stored in.
      await Promise.all(Array.from({ length: 20 }, async (_, j) => {
        const channel = channels[Math.floor(Math.random() * 10)] as string
        const { body } = await push(pushAt.base, channel, i + j)
        sent.get(channel)?.push(Number(body.id.split('.')[1]) * 1e6 + i + j)
      }))
    }
    await reader
    t.equal(count, total, 'every message received once')
    for (const channel of channels) {
      const inStoreOrder = (sent.get(channel) as number[]).sort((x, y) => x - y).map((key) => key % 1e6)
      t.same(received.get(channel), inStoreOrder, `${channel}: in push order, no loss, no duplicate`)
    }
  })
}

export { poll }
