/**
 * The queue store conformance suite: what the plugin relies on from a LongPollQueueStore, as runnable checks.
 *
 * ```ts
 * import { test } from 'node:test'
 * import { queueStoreConformance } from 'fastify-longpoll/conformance'
 * queueStoreConformance({ test, createStore: () => new MyQueueStore() })
 * ```
 *
 * Every check uses queues of its own (random names), so the suite may share a backend with other tests. Checks
 * about time use leases and delays of a few hundred milliseconds and wait for them to pass.
 */
import assert from 'node:assert/strict'
import { declareChecks } from './check.js'
import { randomBytes } from 'node:crypto'
import type { DeclareTest } from './index.js'
import type { ClaimRequest, LongPollQueueStore } from '../queues/types.js'

export interface QueueStoreConformanceOptions {
  test: DeclareTest
  /** A store; the suite closes every store it creates. Stores created by one suite may share a backend. */
  createStore: () => LongPollQueueStore | Promise<LongPollQueueStore>
  /** Prepended to every check's name. */
  name?: string
  /** Jobs claimed concurrently in the concurrency check. Default 200. */
  concurrency?: number
}

const KEY_TTL = 300_000
const LONG = 60_000

function uniqueQueue (what: string): string {
  return `conformance.q.${what}.${randomBytes(6).toString('hex')}`
}

const sleep = async (ms: number): Promise<void> => await new Promise((resolve) => setTimeout(resolve, ms))

async function rejectsWithLeaseLost (promise: Promise<unknown>, what: string): Promise<void> {
  await assert.rejects(promise, (err: { code?: string, statusCode?: number }) => {
    assert.equal(err.code, 'FST_LONGPOLL_LEASE_LOST', `${what}: code FST_LONGPOLL_LEASE_LOST`)
    assert.equal(err.statusCode, 409, `${what}: statusCode 409`)
    return true
  })
}

export function queueStoreConformance (options: QueueStoreConformanceOptions): void {
  const concurrency = options.concurrency ?? 200

  const check = declareChecks(options.test, options.name, options.createStore)

  const claimOf = (limit = 1, lease = LONG, maxAttempts = 5): ClaimRequest => ({ limit, lease, maxAttempts })
  const put = async (store: LongPollQueueStore, queue: string, json: string, delay = 0, key?: string): Promise<string> =>
    (await store.enqueue(queue, json, { delay, keyTtl: KEY_TTL, ...(key === undefined ? {} : { key }) })).id

  check('an empty or unknown queue: no jobs, nothing waiting, no due time, zero counts', async (store) => {
    const queue = uniqueQueue('empty')
    const { jobs, waiting, nextDueIn } = await store.claim(queue, claimOf())
    assert.deepEqual({ jobs, waiting, nextDueIn }, { jobs: [], waiting: 0, nextDueIn: null })
    assert.deepEqual(await store.counts(queue, { maxAttempts: 5 }), { waiting: 0, delayed: 0, leased: 0, dead: 0 })
    assert.deepEqual(await store.dead(queue, 10), [])
    assert.equal(await store.retryDead(queue), 0)
  })

  check('claim leases jobs oldest first, up to limit, with data as stored, attempt 1, a receipt and leaseUntil', async (store) => {
    const queue = uniqueQueue('claim')
    const before = Date.now()
    const ids = []
    for (let i = 0; i < 5; i++) ids.push(await put(store, queue, JSON.stringify({ i, text: 'ünïcödé "q"' })))
    assert.equal(new Set(ids).size, 5, 'distinct ids')
    const first = await store.claim(queue, claimOf(2, 10_000))
    assert.deepEqual(first.jobs.map((job) => job.id), ids.slice(0, 2))
    assert.equal(first.waiting, 3, 'jobs still waiting')
    const job = first.jobs[0] as NonNullable<typeof first.jobs[0]>
    assert.equal(job.json, JSON.stringify({ i: 0, text: 'ünïcödé "q"' }))
    assert.equal(job.attempt, 1)
    assert.ok(Math.abs(job.leaseUntil - (Date.now() + 10_000)) < 2_000, 'leaseUntil is lease ms from now (store clock)')
    assert.ok(Math.abs(job.time - before) < 2_000, 'time is the enqueue time')
    assert.ok(first.nextDueIn !== null && first.nextDueIn <= 10_000, 'the lease end is the next due time')
    const rest = await store.claim(queue, claimOf(10))
    assert.deepEqual(rest.jobs.map((j) => j.id), ids.slice(2))
    assert.equal(rest.waiting, 0)
    assert.deepEqual((await store.claim(queue, claimOf())).jobs, [], 'leased jobs are not claimed again')
    assert.deepEqual(await store.counts(queue, { maxAttempts: 5 }), { waiting: 0, delayed: 0, leased: 5, dead: 0 })
  })

  check('receipts are distinct, unguessable (a changed character is refused) and bound to one lease', async (store) => {
    const queue = uniqueQueue('receipt')
    for (let i = 0; i < 20; i++) await put(store, queue, String(i))
    const { jobs } = await store.claim(queue, claimOf(20))
    assert.equal(new Set(jobs.map((job) => job.receipt)).size, 20)
    const receipt = (jobs[0] as { receipt: string }).receipt
    const last = receipt.at(-1) === 'A' ? 'B' : 'A'
    await rejectsWithLeaseLost(store.ack(queue, [receipt.slice(0, -1) + last]), 'a tampered receipt')
    await rejectsWithLeaseLost(store.ack(queue, ['made-up']), 'a made-up receipt')
    await rejectsWithLeaseLost(store.ack(uniqueQueue('other'), [receipt]), 'a receipt on another queue')
    assert.equal(await store.ack(queue, [receipt]), 1, 'the real one still works')
  })

  check('a de-duplicating key: a repeat stores nothing and returns the first id; keys are per queue', async (store) => {
    const queue = uniqueQueue('key')
    const first = await store.enqueue(queue, '1', { delay: 0, keyTtl: KEY_TTL, key: 'order-7' })
    assert.equal(first.duplicate, false)
    const again = await store.enqueue(queue, '2', { delay: 0, keyTtl: KEY_TTL, key: 'order-7' })
    assert.deepEqual(again, { id: first.id, duplicate: true })
    const elsewhere = await store.enqueue(uniqueQueue('key'), '3', { delay: 0, keyTtl: KEY_TTL, key: 'order-7' })
    assert.equal(elsewhere.duplicate, false)
    assert.deepEqual((await store.counts(queue, { maxAttempts: 5 })).waiting, 1)
    // The key outlives the job: an enqueue repeated after the job was done is still a duplicate.
    const { jobs } = await store.claim(queue, claimOf())
    await store.ack(queue, jobs.map((job) => job.receipt))
    assert.equal((await store.enqueue(queue, '4', { delay: 0, keyTtl: KEY_TTL, key: 'order-7' })).duplicate, true)
    const short = uniqueQueue('key')
    await store.enqueue(short, '1', { delay: 0, keyTtl: 100, key: 'k' })
    await sleep(250)
    assert.equal((await store.enqueue(short, '2', { delay: 0, keyTtl: 100, key: 'k' })).duplicate, false, 'a key is forgotten after keyTtl')
  })

  check('a delayed job is counted delayed, is not claimable before its delay, and is after it', async (store) => {
    const queue = uniqueQueue('delay')
    const id = await put(store, queue, '"later"', 300)
    assert.deepEqual(await store.counts(queue, { maxAttempts: 5 }), { waiting: 0, delayed: 1, leased: 0, dead: 0 })
    const early = await store.claim(queue, claimOf())
    assert.deepEqual(early.jobs, [])
    assert.ok(early.nextDueIn !== null && early.nextDueIn > 0 && early.nextDueIn <= 300, `nextDueIn is the delay left (${early.nextDueIn})`)
    await sleep((early.nextDueIn ?? 0) + 50)
    const late = await store.claim(queue, claimOf())
    assert.deepEqual(late.jobs.map((job) => job.id), [id])
  })

  check('ack deletes the jobs; a second ack, or one with any stale receipt, is LEASE_LOST and changes nothing', async (store) => {
    const queue = uniqueQueue('ack')
    for (let i = 0; i < 3; i++) await put(store, queue, String(i))
    const { jobs } = await store.claim(queue, claimOf(3))
    const [a, b, c] = jobs.map((job) => job.receipt) as [string, string, string]
    assert.equal(await store.ack(queue, [a]), 1)
    await rejectsWithLeaseLost(store.ack(queue, [a]), 'a second ack')
    await rejectsWithLeaseLost(store.ack(queue, [b, a]), 'an ack with one stale receipt')
    assert.deepEqual(await store.counts(queue, { maxAttempts: 5 }), { waiting: 0, delayed: 0, leased: 2, dead: 0 }, 'the failed ack changed nothing')
    assert.equal(await store.ack(queue, [b, c]), 2)
    assert.deepEqual(await store.counts(queue, { maxAttempts: 5 }), { waiting: 0, delayed: 0, leased: 0, dead: 0 })
    await rejectsWithLeaseLost(store.nack(queue, b, { delay: 0, maxAttempts: 5 }), 'a nack after ack')
    await rejectsWithLeaseLost(store.extend(queue, c, 1_000), 'an extend after ack')
  })

  check('nack: waiting again at once, or delayed; the attempt counts; a nack of the last attempt is dead with its error', async (store) => {
    const queue = uniqueQueue('nack')
    const id = await put(store, queue, '"flaky"')
    const first = (await store.claim(queue, claimOf(1, LONG, 3))).jobs[0] as { receipt: string }
    assert.equal(await store.nack(queue, first.receipt, { delay: 0, maxAttempts: 3, error: 'e1' }), 'waiting')
    await rejectsWithLeaseLost(store.nack(queue, first.receipt, { delay: 0, maxAttempts: 3 }), 'a second nack')
    const second = (await store.claim(queue, claimOf(1, LONG, 3))).jobs[0] as { receipt: string, attempt: number, id: string }
    assert.deepEqual([second.id, second.attempt], [id, 2])
    assert.notEqual(second.receipt, first.receipt, 'a new lease, a new receipt')
    assert.equal(await store.nack(queue, second.receipt, { delay: 200, maxAttempts: 3, error: 'e2' }), 'delayed')
    assert.deepEqual(await store.counts(queue, { maxAttempts: 3 }), { waiting: 0, delayed: 1, leased: 0, dead: 0 })
    assert.deepEqual((await store.claim(queue, claimOf(1, LONG, 3))).jobs, [], 'not during the nack delay')
    await sleep(300)
    const third = (await store.claim(queue, claimOf(1, LONG, 3))).jobs[0] as { receipt: string, attempt: number }
    assert.equal(third.attempt, 3)
    assert.equal(await store.nack(queue, third.receipt, { delay: 0, maxAttempts: 3, error: 'e3' }), 'dead')
    assert.deepEqual(await store.counts(queue, { maxAttempts: 3 }), { waiting: 0, delayed: 0, leased: 0, dead: 1 })
    const dead = await store.dead(queue, 10)
    assert.deepEqual(dead.map((job) => ({ id: job.id, json: job.json, attempts: job.attempts, error: job.error })), [{ id, json: '"flaky"', attempts: 3, error: 'e3' }])
  })

  check('a lease that passes: the job is claimable again (attempt 2, new receipt); the old receipt is LEASE_LOST', async (store) => {
    const queue = uniqueQueue('expire')
    const id = await put(store, queue, '1')
    const first = (await store.claim(queue, claimOf(1, 200))).jobs[0] as { receipt: string }
    assert.deepEqual((await store.claim(queue, claimOf())).jobs, [], 'exclusive while the lease holds')
    await sleep(300)
    // Passed but not yet taken back by a claim: still lost, another worker may be about to get it.
    await rejectsWithLeaseLost(store.ack(queue, [first.receipt]), 'an ack after the lease passed')
    await rejectsWithLeaseLost(store.extend(queue, first.receipt, LONG), 'an extend after the lease passed')
    const second = (await store.claim(queue, claimOf())).jobs[0] as { receipt: string, attempt: number, id: string }
    assert.deepEqual([second.id, second.attempt], [id, 2])
    await rejectsWithLeaseLost(store.nack(queue, first.receipt, { delay: 0, maxAttempts: 5 }), 'a nack with the first receipt')
    assert.equal(await store.ack(queue, [second.receipt]), 1)
  })

  check('extend moves the lease end and keeps the receipt valid past the old end', async (store) => {
    const queue = uniqueQueue('extend')
    await put(store, queue, '1')
    const job = (await store.claim(queue, claimOf(1, 200))).jobs[0] as { receipt: string, leaseUntil: number }
    const leaseUntil = await store.extend(queue, job.receipt, 2_000)
    assert.ok(leaseUntil > job.leaseUntil + 1_000, 'later than the first end')
    await sleep(300)
    assert.deepEqual((await store.claim(queue, claimOf())).jobs, [], 'still leased past the first end')
    assert.deepEqual(await store.counts(queue, { maxAttempts: 5 }), { waiting: 0, delayed: 0, leased: 1, dead: 0 })
    assert.equal(await store.ack(queue, [job.receipt]), 1)
  })

  check('after maxAttempts passed leases a job is dead (error null); retryDead requeues it with attempts reset', async (store) => {
    const queue = uniqueQueue('dead')
    const id = await put(store, queue, '"doomed"')
    for (let attempt = 1; attempt <= 2; attempt++) {
      const job = (await store.claim(queue, claimOf(1, 100, 2))).jobs[0]
      assert.equal(job?.attempt, attempt)
      await sleep(200)
    }
    const third = await store.claim(queue, claimOf(1, 100, 2))
    assert.deepEqual(third.jobs, [], 'not leased a third time')
    if (third.expired !== undefined) assert.deepEqual([third.expired, third.died], [1, 1], 'reported as one lease taken back, one death')
    assert.deepEqual(await store.counts(queue, { maxAttempts: 2 }), { waiting: 0, delayed: 0, leased: 0, dead: 1 })
    assert.deepEqual((await store.dead(queue, 10)).map((job) => [job.id, job.attempts, job.error]), [[id, 2, null]])
    assert.equal(await store.retryDead(queue), 1)
    assert.deepEqual(await store.dead(queue, 10), [])
    const back = (await store.claim(queue, claimOf(1, LONG, 2))).jobs[0]
    assert.deepEqual([back?.id, back?.attempt, back?.json], [id, 1, '"doomed"'])
  })

  check('dead lists at most limit, oldest first', async (store) => {
    const queue = uniqueQueue('deadlist')
    const ids = []
    for (let i = 0; i < 3; i++) ids.push(await put(store, queue, String(i)))
    for (const job of (await store.claim(queue, claimOf(3, LONG, 1))).jobs) await store.nack(queue, job.receipt, { delay: 0, maxAttempts: 1, error: `e${job.json}` })
    assert.deepEqual((await store.dead(queue, 2)).map((job) => [job.id, job.error]), [[ids[0], 'e0'], [ids[1], 'e1']])
  })

  check('concurrent claims through two store instances never lease one job twice; every job is leased once', async (store) => {
    const other = await options.createStore()
    try {
      const queue = uniqueQueue('race')
      const ids = await Promise.all(Array.from({ length: concurrency }, (_, i) => put(i % 2 === 0 ? store : other, queue, String(i))))
      const via = (i: number): LongPollQueueStore => i % 2 === 0 ? store : other
      const answers = await Promise.all(Array.from({ length: concurrency + 20 }, (_, i) => via(i).claim(queue, claimOf(1 + (i % 3)))))
      const claimed = answers.flatMap((answer) => answer.jobs.map((job) => job.id))
      // Two MemoryQueueStores are two queues: each must still lease its own jobs once.
      assert.equal(new Set(claimed).size, claimed.length, 'no job leased twice')
      assert.deepEqual([...claimed].sort(), [...ids].sort(), 'every job leased')
      // Each acked through the instance that claimed it (for a shared backend, either would do).
      const acked = await Promise.all(answers.flatMap((answer, i) => answer.jobs.map(async (job) => await via(i).ack(queue, [job.receipt]))))
      assert.equal(acked.reduce((a, b) => a + b, 0), concurrency, 'each acked once')
    } finally {
      await other.close()
    }
  })

  check('queue names with every default-pattern character, up to 200 long', async (store) => {
    for (const queue of [uniqueQueue('x.y:z@w-v_u'), `q.${'x'.repeat(198)}`]) {
      const id = await put(store, queue, '1')
      assert.deepEqual((await store.claim(queue, claimOf())).jobs.map((job) => job.id), [id], queue.slice(0, 40))
    }
  })
}
