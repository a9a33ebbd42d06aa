/**
 * Conformance suites for stores and notifiers: what fastify-longpoll relies on, as runnable checks. Run them
 * against your own implementation with any test framework:
 *
 * ```ts
 * import { test } from 'node:test'
 * import { storeConformance } from 'fastify-longpoll/conformance'
 * storeConformance({ test, createStore: () => new MyStore() })
 * ```
 *
 * Every check uses channels of its own (random names), so the suites may share a backend with other tests.
 */
import assert from 'node:assert/strict'
import { declareChecks } from './check.js'
import { appendManyChecks } from './append-many.js'
import { randomBytes } from 'node:crypto'
import { EPOCH_PATTERN, formatCursor, parsePosition } from '../cursor.js'
import type { LongPollStore, ReadResult, Retention } from '../stores/types.js'
import type { ChannelEvent, LongPollNotifier, NotifierEvent, NotifierHandlers, NotifierNamespace } from '../notifiers/types.js'

/** How the suite declares a check: `test` of node:test, tap's `t.test`, vitest's `it`... */
export type DeclareTest = (name: string, fn: () => Promise<void>) => unknown

export interface StoreConformanceOptions {
  test: DeclareTest
  /** A store; the suite closes every store it creates. Stores created by one suite may share a backend. */
  createStore: () => LongPollStore | Promise<LongPollStore>
  /** Prepended to every check's name. */
  name?: string
  /** How many appends run concurrently in the concurrency check. Default 200. */
  concurrency?: number
  /**
   * True when every store `createStore` makes has a backend of its own (MemoryStore): the check that two instances
   * share one sequence is then not declared. Default false: two stores must share their channels, and a pair that
   * reports two different lives of one channel fails.
   */
  separateBackends?: boolean
}

export interface NotifierConformanceOptions {
  test: DeclareTest
  /**
   * A notifier; every notifier created by one run of the suite must share one broker (for MemoryNotifier, one
   * MemoryBus), like the instances of one deployment. The suite starts and closes them.
   */
  createNotifier: () => LongPollNotifier | Promise<LongPollNotifier>
  name?: string
  /** Milliseconds to wait for an event before failing. Default 5000. */
  timeout?: number
  /** Milliseconds to wait to be reasonably sure an event that must not arrive did not. Default 100. */
  quietPeriod?: number
  /**
   * Check presence: `publish` resolves the number of subscribed instances, `online` tells whether there is one,
   * and a subscription counts until `presenceWindow` after `unsubscribe`. Default true; false for a notifier
   * without presence (the plugin then reports presence from each instance's own polls).
   */
  presence?: boolean
  /** The presenceWindow the suite starts notifiers with (ms). Default 200. Some checks also run with 0. */
  presenceWindow?: number
  /**
   * Cuts every notifier's connection to the broker, which stays up (Redis: `CLIENT KILL TYPE pubsub`). When given,
   * the suite checks that a notifier re-subscribes on its own, calls `resync` once it has (and only then), and
   * delivers again. A notifier without a connection to lose (MemoryNotifier) leaves it out.
   */
  interrupt?: () => Promise<void>
  /**
   * Takes the broker down, and brings it back (Redis: kill the server; start it again on the same port). When
   * given, the suite checks that `subscribe` fails (rejects or throws within `timeout`) rather than hangs while
   * the broker is down, and that once it is back the notifier resyncs and delivers on the channels it held.
   */
  outage?: { stop: () => Promise<void>, start: () => Promise<void> }
}

const RETENTION: Retention = { maxMessages: 1000, messageTtl: 3_600_000 }

function uniqueChannel (what: string): string {
  return `conformance.${what}.${randomBytes(6).toString('hex')}`
}

async function rejectsWithBadCursor (promise: Promise<unknown>, what: string): Promise<void> {
  await assert.rejects(promise, (err: { code?: string, statusCode?: number }) => {
    assert.equal(err.code, 'FST_LONGPOLL_BAD_CURSOR', `${what}: code FST_LONGPOLL_BAD_CURSOR`)
    assert.equal(err.statusCode, 400, `${what}: statusCode 400`)
    return true
  })
}

function seqs (result: ReadResult): number[] {
  return result.messages.map((message) => message.seq)
}

export function storeConformance (options: StoreConformanceOptions): void {
  const concurrency = options.concurrency ?? 200

  const check = declareChecks(options.test, options.name, options.createStore)

  /** Appends `n` messages `{"n":i}` sequentially (so their order is known). */
  async function fill (store: LongPollStore, channel: string, n: number, time = Date.now(), retention = RETENTION): Promise<string> {
    let epoch = ''
    for (let i = 1; i <= n; i++) epoch = (await store.append(channel, JSON.stringify({ n: i }), time, retention)).epoch
    return epoch
  }

  check('a channel with no life reads empty, and the cursor it hands out is the position before its first message', async (store) => {
    const channel = uniqueChannel('new')
    const now = Date.now()
    const first = await store.read(channel, 'oldest', 10, now)
    assert.match(first.epoch, EPOCH_PATTERN, 'the epoch matches the cursor grammar')
    assert.deepEqual({ messages: first.messages, seq: first.seq, gap: first.gap }, { messages: [], seq: 0, gap: false })
    const latest = await store.read(channel, 'latest', 10, now)
    assert.deepEqual({ seq: latest.seq, gap: latest.gap, n: latest.messages.length }, { seq: 0, gap: false, n: 0 })
    const again = await store.read(channel, { epoch: first.epoch, seq: 0 }, 10, now)
    assert.deepEqual({ epoch: again.epoch, seq: again.seq, gap: again.gap, n: again.messages.length }, { epoch: first.epoch, seq: 0, gap: false, n: 0 }, 'an empty answer hands back the cursor it started from')
    const { seq } = await store.append(channel, '1', Date.now(), RETENTION)
    assert.equal(seq, 1)
    for (const position of [{ epoch: first.epoch, seq: 0 }, { epoch: latest.epoch, seq: 0 }]) {
      const read = await store.read(channel, position, 10, Date.now())
      assert.deepEqual({ seqs: seqs(read), gap: read.gap }, { seqs: [1], gap: false }, 'a cursor handed out before the first message is valid in the life it began')
    }
    const made = await store.read(uniqueChannel('new-made-up'), { epoch: first.epoch, seq: 5 }, 10, Date.now())
    assert.deepEqual({ seq: made.seq, gap: made.gap, n: made.messages.length }, { seq: 0, gap: true, n: 0 }, 'a made-up position on a channel with no life is a gap, not an error')
  })

  check('readMany (where implemented) answers, per channel and in order, what read answers', async (store) => {
    if (store.readMany === undefined) return // optional: the plugin then sends the reads of `read` together
    const [a, b, c, d] = ['a', 'b', 'c', 'd'].map((what) => uniqueChannel(`many.${what}`)) as [string, string, string, string]
    const epochA = await fill(store, a, 4)
    const epochB = await fill(store, b, 2)
    const now = Date.now()
    const reads = [
      { channel: a, position: { epoch: epochA, seq: 1 } },
      { channel: b, position: 'oldest' as const },
      { channel: c, position: 'latest' as const },
      { channel: d, position: { epoch: 'otherlife', seq: 3 } }
    ]
    const many = await store.readMany(reads, 2, now)
    assert.equal(many.length, 4, 'one result per read')
    assert.deepEqual(many.slice(0, 2).map((result) => ({ epoch: result.epoch, seqs: seqs(result), seq: result.seq, gap: result.gap })), [
      { epoch: epochA, seqs: [2, 3], seq: 3, gap: false },
      { epoch: epochB, seqs: [1, 2], seq: 2, gap: false }
    ], 'after the cursor, up to limit, in order')
    assert.deepEqual({ seq: many[2]?.seq, n: many[2]?.messages.length, gap: many[2]?.gap }, { seq: 0, n: 0, gap: false }, 'a channel with no life reads empty')
    assert.equal(many[3]?.gap, true, 'a cursor of another life is a gap')
    await rejectsWithBadCursor(store.readMany([{ channel: b, position: 'oldest' }, { channel: a, position: { epoch: epochA, seq: 99 } }], 2, now), 'readMany with a cursor past the newest message')
  })

  check('concurrent first appends of a channel agree on one life', async (store) => {
    const channel = uniqueChannel('race')
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => store.append(channel, String(i), Date.now(), RETENTION)))
    assert.equal(new Set(results.map((result) => result.epoch)).size, 1)
    assert.deepEqual(results.map((result) => result.seq).sort((x, y) => x - y), Array.from({ length: 20 }, (_, i) => i + 1))
  })

  check('append gives seqs 1, 2, 3… in one epoch and echoes the time', async (store) => {
    const channel = uniqueChannel('append')
    const time = Date.now()
    const results = []
    for (let i = 0; i < 5; i++) results.push(await store.append(channel, String(i), time + i, RETENTION))
    assert.deepEqual(results.map((result) => result.seq), [1, 2, 3, 4, 5])
    assert.equal(new Set(results.map((result) => result.epoch)).size, 1)
    assert.match((results[0] as { epoch: string }).epoch, EPOCH_PATTERN)
    assert.deepEqual(results.map((result) => result.time), [0, 1, 2, 3, 4].map((i) => time + i))
    const read = await store.read(channel, 'oldest', 10, time + 10)
    assert.deepEqual(read.messages.map((message) => message.time), [0, 1, 2, 3, 4].map((i) => time + i), 'the stored time is read back')
  })

  check('message json is stored and returned byte for byte, never re-encoded', async (store) => {
    const channel = uniqueChannel('json')
    const values = ['{"b":1,"a":2}', '{ "spaced" : [ 1 , 2 ] }', '"a:b:c:d"', '"line\\nbreak and ünïcödé ✓ 🎉"', 'null', '0', '-1.5e3', '[]', JSON.stringify({ big: 'x'.repeat(70_000) })]
    for (const json of values) await store.append(channel, json, Date.now(), RETENTION)
    const read = await store.read(channel, 'oldest', values.length, Date.now())
    assert.deepEqual(read.messages.map((message) => message.json), values)
  })

  check("'oldest' reads from the oldest retained message; 'latest' returns nothing at the newest seq", async (store) => {
    const channel = uniqueChannel('positions')
    const epoch = await fill(store, channel, 5)
    const oldest = await store.read(channel, 'oldest', 10, Date.now())
    assert.deepEqual({ epoch: oldest.epoch, seqs: seqs(oldest), seq: oldest.seq, gap: oldest.gap }, { epoch, seqs: [1, 2, 3, 4, 5], seq: 5, gap: false })
    assert.deepEqual(oldest.messages.map((message) => JSON.parse(message.json).n), [1, 2, 3, 4, 5], 'in push order')
    const latest = await store.read(channel, 'latest', 10, Date.now())
    assert.deepEqual({ epoch: latest.epoch, n: latest.messages.length, seq: latest.seq, gap: latest.gap }, { epoch, n: 0, seq: 5, gap: false })
  })

  check('a cursor reads the messages after it, up to limit; seq is the last one returned', async (store) => {
    const channel = uniqueChannel('cursor')
    const epoch = await fill(store, channel, 10)
    const now = Date.now()
    const after3 = await store.read(channel, { epoch, seq: 3 }, 4, now)
    assert.deepEqual({ seqs: seqs(after3), seq: after3.seq, gap: after3.gap }, { seqs: [4, 5, 6, 7], seq: 7, gap: false })
    const after0 = await store.read(channel, { epoch, seq: 0 }, 100, now)
    assert.deepEqual({ seqs: seqs(after0), gap: after0.gap }, { seqs: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], gap: false })
    const atEnd = await store.read(channel, { epoch, seq: 10 }, 100, now)
    assert.deepEqual({ n: atEnd.messages.length, seq: atEnd.seq, gap: atEnd.gap }, { n: 0, seq: 10, gap: false })
    const oldestLimited = await store.read(channel, 'oldest', 3, now)
    assert.deepEqual({ seqs: seqs(oldestLimited), seq: oldestLimited.seq }, { seqs: [1, 2, 3], seq: 3 })
  })

  check('reading with limit 1 and the returned cursors walks every message exactly once', async (store) => {
    const channel = uniqueChannel('walk')
    const epoch = await fill(store, channel, 12)
    let position: ReturnType<typeof parsePosition> = 'oldest'
    const seen: number[] = []
    for (let i = 0; i < 20; i++) {
      const result = await store.read(channel, position, 1, Date.now())
      if (result.messages.length === 0) break
      seen.push(...seqs(result))
      assert.equal(result.epoch, epoch)
      // The answer's cursor travels as text and comes back parsed, exactly as over HTTP.
      position = parsePosition(formatCursor(result.epoch, result.seq))
    }
    assert.deepEqual(seen, Array.from({ length: 12 }, (_, i) => i + 1))
  })

  check('a message id is a cursor: formatCursor(epoch, seq) round-trips through parsePosition', async (store) => {
    const channel = uniqueChannel('id')
    await fill(store, channel, 2)
    const { epoch, seq } = await store.append(channel, '"third"', Date.now(), RETENTION)
    await fill(store, channel, 2)
    const id = formatCursor(epoch, seq)
    const position = parsePosition(id)
    assert.deepEqual(position, { epoch, seq: 3 })
    const read = await store.read(channel, position, 10, Date.now())
    assert.deepEqual(seqs(read), [4, 5])
  })

  check('a cursor of the current life past the newest message throws FST_LONGPOLL_BAD_CURSOR (400)', async (store) => {
    const channel = uniqueChannel('past')
    const epoch = await fill(store, channel, 3)
    await rejectsWithBadCursor(store.read(channel, { epoch, seq: 4 }, 10, Date.now()), 'seq 4 of 3')
    await rejectsWithBadCursor(store.read(channel, { epoch, seq: 1e15 }, 10, Date.now()), 'a huge seq')
    const emptied = uniqueChannel('past-empty')
    const { epoch: life } = await store.append(emptied, '1', Date.now(), { maxMessages: 10, messageTtl: 1 })
    await rejectsWithBadCursor(store.read(emptied, { epoch: life, seq: 2 }, 10, Date.now() + 10), 'seq 2 of a life whose only message expired')
  })

  check('a cursor from another life reads from the oldest retained message with gap', async (store) => {
    const channel = uniqueChannel('other-life')
    const epoch = await fill(store, channel, 4)
    const other = epoch === 'otherlife' ? 'anotherlife' : 'otherlife'
    for (const seq of [0, 2, 4, 99]) {
      const read = await store.read(channel, { epoch: other, seq }, 10, Date.now())
      assert.deepEqual({ epoch: read.epoch, seqs: seqs(read), seq: read.seq, gap: read.gap }, { epoch, seqs: [1, 2, 3, 4], seq: 4, gap: true }, `seq ${seq} of another life`)
    }
    const empty = uniqueChannel('other-life-empty')
    const read = await store.read(empty, { epoch: other, seq: 7 }, 10, Date.now())
    assert.deepEqual({ n: read.messages.length, seq: read.seq, gap: read.gap }, { n: 0, seq: 0, gap: true }, 'a channel with no message')
  })

  check('maxMessages trims the oldest messages; a cursor behind the trim reports a gap', async (store) => {
    const channel = uniqueChannel('trim')
    const retention = { maxMessages: 3, messageTtl: RETENTION.messageTtl }
    const epoch = await fill(store, channel, 7, Date.now(), retention)
    const now = Date.now()
    const oldest = await store.read(channel, 'oldest', 10, now)
    assert.deepEqual({ seqs: seqs(oldest), gap: oldest.gap }, { seqs: [5, 6, 7], gap: false }, 'oldest is never a gap')
    const behind = await store.read(channel, { epoch, seq: 2 }, 10, now)
    assert.deepEqual({ seqs: seqs(behind), gap: behind.gap }, { seqs: [5, 6, 7], gap: true }, 'seq 2: messages 3 and 4 were trimmed')
    const justBefore = await store.read(channel, { epoch, seq: 4 }, 10, now)
    assert.deepEqual({ seqs: seqs(justBefore), gap: justBefore.gap }, { seqs: [5, 6, 7], gap: false }, 'seq 4: nothing missed')
    const limited = await store.read(channel, { epoch, seq: 0 }, 2, now)
    assert.deepEqual({ seqs: seqs(limited), seq: limited.seq, gap: limited.gap }, { seqs: [5, 6], seq: 6, gap: true })
    const { seq } = await store.append(channel, '8', now, retention)
    assert.equal(seq, 8, 'trimming never reuses a seq')
  })

  check('messageTtl expires messages in append order; reads see only live ones', async (store) => {
    const channel = uniqueChannel('ttl')
    const retention = { maxMessages: 100, messageTtl: 60_000 }
    const t0 = Date.now()
    // Three messages 10 s apart (as the store's clock says), read at chosen instants.
    for (let i = 0; i < 3; i++) await store.append(channel, String(i + 1), t0 + i * 10_000, retention)
    const epoch = (await store.read(channel, 'latest', 1, t0 + 20_000)).epoch
    const live = await store.read(channel, 'oldest', 10, t0 + 59_999)
    assert.deepEqual(seqs(live), [1, 2, 3], 'a message lives messageTtl ms')
    const oneGone = await store.read(channel, 'oldest', 10, t0 + 60_000)
    assert.deepEqual({ seqs: seqs(oneGone), gap: oneGone.gap }, { seqs: [2, 3], gap: false }, 'the first expired at time + messageTtl')
    const fromZero = await store.read(channel, { epoch, seq: 0 }, 10, t0 + 60_000)
    assert.deepEqual({ seqs: seqs(fromZero), gap: fromZero.gap }, { seqs: [2, 3], gap: true }, 'a cursor before an expired message reports a gap')
    const fromOne = await store.read(channel, { epoch, seq: 1 }, 10, t0 + 60_000)
    assert.deepEqual({ seqs: seqs(fromOne), gap: fromOne.gap }, { seqs: [2, 3], gap: false })
    const allGone = await store.read(channel, { epoch, seq: 1 }, 10, t0 + 80_000)
    assert.deepEqual({ n: allGone.messages.length, seq: allGone.seq, gap: allGone.gap, epoch: allGone.epoch }, { n: 0, seq: 3, gap: true, epoch },
      'with nothing retained the answer moves to the newest seq and reports the gap')
    const latest = await store.read(channel, 'latest', 10, t0 + 80_000)
    assert.equal(latest.seq, 3)
    const { seq } = await store.append(channel, '4', t0 + 80_000, retention)
    assert.equal(seq, 4, 'the life and its seqs survive the expiry of every message')
  })

  check('delete removes the messages and starts a new life with a new epoch', async (store) => {
    const channel = uniqueChannel('delete')
    const epoch = await fill(store, channel, 3)
    await store.delete(channel)
    const after = await store.read(channel, 'oldest', 10, Date.now())
    assert.notEqual(after.epoch, epoch, 'a new epoch')
    assert.match(after.epoch, EPOCH_PATTERN)
    assert.deepEqual({ n: after.messages.length, seq: after.seq, gap: after.gap }, { n: 0, seq: 0, gap: false })
    const old = await store.read(channel, { epoch, seq: 3 }, 10, Date.now())
    assert.deepEqual({ seq: old.seq, gap: old.gap, n: old.messages.length }, { seq: 0, gap: true, n: 0 }, 'an old cursor is never read as a position in the new life')
    const appended = await store.append(channel, '"new"', Date.now(), RETENTION)
    assert.notEqual(appended.epoch, epoch)
    assert.equal(appended.seq, 1)
    const fresh = await store.read(channel, { epoch: after.epoch, seq: 0 }, 10, Date.now())
    assert.deepEqual({ seqs: seqs(fresh), gap: fresh.gap }, { seqs: [1], gap: false }, 'a cursor handed out after the delete is the position before the new life')
    await store.delete(uniqueChannel('never-existed'))
  })

  check('an append after delete, with no read between, starts a new life at seq 1', async (store) => {
    const channel = uniqueChannel('delete-append')
    const epoch = await fill(store, channel, 2)
    await store.delete(channel)
    const appended = await store.append(channel, '1', Date.now(), RETENTION)
    assert.notEqual(appended.epoch, epoch)
    assert.equal(appended.seq, 1)
    const read = await store.read(channel, { epoch, seq: 2 }, 10, Date.now())
    assert.deepEqual({ seqs: seqs(read), gap: read.gap }, { seqs: [1], gap: true })
  })

  check('channels are independent', async (store) => {
    const a = uniqueChannel('a:b@c-d_e')
    const b = uniqueChannel('a:b@c-d_e')
    await fill(store, a, 3)
    await fill(store, b, 1)
    const readA = await store.read(a, 'oldest', 10, Date.now())
    const readB = await store.read(b, 'oldest', 10, Date.now())
    assert.deepEqual([seqs(readA), seqs(readB)], [[1, 2, 3], [1]])
    await store.delete(a)
    assert.deepEqual(seqs(await store.read(b, 'oldest', 10, Date.now())), [1], 'deleting one channel leaves the other')
  })

  check(`${concurrency} concurrent appends get distinct, consecutive seqs and none is lost`, async (store) => {
    const channel = uniqueChannel('concurrent')
    const results = await Promise.all(Array.from({ length: concurrency }, (_, i) => store.append(channel, JSON.stringify({ i }), Date.now(), RETENTION)))
    assert.equal(new Set(results.map((result) => result.epoch)).size, 1, 'one life')
    assert.deepEqual(results.map((result) => result.seq).sort((x, y) => x - y), Array.from({ length: concurrency }, (_, i) => i + 1))
    const bySeq = new Map(results.map((result, i) => [result.seq, i]))
    let position: ReturnType<typeof parsePosition> = 'oldest'
    const read: number[] = []
    for (;;) {
      const result = await store.read(channel, position, 37, Date.now())
      if (result.messages.length === 0) break
      for (const message of result.messages) {
        assert.equal(JSON.parse(message.json).i, bySeq.get(message.seq), `message ${message.seq} is the one its append was told`)
        read.push(message.seq)
      }
      position = { epoch: result.epoch, seq: result.seq }
    }
    assert.deepEqual(read, Array.from({ length: concurrency }, (_, i) => i + 1), 'read back in seq order, each once')
  })

  check('an idempotency key stores once: a repeat within its ttl stores nothing and resolves the first message, with duplicate', async (store) => {
    const channel = uniqueChannel('idempotent')
    const time = Date.now()
    const first = await store.append(channel, '"first"', time, RETENTION, { key: 'order-7', ttl: 60_000 })
    assert.notEqual(first.duplicate, true, 'the first append is not a duplicate')
    const repeat = await store.append(channel, '"again"', time + 5, RETENTION, { key: 'order-7', ttl: 60_000 })
    assert.deepEqual({ epoch: repeat.epoch, seq: repeat.seq, time: repeat.time, duplicate: repeat.duplicate },
      { epoch: first.epoch, seq: first.seq, time, duplicate: true }, 'the first message\'s epoch, seq and time')
    const other = await store.append(channel, '"other key"', time + 6, RETENTION, { key: 'order-8', ttl: 60_000 })
    const none = await store.append(channel, '"no key"', time + 7, RETENTION)
    assert.deepEqual([other.seq, none.seq, other.duplicate === true, none.duplicate === true], [first.seq + 1, first.seq + 2, false, false], 'another key, and no key, store')
    const read = await store.read(channel, 'oldest', 10, time + 10)
    assert.deepEqual(read.messages.map((message) => message.json), ['"first"', '"other key"', '"no key"'], 'the repeat stored nothing')
  })

  check('idempotency keys are per channel', async (store) => {
    const a = uniqueChannel('key-a')
    const b = uniqueChannel('key-b')
    const onA = await store.append(a, '1', Date.now(), RETENTION, { key: 'k', ttl: 60_000 })
    const onB = await store.append(b, '1', Date.now(), RETENTION, { key: 'k', ttl: 60_000 })
    assert.deepEqual([onA.seq, onB.seq, onB.duplicate === true], [1, 1, false])
  })

  check('an idempotency key is forgotten after its ttl: the same key stores again', async (store) => {
    const channel = uniqueChannel('key-ttl')
    const ttl = 100
    const first = await store.append(channel, '1', Date.now(), RETENTION, { key: 'short', ttl })
    // A store may expire keys by its own clock (Redis does): let real time pass, with a wide margin.
    await new Promise((resolve) => setTimeout(resolve, ttl * 4))
    const again = await store.append(channel, '2', Date.now(), RETENTION, { key: 'short', ttl })
    assert.deepEqual({ seq: again.seq, duplicate: again.duplicate === true }, { seq: first.seq + 1, duplicate: false })
    const repeat = await store.append(channel, '3', Date.now(), RETENTION, { key: 'short', ttl: 60_000 })
    assert.deepEqual({ seq: repeat.seq, duplicate: repeat.duplicate }, { seq: again.seq, duplicate: true }, 'and is remembered again from then')
  })

  check(`${concurrency} concurrent appends with one idempotency key store one message; all resolve its seq`, async (store) => {
    const channel = uniqueChannel('key-concurrent')
    const results = await Promise.all(Array.from({ length: concurrency }, (_, i) => store.append(channel, JSON.stringify({ i }), Date.now(), RETENTION, { key: 'once', ttl: 60_000 })))
    assert.equal(results.filter((result) => result.duplicate !== true).length, 1, 'exactly one stored')
    assert.equal(new Set(results.map((result) => `${result.epoch}.${result.seq}`)).size, 1, 'every one resolved the same message')
    const read = await store.read(channel, 'oldest', concurrency, Date.now())
    assert.equal(read.messages.length, 1)
  })

  if (options.separateBackends === true) return

  check('concurrent appends through two store instances share one sequence', async (store) => {
    const other = await options.createStore()
    try {
      const channel = uniqueChannel('two-stores')
      const results = await Promise.all(Array.from({ length: 100 }, (_, i) => (i % 2 === 0 ? store : other).append(channel, String(i), Date.now(), RETENTION)))
      assert.equal(new Set(results.map((result) => result.epoch)).size, 1, 'two instances append to one life of the channel (a store with a backend per instance sets separateBackends)')
      assert.deepEqual(results.map((result) => result.seq).sort((x, y) => x - y), Array.from({ length: 100 }, (_, i) => i + 1))
      const keyed = await Promise.all(Array.from({ length: 100 }, (_, i) => (i % 2 === 0 ? store : other).append(channel, String(i), Date.now(), RETENTION, { key: 'shared', ttl: 60_000 })))
      assert.equal(keyed.filter((result) => result.duplicate !== true).length, 1, 'one key through two instances stores once')
      assert.equal(new Set(keyed.map((result) => result.seq)).size, 1)
    } finally {
      await other.close()
    }
  })

  appendManyChecks(check, RETENTION, options.createStore)
}

interface Recorder {
  notifier: LongPollNotifier
  events: Array<{ channel: string, event: NotifierEvent, namespace: NotifierNamespace }>
  resyncs: number
  /** Resolves at the next `resync` call (a new promise after each). */
  resynced: Promise<void>
}

/** Makes a started notifier; `window` is the presenceWindow it starts with (default: the suite's). */
type Make = (window?: number) => Promise<Recorder>

export function notifierConformance (options: NotifierConformanceOptions): void {
  const prefix = options.name === undefined ? '' : `${options.name}: `
  const timeout = options.timeout ?? 5_000
  const quietPeriod = options.quietPeriod ?? 100
  const presenceWindow = options.presenceWindow ?? 200

  /** Declares a check with fresh notifiers, closed when it ends (even when it fails). */
  function check (name: string, fn: (make: Make) => Promise<void>): void {
    options.test(`${prefix}${name}`, async () => {
      const made: Recorder[] = []
      const make: Make = async (window = presenceWindow) => {
        const notifier = await options.createNotifier()
        let resynced = (): void => {}
        const recorder: Recorder = { notifier, events: [], resyncs: 0, resynced: Promise.resolve() }
        const next = (): void => { recorder.resynced = new Promise((resolve) => { resynced = resolve }) }
        next()
        const handlers: NotifierHandlers = {
          event: (channel, event, namespace = 'channel') => { recorder.events.push({ channel, event, namespace }) },
          resync: () => {
            recorder.resyncs++
            const resolve = resynced
            next()
            resolve()
          },
          presenceWindow: window
        }
        made.push(recorder)
        await notifier.start(handlers)
        return recorder
      }
      try {
        await fn(make)
      } finally {
        await Promise.all(made.map((recorder) => recorder.notifier.close()))
      }
    })
  }

  async function until (condition: () => boolean, what: string): Promise<void> {
    const deadline = Date.now() + timeout
    while (!condition()) {
      if (Date.now() > deadline) throw new assert.AssertionError({ message: `timed out after ${timeout} ms waiting for ${what}` })
      await new Promise((resolve) => setTimeout(resolve, 2))
    }
  }

  /** `promise`, or an assertion error if it has not settled within `timeout`. */
  async function within<T> (promise: Promise<T>, what: string): Promise<T> {
    let timer: ReturnType<typeof setTimeout> | undefined
    try {
      return await Promise.race([promise, new Promise<never>((resolve, reject) => {
        timer = setTimeout(() => reject(new assert.AssertionError({ message: `${what}: not settled after ${timeout} ms` })), timeout)
      })])
    } finally {
      clearTimeout(timer)
    }
  }

  const on = (recorder: Recorder, channel: string): ChannelEvent[] =>
    recorder.events.filter((entry) => entry.channel === channel && entry.namespace === 'channel').map((entry) => entry.event as ChannelEvent)

  if (options.presence !== false) {
    const online = async (recorder: Recorder, channel: string): Promise<boolean> => {
      assert.equal(typeof recorder.notifier.online, 'function', 'online(channel) is implemented')
      return await (recorder.notifier.online as (channel: string) => Promise<boolean>)(channel)
    }

    check('presence: publish resolves how many instances are subscribed; online tells whether any is', async (make) => {
      const [a, b, c] = [await make(), await make(), await make()]
      const channel = uniqueChannel('presence')
      assert.equal(await c.notifier.publish(channel, { type: 'message', epoch: 'e', seq: 1 }), 0, 'nobody subscribed')
      assert.equal(await online(c, channel), false)
      await a.notifier.subscribe(channel)
      assert.equal(await c.notifier.publish(channel, { type: 'message', epoch: 'e', seq: 2 }), 1, 'one instance subscribed')
      await b.notifier.subscribe(channel)
      assert.equal(await c.notifier.publish(channel, { type: 'message', epoch: 'e', seq: 3 }), 2, 'two instances subscribed')
      assert.equal(await a.notifier.publish(channel, { type: 'disconnect' }), 2, 'a subscribed publisher counts itself')
      assert.equal(await online(c, channel), true, 'online, asked from an instance that is not subscribed')
      assert.equal(await online(c, uniqueChannel('presence-other')), false, 'per channel')
    })

    check(`presence: a subscription still counts for presenceWindow (${presenceWindow} ms) after unsubscribe, then not`, async (make) => {
      const [a, b] = [await make(), await make()]
      const channel = uniqueChannel('presence-window')
      await a.notifier.subscribe(channel)
      const left = Date.now()
      await a.notifier.unsubscribe(channel)
      assert.equal(await b.notifier.publish(channel, { type: 'message', epoch: 'e', seq: 1 }), 1, 'counted just after unsubscribe')
      assert.equal(await online(b, channel), true)
      const deadline = Date.now() + presenceWindow + timeout
      while (await online(b, channel)) {
        if (Date.now() > deadline) throw new assert.AssertionError({ message: `still online ${timeout} ms after presenceWindow` })
        await new Promise((resolve) => setTimeout(resolve, 10))
      }
      assert.ok(Date.now() - left >= presenceWindow * 0.9, `online for ${Date.now() - left} ms, at least about presenceWindow`)
      assert.equal(await b.notifier.publish(channel, { type: 'message', epoch: 'e', seq: 2 }), 0, 'no receiver once the window passed')
    })

    check('presence: subscribing again within presenceWindow keeps the subscription', async (make) => {
      const [a, b] = [await make(), await make()]
      const channel = uniqueChannel('presence-again')
      await a.notifier.subscribe(channel)
      await a.notifier.unsubscribe(channel)
      await a.notifier.subscribe(channel)
      await new Promise((resolve) => setTimeout(resolve, presenceWindow * 2))
      assert.equal(await b.notifier.publish(channel, { type: 'message', epoch: 'e', seq: 1 }), 1)
      await until(() => on(a, channel).length === 1, 'the event')
    })
  }

  check('an event published after subscribe resolved is delivered, once, with its fields', async (make) => {
    const a = await make()
    const b = await make()
    const channel = uniqueChannel('deliver')
    await a.notifier.subscribe(channel)
    await b.notifier.publish(channel, { type: 'message', epoch: 'abc_DEF-123', seq: 42 })
    await until(() => on(a, channel).length > 0, 'the event')
    await new Promise((resolve) => setTimeout(resolve, quietPeriod))
    assert.deepEqual(on(a, channel), [{ type: 'message', epoch: 'abc_DEF-123', seq: 42 }])
  })

  check('the publisher itself receives its own events when subscribed', async (make) => {
    const a = await make()
    const channel = uniqueChannel('self')
    await a.notifier.subscribe(channel)
    await a.notifier.publish(channel, { type: 'message', epoch: 'e', seq: 1 })
    await until(() => on(a, channel).length === 1, 'the event')
  })

  check('disconnect events are delivered', async (make) => {
    const a = await make()
    const b = await make()
    const channel = uniqueChannel('disconnect')
    await a.notifier.subscribe(channel)
    await b.notifier.publish(channel, { type: 'disconnect' })
    await until(() => on(a, channel).length > 0, 'the disconnect event')
    assert.deepEqual(on(a, channel), [{ type: 'disconnect' }])
  })

  check('every subscribed instance receives every event, in publish order', async (make) => {
    const instances = [await make(), await make(), await make()]
    const channel = uniqueChannel('fanout')
    await Promise.all(instances.map((instance) => instance.notifier.subscribe(channel)))
    const publisher = instances[1] as Recorder
    for (let seq = 1; seq <= 20; seq++) await publisher.notifier.publish(channel, { type: 'message', epoch: 'e', seq })
    for (const [i, instance] of instances.entries()) {
      await until(() => on(instance, channel).length >= 20, `20 events on instance ${i}`)
      assert.deepEqual(on(instance, channel).map((event) => (event as { seq: number }).seq), Array.from({ length: 20 }, (_, j) => j + 1), `instance ${i}`)
    }
  })

  check('events carry their channel; channels with any allowed character work', async (make) => {
    const a = await make()
    const b = await make()
    const one = uniqueChannel('x.y:z@w-v_u')
    const two = uniqueChannel('x.y:z@w-v_u')
    await a.notifier.subscribe(one)
    await a.notifier.subscribe(two)
    await b.notifier.publish(two, { type: 'message', epoch: 'e', seq: 2 })
    await b.notifier.publish(one, { type: 'message', epoch: 'e', seq: 1 })
    await until(() => on(a, one).length === 1 && on(a, two).length === 1, 'both events')
    assert.deepEqual([on(a, one), on(a, two)], [[{ type: 'message', epoch: 'e', seq: 1 }], [{ type: 'message', epoch: 'e', seq: 2 }]])
  })

  check('subscribe, unsubscribe and subscribe again: events still arrive, once each', async (make) => {
    const a = await make()
    const b = await make()
    const channel = uniqueChannel('resubscribe')
    await a.notifier.subscribe(channel)
    await a.notifier.unsubscribe(channel)
    await a.notifier.subscribe(channel)
    await b.notifier.publish(channel, { type: 'message', epoch: 'e', seq: 1 })
    await until(() => on(a, channel).length > 0, 'the event')
    await a.notifier.unsubscribe(channel)
    // Delivery after unsubscribe is allowed (unsubscribing is an optimisation the hub does not rely on) ...
    await new Promise((resolve) => setTimeout(resolve, quietPeriod))
    await a.notifier.subscribe(channel)
    await b.notifier.publish(channel, { type: 'message', epoch: 'e', seq: 2 })
    await until(() => on(a, channel).length >= 2, 'the second event')
    await new Promise((resolve) => setTimeout(resolve, quietPeriod))
    // ... but duplicates are not: one event per publish however often the channel was subscribed.
    assert.deepEqual(on(a, channel), [{ type: 'message', epoch: 'e', seq: 1 }, { type: 'message', epoch: 'e', seq: 2 }])
  })

  check('publishing on a channel nobody subscribed resolves', async (make) => {
    const a = await make()
    await a.notifier.publish(uniqueChannel('nobody'), { type: 'message', epoch: 'e', seq: 1 })
    await a.notifier.publish(uniqueChannel('nobody'), { type: 'disconnect' })
  })

  check('after close, no event reaches the closed instance; the others still receive', async (make) => {
    const a = await make()
    const b = await make()
    const channel = uniqueChannel('close')
    await a.notifier.subscribe(channel)
    await b.notifier.subscribe(channel)
    await a.notifier.close()
    await b.notifier.publish(channel, { type: 'message', epoch: 'e', seq: 1 })
    await until(() => on(b, channel).length === 1, 'the event on the open instance')
    await new Promise((resolve) => setTimeout(resolve, quietPeriod))
    assert.equal(on(a, channel).length, 0, 'nothing reaches a closed notifier')
  })

  check('many channels subscribed at once all deliver', async (make) => {
    const a = await make()
    const b = await make()
    const channels = Array.from({ length: 50 }, () => uniqueChannel('many'))
    await Promise.all(channels.map((channel) => a.notifier.subscribe(channel)))
    await Promise.all(channels.map((channel, i) => b.notifier.publish(channel, { type: 'message', epoch: 'e', seq: i + 1 })))
    await until(() => channels.every((channel) => on(a, channel).length === 1), 'an event on each of 50 channels')
    assert.deepEqual(channels.map((channel) => (on(a, channel)[0] as { seq: number }).seq), channels.map((_, i) => i + 1))
  })

  // A resync makes every held poll of the instance re-read the store: it is for events that may have been lost,
  // never a notifier's routine.
  check('no resync while the broker stays connected', async (make) => {
    const [a, b] = [await make(), await make()]
    const channel = uniqueChannel('no-resync')
    await a.notifier.subscribe(channel)
    await b.notifier.subscribe(channel)
    for (let seq = 1; seq <= 5; seq++) await b.notifier.publish(channel, { type: 'message', epoch: 'e', seq })
    await until(() => on(a, channel).length === 5 && on(b, channel).length === 5, 'the events on both instances')
    await new Promise((resolve) => setTimeout(resolve, quietPeriod * 5))
    assert.deepEqual([a.resyncs, b.resyncs], [0, 0])
  })

  // The plugin subscribes a poll's channel, then reads the store: a push whose event is published between the two
  // must reach it. So an event published the very moment `subscribe` resolves is delivered.
  check('an event published the moment subscribe resolves is delivered (50 channels at once)', async (make) => {
    const a = await make()
    const b = await make()
    const channels = Array.from({ length: 50 }, () => uniqueChannel('at-once'))
    await Promise.all(channels.map(async (channel, i) => {
      await a.notifier.subscribe(channel)
      await b.notifier.publish(channel, { type: 'message', epoch: 'e', seq: i + 1 })
    }))
    await until(() => channels.every((channel) => on(a, channel).length > 0), 'an event on each of 50 channels')
    await new Promise((resolve) => setTimeout(resolve, quietPeriod))
    assert.deepEqual(channels.map((channel) => on(a, channel)), channels.map((_, i) => [{ type: 'message', epoch: 'e', seq: i + 1 }]))
  })

  // With presenceWindow 0, unsubscribe is a real unsubscribe (on Redis, an UNSUBSCRIBE): the window hides nothing.
  check('presenceWindow 0: after a real unsubscribe, subscribing again delivers every event once, even straight after', async (make) => {
    const a = await make(0)
    const b = await make()
    const channel = uniqueChannel('resubscribe-0')
    await a.notifier.subscribe(channel)
    await a.notifier.unsubscribe(channel)
    if (options.presence !== false) {
      const online = a.notifier.online?.bind(a.notifier)
      assert.equal(typeof online, 'function', 'online(channel) is implemented')
      const deadline = Date.now() + timeout
      while (await (online as (channel: string) => Promise<boolean>)(channel)) {
        if (Date.now() > deadline) throw new assert.AssertionError({ message: `still subscribed ${timeout} ms after unsubscribe with presenceWindow 0` })
        await new Promise((resolve) => setTimeout(resolve, 10))
      }
    }
    await a.notifier.subscribe(channel)
    await b.notifier.publish(channel, { type: 'message', epoch: 'e', seq: 1 })
    await until(() => on(a, channel).length > 0, 'the event after subscribing again')
    // Unsubscribe and subscribe again in one breath (a client re-polling at once): the two cross on the way.
    await a.notifier.unsubscribe(channel)
    await a.notifier.subscribe(channel)
    await b.notifier.publish(channel, { type: 'message', epoch: 'e', seq: 2 })
    await until(() => on(a, channel).length >= 2, 'the event after unsubscribing and subscribing at once')
    await new Promise((resolve) => setTimeout(resolve, quietPeriod))
    assert.deepEqual(on(a, channel), [{ type: 'message', epoch: 'e', seq: 1 }, { type: 'message', epoch: 'e', seq: 2 }])
  })

  const { interrupt, outage } = options
  if (interrupt !== undefined) {
    check('a lost connection: the notifier re-subscribes, then calls resync once, and delivers again', async (make) => {
      const a = await make()
      const b = await make()
      const channels = [uniqueChannel('interrupt'), uniqueChannel('interrupt')]
      for (const channel of channels) await a.notifier.subscribe(channel)
      await new Promise((resolve) => setTimeout(resolve, quietPeriod))
      const before = a.resyncs
      const resynced = a.resynced
      await interrupt()
      await within(resynced, 'resync after the connection was cut')
      // At resync the hub re-reads the store, so from this moment every event must arrive: publish at once.
      await Promise.all(channels.map((channel, i) => b.notifier.publish(channel, { type: 'message', epoch: 'e', seq: i + 1 })))
      await until(() => channels.every((channel) => on(a, channel).length > 0), 'the events after resync')
      await new Promise((resolve) => setTimeout(resolve, quietPeriod))
      assert.deepEqual(channels.map((channel) => on(a, channel)), [[{ type: 'message', epoch: 'e', seq: 1 }], [{ type: 'message', epoch: 'e', seq: 2 }]], 'each once')
      assert.equal(a.resyncs - before, 1, 'one resync for one lost connection')
    })
  }

  if (outage !== undefined) {
    check('the broker down: subscribe fails instead of hanging; once it is back, resync and delivery on the channels held', async (make) => {
      const a = await make()
      const b = await make()
      const held = uniqueChannel('outage-held')
      await a.notifier.subscribe(held)
      const resynced = a.resynced
      await outage.stop()
      let restarted = false
      try {
        const attempt = (async () => { await a.notifier.subscribe(uniqueChannel('outage-new')) })()
        await assert.rejects(within(attempt, 'subscribe while the broker is down'), (err: Error) => {
          assert.ok(!(err instanceof assert.AssertionError), err.message)
          return true
        }, 'subscribe rejects while the broker is down')
        await outage.start()
        restarted = true
      } finally {
        if (!restarted) await outage.start()
      }
      await within(resynced, 'resync once the broker is back')
      await b.notifier.publish(held, { type: 'message', epoch: 'e', seq: 1 })
      await until(() => on(a, held).length > 0, 'the event on the channel held through the outage')
      const fresh = uniqueChannel('outage-after')
      await within(Promise.resolve(a.notifier.subscribe(fresh)), 'subscribe once the broker is back')
      await b.notifier.publish(fresh, { type: 'message', epoch: 'e', seq: 2 })
      await until(() => on(a, fresh).length > 0, 'the event on a channel subscribed after the outage')
    })
  }
}

export { queueStoreConformance, type QueueStoreConformanceOptions } from './queue-store.js'
export { queueNotifierConformance } from './queue-notifier.js'
