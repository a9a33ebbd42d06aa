// Contract §3, line by line, over real HTTP: run against the memory queue store and RedisQueueStore, on one
// instance and on two (jobs enqueued on one are claimed, settled and woken on the other).
import type { Test } from 'tap'
import { randomBytes } from 'node:crypto'
import type { Served } from './app.js'
import { until } from './app.js'
import { ack, claim, counts, enqueue, extend, nack, post } from './queue.js'
import type { LongPollOptions } from '../../lib/index.js'

/** Makes instances of one deployment: they share the queue store and the notifier's broker. */
export type Deploy = (t: Test, options?: LongPollOptions) => Promise<[Served, Served]>

const unique = (what: string): string => `q.${what}.${randomBytes(4).toString('hex')}`

export function queueSuite (t: Test, name: string, deploy: Deploy): void {
  t.test(`${name}: enqueue answers 201 { id } once stored; a repeated key answers 200 { id, duplicate: true }`, async (t) => {
    const [a, b] = await deploy(t)
    const queue = unique('enqueue')
    const first = await enqueue(a.base, queue, { n: 1 }, { key: 'order-7' })
    t.equal(first.status, 201)
    t.match(first.body, { id: String })
    t.notOk('duplicate' in first.body)
    const again = await enqueue(b.base, queue, { n: 2 }, { key: 'order-7' })
    t.equal(again.status, 200)
    t.same(again.body, { id: first.body.id, duplicate: true })
    const other = await enqueue(a.base, queue, { n: 3 }, { key: 'order-8' })
    t.equal(other.status, 201)
    t.not(other.body.id, first.body.id)
    // The same key on another queue is another key.
    t.equal((await enqueue(a.base, unique('other'), 1, { key: 'order-7' })).status, 201)
    t.same((await counts(b.base, queue)).body, { waiting: 2, delayed: 0, leased: 0, dead: 0 }, 'the duplicate stored nothing')
    const got = await claim(b.base, queue, { timeout: 0, limit: 10 })
    t.same(got.body.jobs.map((job: any) => job.data), [{ n: 1 }, { n: 3 }], 'in enqueue order')
  })

  t.test(`${name}: bad enqueue input answers 400 or 413 and stores nothing`, async (t) => {
    const [a] = await deploy(t, { maxMessageBytes: 100 })
    const queue = unique('bad')
    const cases: Array<[string, string, unknown, number, string]> = [
      ['a bad queue name', 'a b', { data: 1 }, 400, 'FST_LONGPOLL_BAD_QUEUE'],
      ['missing data', queue, {}, 400, 'FST_ERR_VALIDATION'],
      ['a negative delay', queue, { data: 1, delay: -1 }, 400, 'FST_ERR_VALIDATION'],
      ['a fractional delay', queue, { data: 1, delay: 1.5 }, 400, 'FST_ERR_VALIDATION'],
      ['a delay too large for a timer', queue, { data: 1, delay: 2 ** 31 }, 400, 'FST_ERR_VALIDATION'],
      ['an empty key', queue, { data: 1, key: '' }, 400, 'FST_ERR_VALIDATION'],
      ['a key with a space', queue, { data: 1, key: 'a b' }, 400, 'FST_ERR_VALIDATION'],
      ['a key of 201 characters', queue, { data: 1, key: 'k'.repeat(201) }, 400, 'FST_ERR_VALIDATION'],
      ['data over maxMessageBytes', queue, { data: 'x'.repeat(101) }, 413, 'FST_LONGPOLL_MESSAGE_TOO_LARGE']
    ]
    for (const [what, q, body, status, code] of cases) {
      const res = await post(a.base, `/queues/${encodeURIComponent(q)}/jobs`, body)
      t.equal(res.status, status, `${what}: ${status}`)
      t.equal(res.body.code, code, `${what}: ${code}`)
    }
    t.same((await counts(a.base, queue)).body, { waiting: 0, delayed: 0, leased: 0, dead: 0 })
  })

  t.test(`${name}: a claim answers jobs with id, data, attempt, receipt, leaseUntil and time; limit; lease; timeout`, async (t) => {
    const [a, b] = await deploy(t, { maxLease: 60_000, lease: 20_000, maxTimeout: 2_000 })
    const queue = unique('claim')
    const before = Date.now()
    const ids = []
    for (let i = 0; i < 3; i++) ids.push((await enqueue(a.base, queue, { i })).body.id)
    const one = await claim(b.base, queue, { timeout: 0 })
    t.equal(one.status, 200)
    t.equal(one.headers.get('cache-control'), 'no-store')
    t.equal(one.body.status, 'ok')
    t.equal(one.body.jobs.length, 1, 'limit defaults to 1')
    const job = one.body.jobs[0]
    t.same(Object.keys(job).sort(), ['attempt', 'data', 'id', 'leaseUntil', 'receipt', 'time'])
    t.match(job, { id: ids[0], data: { i: 0 }, attempt: 1, receipt: String })
    t.ok(job.time >= before - 1000 && job.time <= Date.now() + 1000, 'time is the enqueue time, epoch ms')
    t.ok(Math.abs(job.leaseUntil - (Date.now() + 20_000)) < 2_000, 'the lease option is the default lease')
    const two = await claim(a.base, queue, { timeout: 0, limit: 5, lease: 3_600_000 })
    t.same(two.body.jobs.map((j: any) => j.id), ids.slice(1), 'up to limit jobs, oldest first')
    t.ok(Math.abs(two.body.jobs[0].leaseUntil - (Date.now() + 60_000)) < 2_000, 'a lease above maxLease is clamped')
    t.not(two.body.jobs[0].receipt, two.body.jobs[1].receipt)
    const started = Date.now()
    const empty = await claim(a.base, queue, { timeout: 300 })
    t.same(empty.body, { status: 'timeout', jobs: [] })
    t.ok(Date.now() - started >= 250, 'held until its timeout')
    const clamped = Date.now()
    t.same((await claim(b.base, queue, { timeout: 600_000 })).body, { status: 'timeout', jobs: [] })
    t.ok(Date.now() - clamped < 10_000, 'a timeout above maxTimeout is clamped')
    for (const [what, body] of [['limit 0', { limit: 0 }], ['limit over maxBatch', { limit: 101 }], ['lease 0', { lease: 0 }], ['a negative timeout', { timeout: -1 }], ['a text timeout', { timeout: 'soon' }]] as const) {
      const res = await claim(a.base, queue, body)
      t.equal(res.status, 400, `${what}: 400`)
      t.equal(res.body.code, 'FST_ERR_VALIDATION')
    }
    const noBody = await post(a.base, `/queues/${queue}/claim`, undefined)
    t.equal(noBody.status, 200, 'a claim without a body takes the defaults')
  })

  t.test(`${name}: a claim held on one instance is woken by an enqueue on the other within milliseconds`, async (t) => {
    const [a, b] = await deploy(t)
    const queue = unique('wake')
    const held = claim(b.base, queue, { timeout: 20_000 })
    await until(() => b.app.longpoll.stats().heldPolls === 0 && heldClaims(b) === 1, 10_000, 'a held claim')
    const started = Date.now()
    const { body: { id } } = await enqueue(a.base, queue, 'wake up')
    const answer = await held
    t.equal(answer.body.status, 'ok')
    t.equal(answer.body.jobs[0].id, id)
    t.ok(Date.now() - started < 5_000, `woken, not timed out (${Date.now() - started} ms)`)
  })

  t.test(`${name}: one job, claims held on both instances: one gets it, the other goes back to waiting and gets the next`, async (t) => {
    const [a, b] = await deploy(t)
    const queue = unique('race')
    const held = [claim(a.base, queue, { timeout: 20_000 }), claim(b.base, queue, { timeout: 20_000 })]
    const total = (): number => a === b ? heldClaims(a) : heldClaims(a) + heldClaims(b)
    await until(() => total() === 2 && heldClaims(b) > 0, 10_000, 'a claim held on each instance')
    const first = (await enqueue(a.base, queue, 'first')).body.id
    const winner = await Promise.race(held.map(async (answer, i) => ({ i, answer: await answer })))
    t.same(winner.answer.body.jobs.map((job: any) => job.id), [first])
    // The loser was woken too (each instance wakes one claim per new job), found nothing, and holds on.
    t.equal(total(), 1, 'the other claim is still held')
    const second = (await enqueue(b.base, queue, 'second')).body.id
    const loser = await (held[1 - winner.i] as Promise<{ body: any }>)
    t.same(loser.body.jobs.map((job: any) => job.id), [second], 'the next job goes to the claim that lost')
  })

  t.test(`${name}: ack one or many receipts; the jobs are gone; a stale receipt answers 409 and changes nothing`, async (t) => {
    const [a, b] = await deploy(t)
    const queue = unique('ack')
    for (let i = 0; i < 3; i++) await enqueue(a.base, queue, i)
    const { body: { jobs } } = await claim(a.base, queue, { timeout: 0, limit: 3 })
    t.same((await ack(b.base, queue, { receipt: jobs[0].receipt })).body, { acked: 1 })
    const stale = await ack(a.base, queue, { receipt: jobs[0].receipt })
    t.equal(stale.status, 409)
    t.equal(stale.body.code, 'FST_LONGPOLL_LEASE_LOST')
    // One stale receipt among good ones: all or nothing.
    const mixed = await ack(a.base, queue, { receipts: [jobs[1].receipt, jobs[0].receipt] })
    t.equal(mixed.status, 409)
    t.same((await counts(a.base, queue)).body, { waiting: 0, delayed: 0, leased: 2, dead: 0 }, 'the 409 changed nothing')
    t.same((await ack(b.base, queue, { receipts: [jobs[1].receipt, jobs[2].receipt] })).body, { acked: 2 })
    t.same((await counts(b.base, queue)).body, { waiting: 0, delayed: 0, leased: 0, dead: 0 })
    const made = await ack(a.base, queue, { receipt: 'made-up.receipt' })
    t.equal(made.status, 409, 'an unknown receipt is a lost lease')
    for (const [what, body] of [['no receipt', {}], ['both', { receipt: jobs[0].receipt, receipts: [jobs[0].receipt] }], ['an empty list', { receipts: [] }]] as const) {
      const res = await ack(a.base, queue, body)
      t.equal(res.status, 400, `${what}: 400`)
    }
  })

  t.test(`${name}: a passed lease: the ack is refused (409) and the job is claimed again, attempt 2`, async (t) => {
    const [a, b] = await deploy(t)
    const queue = unique('expire')
    const { body: { id } } = await enqueue(a.base, queue, 'x')
    const first = (await claim(a.base, queue, { timeout: 0, lease: 200 })).body.jobs[0]
    // Held on the other instance before the lease passes: woken by the time, with no enqueue.
    const started = Date.now()
    const again = await claim(b.base, queue, { timeout: 10_000 })
    t.equal(again.body.status, 'ok')
    t.match(again.body.jobs[0], { id, attempt: 2 })
    t.not(again.body.jobs[0].receipt, first.receipt, 'a new lease, a new receipt')
    t.ok(Date.now() - started < 5_000, 'woken when the lease passed')
    const late = await ack(a.base, queue, { receipt: first.receipt })
    t.equal(late.status, 409, 'the first worker\'s ack is refused')
    t.equal(late.body.code, 'FST_LONGPOLL_LEASE_LOST')
    t.same((await ack(b.base, queue, { receipt: again.body.jobs[0].receipt })).body, { acked: 1 })
  })

  t.test(`${name}: extend moves leaseUntil and keeps the receipt valid; a stale receipt answers 409`, async (t) => {
    const [a, b] = await deploy(t)
    const queue = unique('extend')
    await enqueue(a.base, queue, 'long job')
    const job = (await claim(a.base, queue, { timeout: 0, lease: 300 })).body.jobs[0]
    const extended = await extend(b.base, queue, { receipt: job.receipt, lease: 5_000 })
    t.equal(extended.status, 200)
    t.ok(extended.body.leaseUntil > job.leaseUntil + 3_000, 'the lease now ends later')
    // Past the first lease's end, the job is still leased: a claim finds nothing.
    t.same((await claim(b.base, queue, { timeout: 600 })).body, { status: 'timeout', jobs: [] })
    t.same((await ack(a.base, queue, { receipt: job.receipt })).body, { acked: 1 }, 'the receipt is still valid')
    const stale = await extend(a.base, queue, { receipt: job.receipt, lease: 1_000 })
    t.equal(stale.status, 409)
    t.equal(stale.body.code, 'FST_LONGPOLL_LEASE_LOST')
    t.equal((await extend(a.base, queue, { receipt: job.receipt })).status, 400, 'lease is required')
  })

  t.test(`${name}: nack with a delay: delayed meanwhile, then claimed again (attempt 2) by a claim it wakes`, async (t) => {
    const [a, b] = await deploy(t)
    const queue = unique('nack')
    const { body: { id } } = await enqueue(a.base, queue, 'flaky')
    const job = (await claim(a.base, queue, { timeout: 0 })).body.jobs[0]
    const held = claim(b.base, queue, { timeout: 10_000 })
    await until(() => heldClaims(b) === 1, 10_000, 'a held claim')
    const nacked = Date.now()
    const res = await nack(a.base, queue, { receipt: job.receipt, delay: 300, error: 'flaked' })
    t.equal(res.status, 200)
    t.same(res.body, { state: 'delayed' })
    t.same((await counts(a.base, queue)).body, { waiting: 0, delayed: 1, leased: 0, dead: 0 }, 'counted as delayed')
    const again = await held
    t.ok(Date.now() - nacked >= 250, 'not before the delay')
    t.ok(Date.now() - nacked < 5_000, 'woken when the delay ended')
    t.match(again.body.jobs[0], { id, attempt: 2 })
    const twice = await nack(a.base, queue, { receipt: job.receipt })
    t.equal(twice.status, 409, 'a stale nack answers 409')
    t.same((await nack(b.base, queue, { receipt: again.body.jobs[0].receipt })).body, { state: 'waiting' }, 'without a delay: waiting at once')
    t.equal((await claim(a.base, queue, { timeout: 0 })).body.jobs[0].attempt, 3)
  })

  t.test(`${name}: enqueue with a delay wakes a held claim when the delay ends`, async (t) => {
    const [a, b] = await deploy(t)
    const queue = unique('delay')
    const held = claim(b.base, queue, { timeout: 10_000 })
    await until(() => heldClaims(b) === 1, 10_000, 'a held claim')
    const started = Date.now()
    t.equal((await enqueue(a.base, queue, 'later', { delay: 300 })).status, 201)
    t.same((await counts(a.base, queue)).body, { waiting: 0, delayed: 1, leased: 0, dead: 0 })
    t.same((await claim(a.base, queue, { timeout: 0 })).body.jobs, [], 'not claimable during its delay')
    const answer = await held
    t.ok(Date.now() - started >= 250, `not before the delay (${Date.now() - started} ms)`)
    t.ok(Date.now() - started < 5_000, 'at the delay, not the timeout')
    t.equal(answer.body.jobs[0].data, 'later')
  })

  t.test(`${name}: after maxAttempts leases a job is a dead letter with its last error; retryDead requeues it`, async (t) => {
    const [a, b] = await deploy(t, { maxAttempts: 2 })
    const queue = unique('dead')
    const { body: { id } } = await enqueue(a.base, queue, { doomed: true })
    const first = (await claim(a.base, queue, { timeout: 0 })).body.jobs[0]
    t.same((await nack(a.base, queue, { receipt: first.receipt, error: 'boom 1' })).body, { state: 'waiting' })
    const second = (await claim(b.base, queue, { timeout: 0, lease: 200 })).body.jobs[0]
    t.equal(second.attempt, 2)
    // The second lease passes: out of attempts, dead with the last error given.
    await claim(a.base, queue, { timeout: 1_000 })
    t.same((await counts(b.base, queue)).body, { waiting: 0, delayed: 0, leased: 0, dead: 1 })
    const dead = await b.app.longpoll.queue(queue).dead()
    t.same(dead.map((job) => ({ ...job, time: 0 })), [{ id, data: { doomed: true }, attempts: 2, error: 'boom 1', time: 0 }])
    t.equal(await a.app.longpoll.queue(queue).retryDead(), 1)
    const back = (await claim(b.base, queue, { timeout: 0 })).body.jobs[0]
    t.match(back, { id, attempt: 1, data: { doomed: true } }, 'requeued with its attempts reset')
    t.same((await nack(b.base, queue, { receipt: back.receipt, error: 'x' })).body, { state: 'waiting' })
    const last = (await claim(b.base, queue, { timeout: 0 })).body.jobs[0]
    t.same((await nack(a.base, queue, { receipt: last.receipt, error: 'boom 2' })).body, { state: 'dead' }, 'a nack of the last attempt is dead')
    t.equal((await b.app.longpoll.queue(queue).dead())[0]?.error, 'boom 2')
  })

  t.test(`${name}: app.longpoll.queue(q): enqueue (delay, key), stats, dead, retryDead`, async (t) => {
    const [a, b] = await deploy(t)
    const name = unique('api')
    const queue = a.app.longpoll.queue(name)
    const job = await queue.enqueue({ server: true })
    t.match(job, { id: String, duplicate: false })
    t.same(await queue.enqueue({ again: true }, { key: 'k1' }).then(async () => await queue.enqueue(2, { key: 'k1' })).then((r) => r.duplicate), true)
    await queue.enqueue('later', { delay: 60_000 })
    t.same(await b.app.longpoll.queue(name).stats(), { waiting: 2, delayed: 1, leased: 0, dead: 0 })
    t.same(await queue.dead(), [])
    t.equal(await queue.retryDead(), 0)
    t.throws(() => a.app.longpoll.queue('a b'), { code: 'FST_LONGPOLL_BAD_QUEUE' })
    await t.rejects(queue.enqueue(undefined), { code: 'FST_LONGPOLL_MISSING_DATA' })
    await t.rejects(queue.enqueue(1, { delay: -5 }), { code: 'FST_LONGPOLL_BAD_JOB_OPTION' })
    await t.rejects(queue.enqueue(1, { key: 'a b' }), { code: 'FST_LONGPOLL_BAD_JOB_OPTION' })
    await t.rejects(queue.enqueue(10n), { code: 'FST_LONGPOLL_BAD_DATA' })
  })

  t.test(`${name}: queue names of 200 characters work on every route, whatever maxParamLength`, async (t) => {
    const [a, b] = await deploy(t)
    const queue = `q.${'x'.repeat(198)}`
    t.equal(queue.length, 200)
    t.equal((await enqueue(a.base, queue, 1)).status, 201)
    t.same((await counts(b.base, queue)).body, { waiting: 1, delayed: 0, leased: 0, dead: 0 })
    const job = (await claim(b.base, queue, { timeout: 0 })).body.jobs[0]
    t.equal((await extend(a.base, queue, { receipt: job.receipt, lease: 1000 })).status, 200)
    t.equal((await nack(a.base, queue, { receipt: job.receipt })).status, 200)
    const again = (await claim(a.base, queue, { timeout: 0 })).body.jobs[0]
    t.same((await ack(b.base, queue, { receipt: again.receipt })).body, { acked: 1 })
    t.equal((await enqueue(a.base, `q.${'x'.repeat(199)}`, 1)).status, 400, '201 characters: 400')
  })

  t.test(`${name}: a channel and a queue of the same name are independent`, async (t) => {
    const [a, b] = await deploy(t)
    const name = unique('both')
    const held = claim(b.base, name, { timeout: 10_000 })
    await until(() => heldClaims(b) === 1, 10_000, 'a held claim')
    // A poll on the channel of that name comes and goes: its unsubscribe must not drop the queue's subscription.
    const poll = await fetch(`${b.base}/poll?channel=${name}&timeout=50`).then(async (r) => await r.json())
    t.equal(poll.status, 'timeout')
    const pushed = await fetch(`${a.base}/push`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ channel: name, data: 'for the channel' }) })
    t.equal(pushed.status, 200)
    t.same((await counts(a.base, name)).body, { waiting: 0, delayed: 0, leased: 0, dead: 0 }, 'a push is no job')
    await enqueue(a.base, name, 'for the queue')
    const answer = await held
    t.same(answer.body.jobs.map((job: any) => job.data), ['for the queue'])
    const read = await fetch(`${a.base}/poll?channel=${name}&timeout=0`).then(async (r) => await r.json())
    t.same(read.messages.map((m: any) => m.data), ['for the channel'], 'a job is no message')
  })

  t.test(`${name}: 1,000 jobs over 20 competing claim loops on two instances: each claimed once per lease, acked once, none lost`, async (t) => {
    const [a, b] = await deploy(t)
    const queue = unique('many')
    const total = 1_000
    const claimedBy = new Map<string, number>()
    const acked = new Set<string>()
    let duplicates = 0
    let failures = 0
    let done = false
    const loop = async (base: string, worker: number): Promise<void> => {
      while (!done) {
        const res = await claim(base, queue, { timeout: 2_000, limit: 1 + (worker % 3), lease: 60_000 })
        if (res.status !== 200) { failures++; continue }
        if (res.body.jobs.length === 0) continue
        for (const job of res.body.jobs) {
          if (claimedBy.has(job.id)) duplicates++
          claimedBy.set(job.id, worker)
        }
        const settled = await ack(base, queue, { receipts: res.body.jobs.map((job: any) => job.receipt) })
        if (settled.status !== 200) { failures++; continue }
        for (const job of res.body.jobs) acked.add(job.id)
        if (acked.size >= total) done = true
      }
    }
    const loops = Array.from({ length: 20 }, (_, i) => loop(i % 2 === 0 ? a.base : b.base, i))
    // Claims waiting when the jobs arrive, so that they compete. Each loop re-claims every 2 s, and on a loaded
    // machine some loop is nearly always between two claims: most held is what this needs, not all at one instant.
    await until(() => heldClaims(a) + heldClaims(b) >= 15, 30_000, 'most of the 20 claims held')
    const ids = new Set<string>()
    // Enqueued from both instances, in parallel batches, while the claims are held.
    for (let i = 0; i < total; i += 50) {
      const batch = await Promise.all(Array.from({ length: 50 }, (_, j) => enqueue((i + j) % 2 === 0 ? a.base : b.base, queue, { n: i + j })))
      for (const res of batch) {
        t.equal(res.status, 201)
        ids.add(res.body.id)
      }
    }
    t.equal(ids.size, total, 'distinct ids')
    await until(() => acked.size >= total, 60_000, `all jobs acked (have ${acked.size})`)
    done = true
    await Promise.all(loops)
    t.equal(duplicates, 0, 'no job claimed twice')
    t.equal(failures, 0, 'no claim or ack failed')
    t.same([...acked].sort(), [...ids].sort(), 'every job acked, once')
    t.ok(new Set(claimedBy.values()).size > 1, 'the jobs were spread over several workers')
    t.same((await counts(a.base, queue)).body, { waiting: 0, delayed: 0, leased: 0, dead: 0 })
  })
}

export function heldClaims (served: Served): number {
  return served.app.longpoll.stats().heldClaims
}
