// LongPollWorker in Node against a real server with the queue routes (memory queue store): acks, nacks,
// concurrency, lease extension, lease loss, stop(), backoff with Retry-After, refusals.
import t from 'tap'
import { LongPollClientError, LongPollWorker, type LongPollJob, type LongPollWorkerOperation } from '../lib/client/index.js'
import { serve, until } from './helpers/app.js'
import { gate, recorder } from './helpers/worker.js'

t.test('it acks what the handler resolves: every job once, then the queue is empty', async (t) => {
  const { app, base } = await serve(t)
  const queue = app.longpoll.queue('emails')
  for (let i = 0; i < 5; i++) await queue.enqueue({ to: `user-${i}` })
  const seen: Array<{ to: string, attempt: number }> = []
  const requests = recorder()
  const worker = new LongPollWorker<{ to: string }>({
    url: base,
    queue: 'emails',
    fetch: requests.fetch,
    handler: (job) => { seen.push({ to: job.data.to, attempt: job.attempt }) }
  })
  t.teardown(() => worker.stop())
  const running = worker.start()
  t.equal(worker.start(), running, 'start() again returns the same promise')
  await requests.waitForAcked(5)
  t.same(seen.map((s) => s.to).sort(), ['user-0', 'user-1', 'user-2', 'user-3', 'user-4'], 'each job handled once')
  t.ok(seen.every((s) => s.attempt === 1), 'first attempts')
  t.ok(requests.answered('ack').every((s) => s.status === 200 && s.answer.acked === 1), 'each ack answered { acked: 1 }')
  t.same(await queue.stats(), { waiting: 0, delayed: 0, leased: 0, dead: 0 }, 'nothing left')
  await worker.stop()
  await running
  t.ok(worker.stopped)
})

t.test('concurrency is honoured: never more jobs in hand than slots, claims ask for the free slots only', async (t) => {
  const { app, base } = await serve(t)
  const queue = app.longpoll.queue('work')
  for (let i = 0; i < 10; i++) await queue.enqueue(i)
  const requests = recorder()
  let running = 0
  let most = 0
  const gates: Array<() => void> = []
  const done: number[] = []
  const worker = new LongPollWorker<number>({
    url: base,
    queue: 'work',
    concurrency: 3,
    fetch: requests.fetch,
    async handler (job) {
      running++
      most = Math.max(most, running)
      const g = gate()
      gates.push(g.open)
      await g.promise
      running--
      done.push(job.data)
    }
  })
  t.teardown(() => worker.stop())
  void worker.start()
  await until(() => running === 3, 10_000, 'three jobs running')
  t.equal(worker.active, 3)
  t.equal((await queue.stats()).leased, 3, 'three leased on the server')
  t.equal(requests.sent.filter((s) => s.operation === 'claim').length, requests.answered('claim').length, 'no claim in flight while every slot is busy')
  // Release the jobs one at a time until all ten are done.
  while (done.length < 10) {
    await until(() => gates.length > 0, 10_000, 'a job waiting on its gate')
    gates.shift()?.()
    await until(() => gates.length > 0 || done.length === 10, 10_000, 'the next job')
  }
  t.equal(most, 3, 'at most three at once')
  t.same(done.sort((a, b) => a - b), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], 'every job once')
  for (const claim of requests.sent.filter((s) => s.operation === 'claim')) {
    t.ok(claim.body.limit >= 1 && claim.body.limit <= 3, `claim limit ${claim.body.limit} within the slots`)
  }
  await requests.waitForAcked(10)
  t.equal(requests.acked(), 10, 'ten jobs acked')
  t.same(await queue.stats(), { waiting: 0, delayed: 0, leased: 0, dead: 0 })
})

t.test('jobs that finish together are acked together, in one request', async (t) => {
  const { app, base } = await serve(t)
  const queue = app.longpoll.queue('batch')
  for (let i = 0; i < 8; i++) await queue.enqueue(i)
  const requests = recorder()
  const release = gate()
  let started = 0
  const worker = new LongPollWorker({
    url: base,
    queue: 'batch',
    concurrency: 8,
    fetch: requests.fetch,
    async handler () {
      started++
      await release.promise
    }
  })
  t.teardown(() => worker.stop())
  void worker.start()
  await until(() => started === 8, 10_000, 'eight jobs running')
  release.open() // all eight finish in one turn
  await requests.waitForAcked(8)
  t.same(requests.answered('ack').map((s) => [s.status, s.body.receipts?.length, s.answer.acked]), [[200, 8, 8]], 'one ack for the eight')
  t.same(await queue.stats(), { waiting: 0, delayed: 0, leased: 0, dead: 0 })
})

t.test('a batch with one stale receipt: every job is acked on its own, the stale one reported', async (t) => {
  const { app, base } = await serve(t)
  const queue = app.longpoll.queue('mixed')
  // The extends of job "slow" are held back until a rival has taken it over, so its receipt goes stale while the
  // worker does not know it.
  const receipts = new Map<string, string>()
  const takenOver = gate()
  const requests = recorder((operation, body) => (operation === 'extend' && body.receipt === receipts.get('slow') ? takenOver.promise : undefined))
  const errors: Array<{ operation: LongPollWorkerOperation, data?: unknown, code?: string }> = []
  const release = gate()
  const worker = new LongPollWorker<string>({
    url: base,
    queue: 'mixed',
    concurrency: 3,
    lease: 500,
    fetch: requests.fetch,
    async handler (job) {
      receipts.set(job.data, job.receipt)
      await release.promise
    },
    onError: (error, { operation, job }) => { errors.push({ operation, data: job?.data, code: (error as LongPollClientError).code }) }
  })
  t.teardown(() => worker.stop())
  for (const data of ['slow', 'a', 'b']) await queue.enqueue(data)
  void worker.start()
  await until(() => receipts.size === 3, 10_000, 'three jobs running')
  const rival = await (await fetch(`${base}/queues/mixed/claim`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ timeout: 10_000 })
  })).json() as { jobs: Array<{ data: string, receipt: string }> }
  t.match(rival.jobs, [{ data: 'slow', attempt: 2 }], 'the rival took "slow" over; "a" and "b" kept their leases')
  release.open() // the three finish in one turn: one batch
  await requests.waitForAcked(2)
  await until(() => errors.some((e) => e.operation === 'ack'), 10_000, 'the stale ack reported')
  const acks = requests.answered('ack')
  t.same(acks.map((s) => [s.status, s.body.receipts?.length ?? 1]).sort(), [[200, 1], [200, 1], [409, 1], [409, 3]], 'the batch refused as a whole, then each job acked on its own')
  t.same(errors.filter((e) => e.operation === 'ack'), [{ operation: 'ack', data: 'slow', code: 'FST_LONGPOLL_LEASE_LOST' }], 'only the stale one reported')
  takenOver.open()
  const ack = await fetch(`${base}/queues/mixed/ack`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ receipt: rival.jobs[0]?.receipt }) })
  t.equal(ack.status, 200, 'the rival\'s lease holds')
  t.same(await queue.stats(), { waiting: 0, delayed: 0, leased: 0, dead: 0 })
})

t.test('a long job keeps its lease: extended at half of it, never handed to another claim, then acked', async (t) => {
  const { app, base } = await serve(t)
  const queue = app.longpoll.queue('long')
  const requests = recorder()
  const release = gate()
  let calls = 0
  const worker = new LongPollWorker({
    url: base,
    queue: 'long',
    lease: 1000, // half a lease (500 ms) for each extend to be answered: room for a loaded machine
    fetch: requests.fetch,
    async handler () {
      calls++
      await release.promise
    }
  })
  t.teardown(() => worker.stop())
  void worker.start()
  await queue.enqueue('report')
  // Another worker waits on the same queue all along: it must not get the job while the lease is extended.
  const rival = fetch(`${base}/queues/long/claim`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ timeout: 4000 })
  }).then((response) => response.json())
  const extends_ = await requests.waitFor('extend', 4)
  release.open()
  await requests.waitFor('ack', 1)
  t.ok(extends_.every((s) => s.status === 200 && s.body.lease === 1000), 'each extend asked for the lease again and was granted')
  const leaseUntil = extends_.map((s) => s.answer.leaseUntil as number)
  t.ok(leaseUntil.every((v, i) => i === 0 || v > (leaseUntil[i - 1] as number)), 'each extend moved leaseUntil on')
  t.equal(calls, 1, 'the handler ran once')
  t.equal(requests.answered('ack')[0]?.status, 200, 'the ack after four extends (> 4 × half a lease) was accepted')
  t.same(await rival, { status: 'timeout', jobs: [] }, 'the rival claim got nothing')
})

t.test('it nacks what the handler throws, with the message, and reports it; retryDelay sets the nack delay', async (t) => {
  const { app, base } = await serve(t, { maxAttempts: 2 })
  const queue = app.longpoll.queue('flaky')
  const requests = recorder()
  const errors: Array<{ operation: LongPollWorkerOperation, attempt?: number, message: string }> = []
  const attempts: number[] = []
  const worker = new LongPollWorker({
    url: base,
    queue: 'flaky',
    fetch: requests.fetch,
    retryDelay: (job) => (job.attempt === 1 ? 50 : 0),
    handler (job) {
      attempts.push(job.attempt)
      throw new Error(`boom on attempt ${job.attempt}`)
    },
    onError: (error, { operation, job }) => { errors.push({ operation, attempt: job?.attempt, message: (error as Error).message }) }
  })
  t.teardown(() => worker.stop())
  void worker.start()
  await queue.enqueue({ n: 1 })
  const nacks = await requests.waitFor('nack', 2)
  await worker.stop()
  t.same(attempts, [1, 2], 'tried again after the nack')
  t.same(nacks.map((s) => s.body), [
    { receipt: nacks[0]?.body.receipt, error: 'boom on attempt 1', delay: 50 },
    { receipt: nacks[1]?.body.receipt, error: 'boom on attempt 2' }
  ], 'each nack carries the error message (and the retry delay)')
  t.same(nacks.map((s) => s.status), [200, 200])
  t.same(errors, [
    { operation: 'handler', attempt: 1, message: 'boom on attempt 1' },
    { operation: 'handler', attempt: 2, message: 'boom on attempt 2' }
  ], 'onError heard each failure')
  const dead = await queue.dead()
  t.equal(dead.length, 1, 'dead after maxAttempts')
  t.match(dead[0], { data: { n: 1 }, error: 'boom on attempt 2' }, 'the dead letter keeps the last message')
})

t.test('stop(): no new claim, the held claim aborted, resolves once the job in hand is acked', async (t) => {
  const { app, base } = await serve(t)
  const queue = app.longpoll.queue('stopping')
  const requests = recorder()
  const release = gate()
  const worker = new LongPollWorker({
    url: base,
    queue: 'stopping',
    concurrency: 2,
    fetch: requests.fetch,
    handler: () => release.promise
  })
  const running = worker.start()
  await queue.enqueue('in hand')
  await until(() => worker.active === 1 && app.longpoll.stats().heldClaims === 1, 10_000, 'one job in hand and a claim held for the other slot')
  let stopped = false
  const stopping = worker.stop().then(() => { stopped = true })
  await until(() => app.longpoll.stats().heldClaims === 0, 10_000, 'the held claim released')
  await queue.enqueue('after stop')
  t.notOk(stopped, 'stop() waits for the job in hand')
  t.equal(requests.answered('ack').length, 0)
  release.open()
  await stopping
  await running
  t.equal(requests.answered('ack').length, 1, 'the job in hand was acked before stop() resolved')
  t.equal(requests.answered('ack')[0]?.status, 200)
  t.same(await queue.stats(), { waiting: 1, delayed: 0, leased: 0, dead: 0 }, 'the job enqueued after stop() was not claimed')
  t.equal(worker.active, 0)
  await t.rejects(worker.start(), /cannot be restarted/)
})

t.test('any queue name channelPattern allows reaches its queue (encoded in the path)', async (t) => {
  const { app, base } = await serve(t)
  const name = `mail:eu@1.${'x'.repeat(150)}` // longer than Fastify's default maxParamLength (100)
  const queue = app.longpoll.queue(name)
  await queue.enqueue('hello')
  const requests = recorder()
  const seen: unknown[] = []
  const worker = new LongPollWorker({ url: base, queue: name, fetch: requests.fetch, handler: (job) => { seen.push(job.data) } })
  t.teardown(() => worker.stop())
  void worker.start()
  await requests.waitForAcked(1)
  t.same(seen, ['hello'])
  t.same(await queue.stats(), { waiting: 0, delayed: 0, leased: 0, dead: 0 })
})

t.test('stop() before start() resolves at once', async (t) => {
  const worker = new LongPollWorker({ url: 'http://127.0.0.1:1', queue: 'q', handler: () => {} })
  await worker.stop()
  t.ok(worker.stopped)
})

t.test('503 with Retry-After: it waits at least that long between claims, then takes the job', async (t) => {
  const { app, base } = await serve(t, { maxHeldPolls: 0, retryAfter: 1 })
  const requests = recorder()
  const errors: unknown[] = []
  const handled = gate()
  const worker = new LongPollWorker({
    url: base,
    queue: 'busy',
    minDelay: 10,
    timeout: 0, // a claim that does not hold is not refused by maxHeldPolls: the worker gets the job once let through
    fetch: requests.fetch,
    handler: () => handled.open(),
    onError: (error) => { errors.push(error) }
  })
  t.teardown(() => worker.stop())
  // While maxHeldPolls is 0, a held claim is refused; the worker backs off for Retry-After each time.
  const refusing = new LongPollWorker({
    url: base,
    queue: 'busy',
    minDelay: 10,
    fetch: requests.fetch,
    handler: () => { t.fail('no job expected') },
    onError: (error) => { errors.push(error) }
  })
  t.teardown(() => refusing.stop())
  const started = Date.now()
  void refusing.start()
  await requests.waitFor('claim', 3)
  await until(() => errors.length >= 3, 10_000, 'the third refusal reported')
  const elapsed = Date.now() - started
  await refusing.stop()
  const claims = requests.answered('claim')
  t.ok(claims.every((s) => s.status === 503), 'refused with 503')
  t.ok(elapsed >= 2000, `three claims took at least two Retry-After delays of 1 s (took ${elapsed} ms)`)
  t.ok(errors.length >= 3 && errors.every((e) => e instanceof LongPollClientError && e.status === 503 && e.code === 'FST_LONGPOLL_TOO_MANY_POLLS'), 'each refusal reported')
  // A worker whose claims do not hold is let through and takes the job.
  await app.longpoll.queue('busy').enqueue('x')
  void worker.start()
  await handled.promise
  t.pass('the job was taken')
})

t.test('429 past maxHeldPollsPerClient: a second worker of the same client waits its turn, then takes the job', async (t) => {
  const { app, base } = await serve(t, { maxHeldPollsPerClient: 1, retryAfter: 1 })
  const refusals: Array<{ error: unknown, at: number }> = []
  const first = new LongPollWorker({ url: base, queue: 'shared', handler: () => { t.fail('the first worker gets no job') } })
  t.teardown(() => first.stop())
  void first.start()
  await until(() => app.longpoll.stats().heldClaims === 1, 10_000, 'the first worker\'s claim held')
  const handled = gate()
  const second = new LongPollWorker({
    url: base,
    queue: 'shared',
    minDelay: 10,
    handler: () => handled.open(),
    onError: (error) => { refusals.push({ error, at: Date.now() }) }
  })
  t.teardown(() => second.stop())
  void second.start()
  await until(() => refusals.length >= 2, 10_000, 'the second worker refused twice')
  t.ok(refusals.every(({ error: e }) => e instanceof LongPollClientError && e.status === 429 && e.code === 'FST_LONGPOLL_TOO_MANY_CLIENT_POLLS'), 'refused with 429')
  const gap = (refusals[1]?.at as number) - (refusals[0]?.at as number)
  t.ok(gap >= 1000, `it waited Retry-After (1 s) before trying again, not minDelay (${gap} ms)`)
  await first.stop() // its slot is given back
  // Once the server has seen the first claim end: a job enqueued before that may be handed to the ended claim,
  // and then reaches the second worker only when its lease expires (correct, but 30 s later).
  await until(() => app.longpoll.stats().heldClaims === 0, 10_000, 'the first worker\'s claim ended')
  await app.longpoll.queue('shared').enqueue('x')
  await handled.promise
  t.pass('the second worker took the job once the first had gone')
})

t.test('network errors: exponential backoff with jitter, growing to maxDelay, and no job lost', async (t) => {
  const times: number[] = []
  const worker = new LongPollWorker({
    url: 'http://127.0.0.1:1', // nothing listens on port 1
    queue: 'q',
    minDelay: 20,
    maxDelay: 80,
    handler: () => {},
    onError: (error, { operation }) => {
      t.equal(operation, 'claim')
      t.type(error, TypeError)
      times.push(Date.now())
      if (times.length === 6) void worker.stop()
    }
  })
  await worker.start()
  const gaps = times.slice(1).map((time, i) => time - (times[i] as number))
  // Equal jitter: the wait after failure k is in [ceiling/2, ceiling], ceiling = min(80, 20 × 2^k).
  t.ok((gaps[0] as number) >= 10, `first wait ≥ 10 ms (${gaps[0]})`)
  t.ok(gaps.slice(2).every((gap) => gap >= 40), `later waits ≥ maxDelay/2 (${gaps.join(', ')})`)
})

t.test('a lease lost during the job is reported, its handler told, nothing acked, and the worker goes on', async (t) => {
  const { app, base } = await serve(t)
  const queue = app.longpoll.queue('slow-net')
  // The worker's first extend is held back on the network path until another claim has taken the job.
  let heldBack = false
  const takenOver = gate()
  const requests = recorder((operation) => {
    if (operation !== 'extend' || heldBack) return undefined
    heldBack = true
    return takenOver.promise
  })
  const errors: Array<{ operation: LongPollWorkerOperation, error: unknown }> = []
  const jobs: Array<LongPollJob<string>> = []
  let lostSignal: AbortSignal | undefined
  const worker = new LongPollWorker<string>({
    url: base,
    queue: 'slow-net',
    lease: 300,
    fetch: requests.fetch,
    async handler (job, { signal }) {
      jobs.push(job)
      if (job.data === 'fragile') {
        lostSignal = signal
        await new Promise((resolve) => signal.addEventListener('abort', resolve))
      }
    },
    onError: (error, { operation }) => { errors.push({ operation, error }) }
  })
  t.teardown(() => worker.stop())
  void worker.start()
  await queue.enqueue('fragile')
  await requests.waitFor('claim', 1)
  // A rival claim, held, gets the job once its lease passes.
  const rival = await (await fetch(`${base}/queues/slow-net/claim`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ timeout: 10_000 })
  })).json() as { jobs: Array<LongPollJob<string>> }
  t.match(rival.jobs, [{ data: 'fragile', attempt: 2 }], 'the rival took the job over after the lease')
  takenOver.open()
  await until(() => lostSignal?.aborted === true, 10_000, 'the handler told')
  const lost = errors.find((e) => e.operation === 'extend')
  t.ok(lost !== undefined && lost.error instanceof LongPollClientError && lost.error.status === 409 && lost.error.code === 'FST_LONGPOLL_LEASE_LOST', 'the 409 LEASE_LOST reported as an extend error')
  // The worker goes on: it takes and acks the next job.
  await queue.enqueue('next')
  const acks = await requests.waitFor('ack', 1)
  t.same(jobs.map((job) => job.data), ['fragile', 'next'])
  t.equal(acks[0]?.body.receipt, jobs[1]?.receipt, 'the one ack is for the next job')
  t.equal(requests.sent.filter((s) => s.body?.receipt === jobs[0]?.receipt && s.operation !== 'extend').length, 0, 'the lost lease was neither acked nor nacked')
  const ack = await fetch(`${base}/queues/slow-net/ack`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ receipt: rival.jobs[0]?.receipt }) })
  t.equal(ack.status, 200, 'the rival\'s lease is the one that holds')
  t.same(await queue.stats(), { waiting: 0, delayed: 0, leased: 0, dead: 0 })
})

t.test('a refusal that retrying cannot cure (403) rejects start() after the jobs in hand are settled', async (t) => {
  const { base } = await serve(t, { authorize: (_request, { action }) => action !== 'claim' })
  const errors: unknown[] = []
  const worker = new LongPollWorker({ url: base, queue: 'private', handler: () => {}, onError: (error) => { errors.push(error) } })
  await t.rejects(worker.start(), { name: 'LongPollClientError', status: 403, code: 'FST_LONGPOLL_FORBIDDEN' })
  t.ok(worker.stopped)
  t.equal(errors.length, 1, 'reported once')
})

t.test('options are checked', async (t) => {
  const handler = (): void => {}
  t.throws(() => new LongPollWorker(null as never), TypeError)
  t.throws(() => new LongPollWorker({ url: 1 as never, queue: 'q', handler }), /url/)
  t.throws(() => new LongPollWorker({ url: 'http://x', queue: '', handler }), /queue/)
  t.throws(() => new LongPollWorker({ url: 'http://x', queue: 'q', handler: 1 as never }), /handler/)
  t.throws(() => new LongPollWorker({ url: 'http://x', queue: 'q', handler, concurrency: 0 }), /concurrency/)
  t.throws(() => new LongPollWorker({ url: 'http://x', queue: 'q', handler, lease: 1.5 }), /lease/)
})
