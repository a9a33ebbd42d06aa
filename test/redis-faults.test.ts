// Redis failing under a running deployment: killed and restarted while polls are held, down while clients push,
// and the plugin's shutdown. All against a real redis-server this test kills (SIGKILL) and starts again.
import t, { type Test } from 'tap'
import { Redis } from 'ioredis'
import Fastify from 'fastify'
import { heldPolls, poll, push, serve, until } from './helpers/app.js'
import { redisApp, runPrefix, startRedis, type RedisApp } from './helpers/redis.js'
import longpoll, { MemoryStore, RedisNotifier, RedisStore } from '../lib/index.js'

/** Pushes until the store answers again after an outage; every answer before that must be a 503. */
async function pushWhenBack (t: Test, app: RedisApp, channel: string, data: unknown): Promise<string> {
  const deadline = Date.now() + 20_000
  for (;;) {
    const res = await push(app.base, channel, data)
    if (res.status === 200) return res.body.id
    t.equal(res.status, 503, 'while the store is not back, a push answers 503')
    if (Date.now() > deadline) throw new Error('the store did not come back')
    await new Promise((resolve) => setTimeout(resolve, 50)) // retry pacing, as a client would back off
  }
}

/** Connections in pub/sub mode, as Redis itself lists them. */
async function subscribers (observer: Redis): Promise<number> {
  return (await observer.client('LIST') as string).split('\n').filter((line) => /\b(sub|ssub)=[1-9]/.test(line)).length
}

/**
 * A poll counts as held from the moment it is registered, before Redis has processed its channel's SUBSCRIBE,
 * and Redis offers no event for that: ask Redis until it lists a subscriber.
 */
async function untilSubscribed (observer: Redis): Promise<void> {
  const deadline = Date.now() + 10_000
  while (await subscribers(observer) === 0) {
    if (Date.now() > deadline) throw new Error(`Redis never listed a subscriber: ${await observer.client('LIST') as string}`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

t.test('Redis killed and restarted while polls are held: every message pushed afterwards is delivered once', async (t) => {
  const server = await startRedis(t)
  const prefix = runPrefix()
  const a = await redisApp(t, server, prefix)
  const b = await redisApp(t, server, prefix)
  const channels = ['fault.one', 'fault.two', 'fault.three']
  const cursors = new Map<string, string>()
  for (const channel of channels) cursors.set(channel, (await poll(b.base, { channel, timeout: 0 })).body.cursor)

  // Two polls per channel on B, one on A: nine clients in all.
  const clients = channels.flatMap((channel) => [b, b, a].map((instance) => ({ channel, instance, cursor: cursors.get(channel) as string })))
  const first = clients.map(({ channel, instance, cursor }) => poll(instance.base, { channel, cursor, timeout: 60_000 }))
  await heldPolls(b.app, 6)
  await heldPolls(a.app, 3)

  await server.kill()
  await until(() => a.redis.status !== 'ready' && b.redis.status !== 'ready', 10_000, 'the clients to notice the outage')
  t.equal(b.app.longpoll.stats().heldPolls, 6, 'held polls keep waiting through the outage')
  t.equal(a.app.longpoll.stats().heldPolls, 3)

  const started = Date.now()
  const down = await push(a.base, 'fault.one', 'pushed while Redis was down')
  t.equal(down.status, 503, 'a push while Redis is down answers 503')
  t.equal(down.body.code, 'FST_LONGPOLL_STORE_UNAVAILABLE')
  t.ok(Date.now() - started < 1_000, `promptly (${Date.now() - started} ms)`)

  await server.start()
  const perChannel = 10
  const pushed = new Map<string, string[]>(channels.map((channel) => [channel, []]))
  for (let i = 0; i < perChannel; i++) {
    for (const channel of channels) {
      const id = await pushWhenBack(t, i % 2 === 0 ? a : b, channel, { channel, i })
      pushed.get(channel)?.push(id)
    }
  }
  const pushedAt = Date.now()

  // Each client: the answer of its held poll, then polls on with the cursor it was given until it has them all.
  await Promise.all(clients.map(async ({ channel, instance }, n) => {
    const answer = await first[n] as Awaited<ReturnType<typeof poll>>
    t.equal(answer.status, 200)
    t.equal(answer.body.status, 'ok', `client ${n}: its held poll answers with messages`)
    t.notOk(answer.body.gap, `client ${n}: no gap: its channel had no message before the restart, so none was lost, and its cursor is the position before the first message of the life the restart's pushes began`)
    const got = answer.body.messages.map((m: any) => m.id)
    let cursor = answer.body.cursor
    while (got.length < perChannel) {
      const res = await poll(instance.base, { channel, cursor, timeout: 10_000 })
      t.equal(res.body.status, 'ok')
      got.push(...res.body.messages.map((m: any) => m.id))
      cursor = res.body.cursor
    }
    t.same(got, pushed.get(channel), `client ${n}: every message after the restart, in order, once`)
  }))
  t.ok(Date.now() - pushedAt < 15_000, 'held polls answered on the pushes, not at their 60 s timeout')

  const after = await poll(a.base, { channel: 'fault.one', timeout: 0, limit: 100 })
  t.notOk(after.body.messages.some((m: any) => m.data === 'pushed while Redis was down'), 'the 503\'d push was never stored later')

  // The subscriber reports the incident once, not once per poll or per reconnection attempt.
  await until(() => b.notifierLog.some((entry) => entry.level === 'info'), 10_000, 'the recovery log')
  t.equal(b.notifierLog.filter((entry) => entry.level !== 'info').length, 1, `one warning for the outage: ${JSON.stringify(b.notifierLog)}`)
  t.equal(b.notifierLog.filter((entry) => entry.level === 'info').length, 1, 'one line when it is back')
})

t.test('an event lost while the subscriber reconnects: the resync after re-subscribing delivers the message', async (t) => {
  const server = await startRedis(t)
  const prefix = runPrefix()
  const a = await redisApp(t, server, prefix)
  const b = await redisApp(t, server, prefix)
  const observer = server.client(t)
  const channel = 'resync.lost'
  const cursor = (await poll(b.base, { channel, timeout: 0 })).body.cursor
  const held = poll(b.base, { channel, cursor, timeout: 60_000 })
  await heldPolls(b.app, 1)
  // Drop only the pub/sub connection (B's subscriber), then push at once: ioredis waits at least 50 ms before
  // reconnecting, so the event is published while nobody is subscribed, and is lost.
  await observer.client('KILL', 'TYPE', 'pubsub')
  const pushed = await push(a.base, channel, 'missed by pub/sub')
  t.equal(pushed.status, 200)
  await a.redis.ping() // A's PUBLISH went before this on A's connection: it has run
  const [, subscribed] = await observer.pubsub('NUMSUB', `${prefix}{${channel}}`) as [string, number]
  if (subscribed === 0) t.pass('the event was published while the channel had no subscriber')
  else t.comment('the subscriber came back before the publish; this run does not prove the resync path')
  const answer = await held
  t.equal(answer.body.status, 'ok')
  t.same(answer.body.messages.map((m: any) => m.id), [pushed.body.id], 'delivered by the resync after the subscriber came back')
  t.equal(b.app.longpoll.stats().heldPolls, 0)
})

t.test('pushes while Redis is down all answer 503 at once, and none is stored when it is back', async (t) => {
  const server = await startRedis(t)
  const prefix = runPrefix()
  const a = await redisApp(t, server, prefix)
  const channel = 'down.pushes'
  t.equal((await push(a.base, channel, 'before')).status, 200)
  await server.kill()
  await until(() => a.redis.status !== 'ready', 10_000, 'the client to notice the outage')
  const started = Date.now()
  const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => push(a.base, channel, { lost: i })))
  t.same(answers.map((answer) => answer.status), Array(20).fill(503), 'never a 2xx')
  t.ok(Date.now() - started < 2_000, `all answered promptly (${Date.now() - started} ms)`)
  const api = await a.app.longpoll.push(channel, 'api').then(() => 'stored', (err) => err.code)
  t.equal(api, 'FST_LONGPOLL_STORE_UNAVAILABLE', 'app.longpoll.push rejects the same way')
  await until(() => a.notifierLog.length > 0, 10_000, 'the subscriber to notice the outage')
  const polled = Date.now()
  const refused = await poll(a.base, { channel: 'down.new-poll', timeout: 30_000 })
  t.equal(refused.status, 503, 'a new poll while Redis is down answers 503 ...')
  t.equal(refused.headers.get('retry-after'), '1', '... with Retry-After')
  t.ok(Date.now() - polled < 2_000, `... at once instead of holding the socket until its timeout (${Date.now() - polled} ms)`)
  await server.start()
  const id = await pushWhenBack(t, a, channel, 'after')
  const read = await poll(a.base, { channel, timeout: 0 })
  t.same(read.body.messages.map((m: any) => m.data), ['after'], 'only the message pushed after the restart')
  t.equal(read.body.messages[0].id, id)
})

t.test('a RedisNotifier given no log reports its incidents through app.log', async (t) => {
  const server = await startRedis(t)
  const prefix = runPrefix()
  const redis = server.client(t)
  const lines: Array<{ level: number, msg: string }> = []
  const app = Fastify({ logger: { level: 'info', stream: { write: (line: string) => { lines.push(JSON.parse(line)) } } } })
  t.teardown(() => app.close())
  await app.register(longpoll, { store: new RedisStore({ redis, prefix }), notifier: new RedisNotifier({ redis, prefix }) })
  await app.ready()
  const notifierLines = (): Array<{ level: number, msg: string }> => lines.filter((line) => /Redis subscriber/.test(line.msg))
  // A held poll subscribes its channel, so the subscriber connection is a pub/sub one that CLIENT KILL finds.
  const held = app.inject({ method: 'GET', url: '/poll?channel=logged&cursor=latest&timeout=60000' })
  await heldPolls(app, 1)
  const observer = server.client(t)
  await untilSubscribed(observer)
  await observer.client('KILL', 'TYPE', 'pubsub')
  await until(() => notifierLines().some((line) => line.level === 30), 10_000, `the recovery line in app.log: ${JSON.stringify(lines)}`)
  t.same(notifierLines().map((line) => line.level), [40, 30], 'one warning when the subscriber drops, one line when it is back')
  await app.longpoll.push('logged', 'done')
  t.equal((await held).json().status, 'ok')
})

t.test('a poll that arrives while the subscriber is still connecting is subscribed, and woken by a push', async (t) => {
  const server = await startRedis(t)
  const prefix = runPrefix()
  const redis = server.client(t)
  const notifier = new RedisNotifier({ redis, prefix })
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(longpoll, { store: new RedisStore({ redis, prefix }), notifier })
  await app.ready()
  // The notifier's own connection (private): the fault is a poll landing between its TCP connect and its ready check.
  const subscriber = (notifier as unknown as { subscriber: Redis }).subscriber
  t.equal(subscriber.status, 'connecting', 'the subscriber has not connected yet')
  // Wrapped in an object: resolving with the inject chain itself would wait for its answer.
  const { held } = await new Promise<{ held: PromiseLike<{ json: () => any }> }>((resolve) => subscriber.once('connect', () => {
    resolve({ held: app.inject({ method: 'GET', url: '/poll?channel=early&cursor=latest&timeout=30000' }) })
  }))
  await heldPolls(app, 1)
  const observer = server.client(t)
  await untilSubscribed(observer)
  const { id } = await app.longpoll.push('early', 'woken')
  const answer = (await held).json()
  t.equal(answer.status, 'ok', 'answered by the push, not at its timeout')
  t.same(answer.messages.map((m: any) => m.id), [id])
})

t.test('a Redis that hangs: a push answers 503 after commandTimeout, never 2xx', async (t) => {
  const server = await startRedis(t)
  const prefix = runPrefix()
  const redis = server.client(t)
  const app = await serve(t, { store: new RedisStore({ redis, prefix, commandTimeout: 300 }), notifier: new RedisNotifier({ redis, prefix }) })
  t.equal((await push(app.base, 'hang', 'before')).status, 200)
  server.pause()
  t.teardown(() => server.resume())
  const started = Date.now()
  const res = await push(app.base, 'hang', 'during')
  t.equal(res.status, 503, 'no answer from Redis: 503')
  t.match(res.body.message, /did not answer the append within 300 ms/)
  t.ok(Date.now() - started < 3_000, `after about commandTimeout (${Date.now() - started} ms)`)
  server.resume()
  // The script was already sent, so Redis runs it when it resumes: past its deadline, it must write nothing.
  t.equal((await push(app.base, 'hang', 'after')).status, 200, 'the store works again once Redis answers')
  const read = await poll(app.base, { channel: 'hang', timeout: 0 })
  t.same(read.body.messages.map((m: any) => m.data), ['before', 'after'], 'the push that answered 503 was not stored when Redis resumed')
})

t.test('app.close() answers held polls and closes only the plugin\'s own connection', async (t) => {
  const server = await startRedis(t)
  const prefix = runPrefix()
  const a = await redisApp(t, server, prefix)
  const observer = server.client(t)
  const polls = Array.from({ length: 3 }, () => poll(a.base, { channel: 'closing', cursor: 'latest', timeout: 60_000 }))
  await heldPolls(a.app, 3)
  await untilSubscribed(observer)
  t.equal(await subscribers(observer), 1, 'one subscriber connection for the process')
  await a.app.close()
  const answers = await Promise.all(polls)
  t.same(answers.map((answer) => [answer.status, answer.body.code]), Array(3).fill([503, 'FST_LONGPOLL_CLOSING']))
  t.equal(await a.redis.ping(), 'PONG', 'the user\'s client is still usable')
  t.equal(a.redis.status, 'ready')
  await until(() => true)
  t.equal(await subscribers(observer), 0, 'the plugin\'s subscriber connection is closed')
})

t.test('options: clients with keyPrefix, bad prefixes and misuse are refused clearly', async (t) => {
  const server = await startRedis(t)
  const prefixed = server.client(t, { keyPrefix: 'app:' })
  t.throws(() => new RedisStore({ redis: prefixed }), { code: 'FST_LONGPOLL_INVALID_OPTION', message: /keyPrefix "app:"/ })
  t.throws(() => new RedisNotifier({ redis: prefixed }), { code: 'FST_LONGPOLL_INVALID_OPTION', message: /keyPrefix/ })
  const redis = server.client(t)
  t.throws(() => new RedisStore({ redis, prefix: 'a{b}:' }), { code: 'FST_LONGPOLL_INVALID_OPTION', message: /prefix/ })
  t.throws(() => new RedisStore({ redis: {} as Redis }), { code: 'FST_LONGPOLL_INVALID_OPTION', message: /ioredis/ })
  t.throws(() => new RedisStore({ redis, commandTimeout: 0 }), { code: 'FST_LONGPOLL_INVALID_OPTION', message: /commandTimeout/ })
  t.throws(() => new RedisNotifier({ redis, linger: 2000 } as never), { code: 'FST_LONGPOLL_INVALID_OPTION', message: /"linger": is now the plugin option presenceWindow/ })
  t.throws(() => new RedisNotifier({ redis }).start({ event () {}, resync () {}, presenceWindow: -1 }), { code: 'FST_LONGPOLL_INVALID_OPTION', message: /presenceWindow/ })
  const notifier = new RedisNotifier({ redis })
  await t.rejects(notifier.publish('a', { type: 'disconnect' }), /start\(\) was not called/)
  notifier.start({ event () {}, resync () {} })
  t.throws(() => notifier.start({ event () {}, resync () {} }), /twice/)
  await notifier.close()
  await notifier.close()
})

t.test('a lazyConnect client connects on the first command', async (t) => {
  const server = await startRedis(t)
  const redis = server.client(t, { lazyConnect: true })
  const store = new RedisStore({ redis, prefix: runPrefix() })
  t.equal(redis.status, 'wait')
  const { seq } = await store.append('lazy', '1', Date.now(), { maxMessages: 10, messageTtl: 60_000 })
  t.equal(seq, 1)
  await store.close()
  t.ok(new MemoryStore(), 'the memory store needs no Redis')
})
