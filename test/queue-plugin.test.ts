// The queue routes inside the plugin: options, authorize, `routes: { queues: false }`, held claims sharing
// maxHeldPolls with polls, clients going away, and close.
import t from 'tap'
import Fastify from 'fastify'
import { makeApp, serve, until } from './helpers/app.js'
import { heldClaims } from './helpers/queue-suite.js'
import { ack, claim, counts, enqueue, extend, nack } from './helpers/queue.js'
import longpoll, { MemoryQueueStore, type AuthorizeContext, type LongPollOptions } from '../lib/index.js'
import { Registry } from 'prom-client'

t.test('queue options are validated at register, naming the option', async (t) => {
  const cases: Array<[string, Record<string, unknown>]> = [
    ['lease', { lease: 0 }],
    ['lease', { lease: 1.5 }],
    ['lease', { lease: 700_000 }], // over the default maxLease
    ['maxLease', { maxLease: 0 }],
    ['maxLease', { maxLease: 2 ** 31 }],
    ['maxAttempts', { maxAttempts: 0 }],
    ['maxAttempts', { maxAttempts: '5' }],
    ['idempotencyTtl', { idempotencyTtl: 0 }],
    ['queueStore', { queueStore: {} }],
    ['queueStore', { queueStore: new Map() }],
    ['routes', { routes: 'queues' }],
    ['routes', { routes: null }],
    ['routes.queues', { routes: { queues: 'no' } }],
    ['routes.jobs', { routes: { jobs: false } }]
  ]
  for (const [name, options] of cases) {
    const app = Fastify()
    await t.rejects((async () => { await app.register(longpoll, options as LongPollOptions); await app.ready() })(), { code: 'FST_LONGPOLL_INVALID_OPTION', message: new RegExp(`"${name.replace('.', '\\.')}"`) }, `${JSON.stringify(options)} names ${name}`)
    await app.close()
  }
  const ok = await makeApp(t, { lease: 1_000, maxLease: 2_000, maxAttempts: 1, queueStore: new MemoryQueueStore(), routes: {} })
  t.ok(ok.longpoll.queue('fine'))
})

t.test('routes: { queues: false } registers no queue route; the decorator still works; other routes stay on', async (t) => {
  const app = await makeApp(t, { routes: { queues: false } })
  for (const [method, url] of [['POST', '/lp/queues/q/jobs'], ['POST', '/lp/queues/q/claim'], ['POST', '/lp/queues/q/ack'], ['POST', '/lp/queues/q/nack'], ['POST', '/lp/queues/q/extend'], ['GET', '/lp/queues/q']] as const) {
    t.equal((await app.inject({ method, url, payload: method === 'POST' ? {} : undefined })).statusCode, 404, `${method} ${url}`)
  }
  t.equal((await app.inject({ method: 'GET', url: '/lp/poll?channel=a&timeout=0' })).statusCode, 200, 'a partial routes object keeps the poll route')
  await app.longpoll.queue('q').enqueue(1)
  t.same(await app.longpoll.queue('q').stats(), { waiting: 1, delayed: 0, leased: 0, dead: 0 })
})

t.test('unknown actions under /queues/ are 404; a 200-character name is not cut by maxParamLength', async (t) => {
  const { base } = await serve(t)
  t.equal((await fetch(`${base}/queues/q/other`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })).status, 404)
  t.equal((await fetch(`${base}/queues/q/jobs`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: '{}' })).status, 404)
  t.equal((await counts(base, 'x'.repeat(200))).status, 200)
  t.equal((await counts(base, 'x'.repeat(201))).body.code, 'FST_LONGPOLL_BAD_QUEUE')
})

t.test('authorize sees enqueue, claim (also for counts) and settle, with the queue', async (t) => {
  const calls: AuthorizeContext[] = []
  const { base } = await serve(t, { authorize: (request, context) => { calls.push(context); return true } })
  await enqueue(base, 'work', 1)
  const job = (await claim(base, 'work', { timeout: 0 })).body.jobs[0]
  await extend(base, 'work', { receipt: job.receipt, lease: 1000 })
  await nack(base, 'work', { receipt: job.receipt })
  const again = (await claim(base, 'work', { timeout: 0 })).body.jobs[0]
  await ack(base, 'work', { receipt: again.receipt })
  await counts(base, 'work')
  t.same(calls.map((call) => [call.action, call.queue, call.channel]), [
    ['enqueue', 'work', 'work'], ['claim', 'work', 'work'], ['settle', 'work', 'work'], ['settle', 'work', 'work'],
    ['claim', 'work', 'work'], ['settle', 'work', 'work'], ['claim', 'work', 'work']
  ])
})

for (const kind of ['sync', 'async']) {
  t.test(`a ${kind} denial answers 403 on every queue route, holds nothing and changes nothing`, async (t) => {
    let allow = true
    const { app, base } = await serve(t, { authorize: kind === 'sync' ? () => allow : async () => allow })
    await enqueue(base, 'q', 'kept')
    const job = (await claim(base, 'q', { timeout: 0 })).body.jobs[0]
    allow = false
    const answers = [
      await enqueue(base, 'q', 'denied'),
      await claim(base, 'q', { timeout: 5_000 }),
      await ack(base, 'q', { receipt: job.receipt }),
      await nack(base, 'q', { receipt: job.receipt }),
      await extend(base, 'q', { receipt: job.receipt, lease: 100 }),
      await counts(base, 'q')
    ]
    t.same(answers.map((answer) => [answer.status, answer.body.code]), answers.map(() => [403, 'FST_LONGPOLL_FORBIDDEN']))
    t.equal(heldClaims({ app, base }), 0)
    t.same(await app.longpoll.queue('q').stats(), { waiting: 0, delayed: 0, leased: 1, dead: 0 }, 'nothing stored, nothing settled')
  })
}

t.test('queue routes without authorize are named in the one startup warning', async (t) => {
  const warnings = async (options: LongPollOptions): Promise<string[]> => {
    const lines: string[] = []
    const app = Fastify({ logger: { level: 'warn', stream: { write: (line: string) => { lines.push(line) } } } })
    t.teardown(() => app.close())
    await app.register(longpoll, options)
    await app.ready()
    return lines.filter((line) => line.includes('fastify-longpoll'))
  }
  const open = await warnings({})
  t.equal(open.length, 1, 'one warning')
  t.match(open[0], /\/queues\/\*/, 'naming the queue routes')
  t.match(open[0], /take jobs/)
  t.same(await warnings({ authorize: () => true }), [], 'none with authorize')
  const queuesOff = await warnings({ routes: { queues: false } })
  t.notMatch(queuesOff.join(''), /\/queues/, 'queues off: not named')
})

t.test('held claims and held polls share maxHeldPolls: past it, 503 with Retry-After', async (t) => {
  const { app, base } = await serve(t, { maxHeldPolls: 2, retryAfter: 3 })
  const held = claim(base, 'q', { timeout: 10_000 })
  const poll = fetch(`${base}/poll?channel=c&timeout=10000`)
  await until(() => heldClaims({ app, base }) === 1 && app.longpoll.stats().heldPolls === 1, 10_000, 'a claim and a poll held')
  const refused = await claim(base, 'q', { timeout: 10_000 })
  t.equal(refused.status, 503)
  t.equal(refused.body.code, 'FST_LONGPOLL_TOO_MANY_POLLS')
  t.equal(refused.headers.get('retry-after'), '3')
  const refusedPoll = await fetch(`${base}/poll?channel=d&timeout=10000`)
  t.equal(refusedPoll.status, 503, 'a poll is refused too: the claim counts')
  t.equal((await claim(base, 'q', { timeout: 0 })).status, 200, 'a short claim still answers')
  await enqueue(base, 'q', 1)
  t.equal((await held).body.jobs.length, 1)
  await fetch(`${base}/push`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ channel: 'c', data: 1 }) })
  t.equal((await poll).status, 200)
})

t.test('a worker that goes away releases its claim; a job enqueued later goes to a claim still there', async (t) => {
  const { app, base } = await serve(t)
  const controller = new AbortController()
  const gone = claim(base, 'q', { timeout: 30_000 }, { signal: controller.signal }).catch((err: Error) => err)
  const stays = claim(base, 'q', { timeout: 30_000 })
  await until(() => heldClaims({ app, base }) === 2, 10_000, 'two held claims')
  controller.abort()
  await gone
  await until(() => heldClaims({ app, base }) === 1, 10_000, 'the aborted claim released')
  const { body: { id } } = await enqueue(base, 'q', 'for the one still waiting')
  t.equal((await stays).body.jobs[0].id, id)
  t.same(await app.longpoll.queue('q').stats(), { waiting: 0, delayed: 0, leased: 1, dead: 0 }, 'leased once, to the claim that answered')
})

t.test('app.close() answers every held claim 503 with Retry-After; a claim arriving after answers 503', async (t) => {
  const app = Fastify({ forceCloseConnections: true })
  await app.register(longpoll, { prefix: '/lp' })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}/lp`
  const held = Array.from({ length: 5 }, (_, i) => claim(base, `q${i % 2}`, { timeout: 60_000 }))
  await until(() => heldClaims({ app, base }) === 5, 10_000, 'five held claims')
  const started = Date.now()
  await app.close()
  const answers = await Promise.all(held)
  t.same(answers.map((answer) => [answer.status, answer.body.code, answer.headers.get('retry-after')]), answers.map(() => [503, 'FST_LONGPOLL_CLOSING', '1']))
  t.ok(Date.now() - started < 5_000, 'at once, not at their timeout')
  t.equal(heldClaims({ app, base }), 0)
})

t.test('a server-wide handlerTimeout shorter than a held claim does not cut it', async (t) => {
  const app = Fastify({ handlerTimeout: 200 } as Record<string, unknown>)
  t.teardown(() => app.close())
  await app.register(longpoll, { prefix: '/lp' })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}/lp`
  const answer = await claim(base, 'q', { timeout: 500 })
  t.equal(answer.status, 200)
  t.same(answer.body, { status: 'timeout', jobs: [] })
})

t.test('the decorator and the route share one path: a key enqueued by one is a duplicate for the other', async (t) => {
  const { app, base } = await serve(t)
  const first = await app.longpoll.queue('q').enqueue({ via: 'server' }, { key: 'k' })
  const second = await enqueue(base, 'q', { via: 'http' }, { key: 'k' })
  t.same(second.body, { id: first.id, duplicate: true })
})

t.test('an instance holding claims keeps one timer per queue for due times, not one per delayed job', async (t) => {
  const { app, base } = await serve(t)
  const timers = (): number => process.getActiveResourcesInfo().filter((name) => name === 'Timeout').length
  const held = Array.from({ length: 10 }, () => claim(base, 'timers', { timeout: 30_000 }))
  await until(() => heldClaims({ app, base }) === 10, 10_000, 'ten held claims')
  await claim(base, 'timers', { timeout: 0 }) // the held claims' first store claims are done
  const before = timers()
  const queue = app.longpoll.queue('timers')
  for (let i = 0; i < 100; i++) await queue.enqueue(i, { delay: 10_000 + i * 100 })
  await new Promise((resolve) => setImmediate(resolve))
  const after = timers()
  t.ok(after - before <= 1, `100 delayed jobs added ${after - before} timers (at most the queue's one due timer)`)
  await queue.enqueue('now')
  t.equal((await Promise.race(held)).body.jobs[0].data, 'now')
})

t.test('maxHeldPollsPerClient counts a client\'s claims with its polls: past it, 429 with Retry-After', async (t) => {
  const { app, base } = await serve(t, { maxHeldPollsPerClient: 2, retryAfter: 2 })
  const held = claim(base, 'per-client', { timeout: 10_000 })
  const poll = fetch(`${base}/poll?channel=per-client&timeout=10000`)
  await until(() => heldClaims({ app, base }) === 1 && app.longpoll.stats().heldPolls === 1, 10_000, 'a claim and a poll held')
  const refused = await claim(base, 'per-client', { timeout: 10_000 })
  t.equal(refused.status, 429)
  t.equal(refused.body.code, 'FST_LONGPOLL_TOO_MANY_CLIENT_POLLS')
  t.equal(refused.headers.get('retry-after'), '2')
  await enqueue(base, 'per-client', 1)
  t.equal((await held).status, 200)
  // The answered claim gave its slot back.
  const again = claim(base, 'per-client', { timeout: 10_000 })
  await until(() => heldClaims({ app, base }) === 1, 10_000, 'a new claim held')
  await enqueue(base, 'per-client', 2)
  t.equal((await again).status, 200)
  await fetch(`${base}/push`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ channel: 'per-client', data: 1 }) })
  t.equal((await poll).status, 200)
})

t.test('metrics: longpoll_jobs_total counts enqueued, claimed, acked, nacked, expired and dead', async (t) => {
  const registry = new Registry()
  const { base } = await serve(t, { metrics: { registry }, maxAttempts: 2 })
  await enqueue(base, 'metered', 1)
  await enqueue(base, 'metered', 2)
  const [one, two] = (await claim(base, 'metered', { timeout: 0, limit: 2, lease: 100 })).body.jobs
  await ack(base, 'metered', { receipt: one.receipt })
  await nack(base, 'metered', { receipt: two.receipt })
  await claim(base, 'metered', { timeout: 0, lease: 100 }) // attempt 2 of 2
  await new Promise((resolve) => setTimeout(resolve, 200))
  await claim(base, 'metered', { timeout: 0 }) // takes the passed lease back: dead
  const values = Object.fromEntries(((await registry.getSingleMetric('longpoll_jobs_total')?.get())?.values ?? []).map((v) => [v.labels.event, v.value]))
  t.same(values, { enqueued: 2, claimed: 3, acked: 1, nacked: 1, expired: 1, dead: 1 })
})
