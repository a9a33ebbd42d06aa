// The pushMany suite, run against every setup (test/push-many.test.ts on memory, test/redis-push-many*.test.ts
// on one and two Redis instances and on a Cluster): its exactly-once and order guarantees per channel, the
// idempotency keys and the validation of a batch.
import type { Test } from 'tap'
import type { PushManyMessage, PushResult } from '../../lib/index.js'
import { heldPolls, poll, type Served } from './app.js'

/** The seq part of a message id ("<epoch>.<seq>"). */
function seqOf (id: string): number {
  return Number(id.slice(id.lastIndexOf('.') + 1))
}

/**
 * Follows a channel from `cursor`, passing back every cursor it is given, until it has `n` messages. Every poll
 * after the first is held until messages arrive (or its timeout, which the caller's bounds make a failure).
 */
async function follow (base: string, channel: string, cursor: string, n: number): Promise<Array<{ id: string, data: unknown }>> {
  const received: Array<{ id: string, data: unknown }> = []
  while (received.length < n) {
    const answer = await poll(base, { channel, cursor, timeout: 30_000 })
    if (answer.status !== 200) throw new Error(`poll on ${channel} answered ${answer.status}: ${JSON.stringify(answer.body)}`)
    if (answer.body.status === 'timeout') throw new Error(`poll on ${channel} timed out with ${received.length} of ${n} messages`)
    for (const message of answer.body.messages) received.push({ id: message.id, data: message.data })
    cursor = answer.body.cursor
  }
  return received
}

/** The plugin options every setup of the suite registers with (the validation cases rely on them). */
export const SUITE_OPTIONS = { maxPushMany: 50, maxMessageBytes: 1_000 } as const

export interface PushManySuiteOptions {
  /** The instances of one deployment; the first pushes, polls are spread over all of them. */
  instances: Served[]
  /** Prefix of this run's channel names, so suites sharing a backend never meet. */
  name: string
}

export function pushManySuite (t: Test, { instances, name }: PushManySuiteOptions): void {
  const [pusher] = instances as [Served, ...Served[]]
  const channel = (what: string): string => `${name}.${what}`

  t.test('polls held on every channel, on every instance, receive each batch exactly once and in batch order', async (t) => {
    const channels = Array.from({ length: 12 }, (_, i) => channel(`order-${i}`))
    const batches: PushManyMessage[][] = Array.from({ length: 4 }, (_, b) => [
      // Several messages for one channel within a batch, interleaved with the others' in batch order.
      ...channels.flatMap((c, i) => (i === 0 ? [1, 2, 3] : [1]).map((k) => ({ channel: c, data: { b, k, c } }))),
      { channel: channels[0] as string, data: { b, k: 4, c: channels[0] } }
    ])
    const expected = new Map<string, unknown[]>(channels.map((c) => [c, batches.flatMap((batch) => batch.filter((m) => m.channel === c).map((m) => m.data))]))
    const start = await Promise.all(channels.map(async (c) => (await poll(pusher.base, { channel: c, cursor: 'latest', timeout: 0 })).body.cursor as string))
    const followers = instances.flatMap(({ base }) => channels.map((c, i) => follow(base, c, start[i] as string, (expected.get(c) as unknown[]).length)))
    for (const instance of instances) await heldPolls(instance.app, channels.length)
    const results: PushResult[][] = []
    for (const batch of batches) results.push(await pusher.app.longpoll.pushMany(batch))
    const received = await Promise.all(followers)

    const ids = new Map<string, string[]>(channels.map((c) => [c, []]))
    batches.forEach((batch, b) => batch.forEach((message, i) => (ids.get(message.channel) as string[]).push((results[b] as PushResult[])[i]?.id as string)))
    for (const [c, channelIds] of ids) {
      const seqs = channelIds.map(seqOf)
      t.same(seqs, seqs.map((_, i) => (seqs[0] as number) + i), `${c}: the batch results give consecutive seqs in batch order`)
    }
    instances.forEach((_, n) => channels.forEach((c, i) => {
      const messages = received[n * channels.length + i] as Array<{ id: string, data: unknown }>
      t.same(messages.map((m) => m.data), expected.get(c), `instance ${n}, ${c}: every message once, in batch order`)
      t.same(messages.map((m) => m.id), ids.get(c), `instance ${n}, ${c}: with the ids pushMany answered`)
    }))
    t.ok(results.flat().every((result) => result.online), 'every channel had polls held: online')
  })

  t.test('the results come in batch order, with online false where no poll is held', async (t) => {
    const c = channel('results')
    const results = await pusher.app.longpoll.pushMany([{ channel: c, data: 'a' }, { channel: channel('results-other'), data: 'x' }, { channel: c, data: 'b' }])
    t.equal(results.length, 3)
    t.same(results.map((result) => result.online), [false, false, false])
    t.notOk(results.some((result) => 'duplicate' in result), 'no key, no duplicate field')
    const answer = await poll(pusher.base, { channel: c, timeout: 0 })
    t.same(answer.body.messages.map((m: { id: string, data: unknown }) => [m.id, m.data]), [[results[0]?.id, 'a'], [results[2]?.id, 'b']])
    t.same(await pusher.app.longpoll.pushMany([]), [], 'an empty batch stores nothing and answers []')
  })

  t.test('idempotency keys within a batch, across batches and with push share one key space per channel', async (t) => {
    const a = channel('keys-a')
    const b = channel('keys-b')
    const [first, repeat, otherChannel, unkeyed] = await pusher.app.longpoll.pushMany([
      { channel: a, data: 1, key: 'k1' },
      { channel: a, data: 2, key: 'k1' },
      { channel: b, data: 3, key: 'k1' },
      { channel: a, data: 4 }
    ]) as [PushResult, PushResult, PushResult, PushResult]
    t.notOk(first.duplicate)
    t.same([repeat.id, repeat.duplicate], [first.id, true], 'a repeat within the batch answers the first id')
    t.notOk(otherChannel.duplicate, 'keys are per channel')
    t.equal(seqOf(unkeyed.id), seqOf(first.id) + 1, 'the repeat took no seq')
    const [later] = await pusher.app.longpoll.pushMany([{ channel: a, data: 5, key: 'k1' }]) as [PushResult]
    t.same([later.id, later.duplicate], [first.id, true], 'a repeat in a later batch answers the first id')
    const viaPush = await pusher.app.longpoll.push(a, 6, { key: 'k1' })
    t.same([viaPush.id, viaPush.duplicate], [first.id, true], 'push shares the key space')
    const pushedFirst = await pusher.app.longpoll.push(b, 7, { key: 'k2' })
    const [fromBatch] = await (instances.at(-1) as Served).app.longpoll.pushMany([{ channel: b, data: 8, key: 'k2' }]) as [PushResult]
    t.same([fromBatch.id, fromBatch.duplicate], [pushedFirst.id, true], 'a batch repeats a key of push (from another instance where there are several)')
    const answer = await poll(pusher.base, { channel: a, timeout: 0 })
    t.same(answer.body.messages.map((m: { data: unknown }) => m.data), [1, 4], 'only the first of each key was stored')
  })

  t.test('an invalid message rejects the whole batch, naming it, and nothing is stored', async (t) => {
    const c = channel('invalid')
    const valid = { channel: c, data: 'stored?' }
    const cycle: Record<string, unknown> = {}
    cycle.self = cycle
    const cases: Array<[string, unknown, string, number]> = [
      ['a bad channel', [valid, { channel: 'no spaces', data: 1 }], 'FST_LONGPOLL_BAD_CHANNEL', 400],
      ['missing data', [valid, { channel: c }], 'FST_LONGPOLL_MISSING_DATA', 400],
      ['data JSON cannot encode', [valid, { channel: c, data: cycle }], 'FST_LONGPOLL_BAD_DATA', 400],
      ['data over maxMessageBytes', [valid, { channel: c, data: 'x'.repeat(2_000) }], 'FST_LONGPOLL_MESSAGE_TOO_LARGE', 413],
      ['a bad key', [valid, { channel: c, data: 1, key: 'has space' }], 'FST_LONGPOLL_BAD_IDEMPOTENCY_KEY', 400],
      ['an item that is not an object', [valid, null], 'FST_LONGPOLL_BAD_BATCH', 400],
      ['not an array', { channel: c, data: 1 }, 'FST_LONGPOLL_BAD_BATCH', 400],
      ['more than maxPushMany', Array.from({ length: SUITE_OPTIONS.maxPushMany + 1 }, () => valid), 'FST_LONGPOLL_BAD_BATCH', 400]
    ]
    const pushed = pusher.app.longpoll.stats().pushed
    for (const [what, batch, code, statusCode] of cases) {
      await t.rejects(pusher.app.longpoll.pushMany(batch as PushManyMessage[]), { code, statusCode }, what)
    }
    await t.rejects(pusher.app.longpoll.pushMany([valid, { channel: c }] as PushManyMessage[]), { message: /^messages\[1\]: / }, 'the error names the message')
    await t.rejects(pusher.app.longpoll.pushMany(Array.from({ length: SUITE_OPTIONS.maxPushMany + 1 }, () => valid)), { message: /maxPushMany/ }, 'the error names the option')
    t.equal(pusher.app.longpoll.stats().pushed, pushed, 'nothing was pushed')
    const answer = await poll(pusher.base, { channel: c, timeout: 0 })
    t.same(answer.body.messages, [], 'nothing was stored')
  })
}
