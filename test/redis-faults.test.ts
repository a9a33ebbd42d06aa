// Redis failing under a running deployment: killed and restarted while polls are held, down while clients push,
// and the plugin's shutdown. All against a real redis-server this test kills (SIGKILL) and starts again.
import t, { type Test } from 'tap'
import { Redis } from 'ioredis'
import Fastify from 'fastify'
import { heldPolls, poll, push, serve, until, type Served } from './helpers/app.js'
import { pollMany } from './helpers/many.js'
import { pushWhenBack, redisApp, runPrefix, startRedis, type RedisServer } from './helpers/redis.js'
import longpoll, { RedisNotifier, RedisStore } from '../lib/index.js'

/** Connections in pub/sub mode, as Redis itself lists them. */
async function subscribers (observer: Redis): Promise<number> {
  return (await observer.client('LIST') as string).split('\n').filter((line) => /\b(sub|ssub)=[1-9]/.test(line)).length
}

/** Resolves once Redis lists `n` connections in pub/sub mode (it has no event for a SUBSCRIBE or a QUIT processed). */
async function untilSubscribers (observer: Redis, n: number, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms
  while (await subscribers(observer) !== n) {
    if (Date.now() > deadline) throw new Error(`Redis never listed ${n} subscriber connection(s): ${await observer.client('LIST') as string}`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

/**
 * A poll counts as held from the moment it is registered, before Redis has processed its channel's SUBSCRIBE,
 * and Redis offers no event for that: ask Redis until it lists a subscriber.
 */
async function untilSubscribed (observer: Redis): Promise<void> {
  await untilSubscribers(observer, 1)
}

t.test('Redis killed and restarted while polls are held: every message pushed afterwards is delivered once', async (t) => {
  const server = await startRedis(t)
  const prefix = runPrefix()
  // A long commandTimeout, so that "at once" below is far from what a push queued until the reconnect would take.
  const a = await redisApp(t, server, prefix, {}, {}, { store: { commandTimeout: 30_000 } })
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
  t.ok(Date.now() - started < 10_000, `at once, not after the 30 s commandTimeout (${Date.now() - started} ms)`)

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
  // B's client (and so its notifier's subscriber, a duplicate of it) waits 1.5 s before each reconnection: the
  // push below certainly lands while B is not subscribed.
  const b = await redisApp(t, server, prefix, {}, {}, { client: { retryStrategy: () => 1_500 } })
  const observer = server.client(t)
  const channel = 'resync.lost'
  const cursor = (await poll(b.base, { channel, timeout: 0 })).body.cursor
  const held = poll(b.base, { channel, cursor, timeout: 60_000 })
  await heldPolls(b.app, 1)
  await untilSubscribed(observer)
  await observer.client('KILL', 'TYPE', 'pubsub') // only B's subscriber: the polls stay held, B's store client is up
  const pushed = await push(a.base, channel, 'missed by pub/sub')
  t.equal(pushed.status, 200)
  t.equal(pushed.body.online, false, 'Redis delivered the event to no subscriber (its PUBLISH reply was 0): the event is lost')
  const [, subscribed] = await observer.pubsub('NUMSUB', `${prefix}{${channel}}`) as [string, number]
  t.equal(subscribed, 0, 'and B is still not subscribed after the publish ran')
  t.equal(b.app.longpoll.stats().heldPolls, 1, 'the poll is still held')
  const answer = await held
  t.equal(answer.body.status, 'ok', 'answered, long before its 60 s timeout: only the resync could wake it')
  t.same(answer.body.messages.map((m: any) => m.id), [pushed.body.id], 'delivered by the resync after the subscriber came back')
  t.ok(b.notifierLog.some((entry) => entry.level === 'info' && /back/.test(entry.msg)), 'the notifier re-subscribed and said so')
  t.equal(b.app.longpoll.stats().heldPolls, 0)
})

t.test('while Redis is down: pushes, short polls and disconnects answer 503 at once; nothing is stored when it is back', async (t) => {
  const server = await startRedis(t)
  const prefix = runPrefix()
  // Reads wait for the reconnect up to commandTimeout; appends and deletes never wait (see RedisStore.append).
  const a = await redisApp(t, server, prefix, {}, {}, { store: { commandTimeout: 1_000 } })
  const channel = 'down.pushes'
  t.equal((await push(a.base, channel, 'before')).status, 200)
  await server.kill()
  await until(() => a.redis.status !== 'ready', 10_000, 'the client to notice the outage')
  const started = Date.now()
  const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => push(a.base, channel, { lost: i })))
  t.same(answers.map((answer) => answer.status), Array(20).fill(503), 'never a 2xx')
  t.same([...new Set(answers.map((answer) => answer.body.code))], ['FST_LONGPOLL_STORE_UNAVAILABLE'])
  t.ok(Date.now() - started < 10_000, `all answered, none waiting for Redis to come back (${Date.now() - started} ms)`)
  const api = await a.app.longpoll.push(channel, 'api').then(() => 'stored', (err) => err.code)
  t.equal(api, 'FST_LONGPOLL_STORE_UNAVAILABLE', 'app.longpoll.push rejects the same way')

  const short = await poll(a.base, { channel, timeout: 0 })
  t.equal(short.status, 503, 'a short poll whose read fails answers 503 ...')
  t.equal(short.body.code, 'FST_LONGPOLL_STORE_UNAVAILABLE')
  t.equal(short.headers.get('retry-after'), '1', '... with Retry-After')

  const deleted = await fetch(`${a.base}/disconnect?channel=${channel}`, { method: 'DELETE' })
  t.equal(deleted.status, 503, 'a disconnect answers 503: nothing was deleted')
  t.equal((await deleted.json()).code, 'FST_LONGPOLL_STORE_UNAVAILABLE')
  t.equal(await a.app.longpoll.disconnect(channel).then(() => 'deleted', (err) => err.code), 'FST_LONGPOLL_STORE_UNAVAILABLE', 'app.longpoll.disconnect rejects the same way')

  await until(() => a.notifierLog.length > 0, 10_000, 'the subscriber to notice the outage')
  const polled = Date.now()
  const refused = await poll(a.base, { channel: 'down.new-poll', timeout: 30_000 })
  t.equal(refused.status, 503, 'a new poll while Redis is down answers 503 ...')
  t.equal(refused.headers.get('retry-after'), '1', '... with Retry-After')
  t.ok(Date.now() - polled < 10_000, `... at once instead of holding the socket until its 30 s timeout (${Date.now() - polled} ms)`)
  t.equal(a.app.longpoll.stats().heldPolls, 0)
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
  t.ok(Date.now() - started < 10_000, `bounded by commandTimeout, not waiting for Redis to resume (${Date.now() - started} ms)`)
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
  await untilSubscribers(observer, 0) // Redis drops the connection once it has processed the QUIT
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
})

/** An app whose store and notifier are on two Redis servers, so that one can fail while the other works. */
async function splitApp (t: Test): Promise<{ app: Served['app'], base: string, storeServer: RedisServer, busServer: RedisServer, notifier: RedisNotifier }> {
  const storeServer = await startRedis(t)
  const busServer = await startRedis(t)
  const prefix = runPrefix()
  const notifier = new RedisNotifier({ redis: busServer.client(t), prefix, commandTimeout: 300 })
  const { app, base } = await serve(t, { store: new RedisStore({ redis: storeServer.client(t), prefix, commandTimeout: 500 }), notifier })
  return { app, base, storeServer, busServer, notifier }
}

t.test('a held poll whose first read fails (the store\'s Redis is down, the notifier\'s is up): 503, and released', async (t) => {
  const { app, base, storeServer } = await splitApp(t)
  await app.longpoll.push('first.one', 'before')
  await storeServer.kill()
  for (const channels of [['first.one'], ['first.a', 'first.b', 'first.c']]) {
    const started = Date.now()
    const { status, body } = await pollMany(base, channels, { timeout: 30_000, cursor: channels.map(() => 'latest').join(',') })
    t.equal(status, 503, `${channels.length} channel(s): 503`)
    t.equal(body.code, 'FST_LONGPOLL_STORE_UNAVAILABLE')
    t.notMatch(body.message, /subscriber/, 'the read failed, not the subscription')
    t.ok(Date.now() - started < 15_000, `at its read's commandTimeout, not at the poll's 30 s timeout (${Date.now() - started} ms)`)
    t.equal(app.longpoll.stats().heldPolls, 0, 'released')
    t.equal(app.longpoll.stats().channels, 0, 'no channel waiter left')
  }
})

t.test('a publish that times out: the push still answers 200 (stored), and the notifier\'s publish rejects at its commandTimeout', async (t) => {
  const { app, base, busServer, notifier } = await splitApp(t)
  t.equal((await push(base, 'slowbus', 'warm-up')).status, 200)
  busServer.pause()
  t.teardown(() => busServer.resume())
  const started = Date.now()
  await t.rejects(notifier.publish('slowbus', { type: 'disconnect' }), /did not answer the publish within 300 ms/)
  t.ok(Date.now() - started < 10_000, `rejected at about its commandTimeout (${Date.now() - started} ms)`)
  const pushed = await push(base, 'slowbus', 'stored anyway')
  t.equal(pushed.status, 200, 'the message is stored, so the push succeeded')
  t.equal(pushed.body.online, false, 'presence unknown: this instance holds no poll on it')
  busServer.resume()
  const read = await poll(base, { channel: 'slowbus', timeout: 0 })
  t.same(read.body.messages.map((m: any) => m.data), ['warm-up', 'stored anyway'])
  t.equal(app.longpoll.stats().pushed, 2)
})

t.test('pub/sub payloads the notifier did not write are dropped, and a throwing handler is contained', async (t) => {
  const server = await startRedis(t)
  const prefix = runPrefix()
  const redis = server.client(t)
  const errors: string[] = []
  const notifier = new RedisNotifier({ redis, prefix, log: { error: (_, msg) => { errors.push(msg) }, warn () {}, info () {} } })
  t.teardown(() => notifier.close())
  const events: Array<[string, unknown]> = []
  notifier.start({
    event: (name, event) => {
      if (name === 'throws') throw new Error('a bug in the handler')
      events.push([name, event])
    },
    resync () {},
    presenceWindow: 0
  })
  await notifier.subscribe('good')
  await notifier.subscribe('throws')
  // Someone else's messages on our pub/sub channel (another app, another version): none decodes to an event.
  for (const payload of ['garbage', '', 'm:', 'm:nodot', 'm:e.', 'm:e.x', 'm:e.-1', 'j:', 'j:-1', 'j:1.5', 'j:abc', 't:', 'x:1', 'dd', '{"type":"message"}']) {
    await redis.publish(`${prefix}{good}`, payload)
  }
  await redis.publish(`${prefix}{throws}`, 'm:e.1')
  await redis.publish(`${prefix}{good}`, 'm:e.7')
  await until(() => events.length > 0, 10_000, 'the one well-formed event')
  await redis.ping()
  t.same(events, [['good', { type: 'message', epoch: 'e', seq: 7 }]], 'only the well-formed event, after the handler threw on another channel')
  t.same(errors, ['fastify-longpoll: a notifier event handler threw'], 'the throw was logged, not thrown into ioredis')
  await notifier.publish('good', { type: 'disconnect' })
  await until(() => events.length === 2, 10_000, 'the next event')
  t.same(events[1], ['good', { type: 'disconnect' }], 'the subscriber still works')
})

t.test('re-subscribing 1,500 channels after a reconnection: in batches of 1,000, then one resync', async (t) => {
  const server = await startRedis(t)
  const prefix = runPrefix()
  const redis = server.client(t)
  const observer = server.client(t)
  const notifier = new RedisNotifier({ redis, prefix })
  t.teardown(() => notifier.close())
  let resyncs = 0
  const events: string[] = []
  notifier.start({ event: (name) => { events.push(name) }, resync: () => { resyncs++ }, presenceWindow: 0 })
  const channels = Array.from({ length: 1500 }, (_, i) => `many.${i}`)
  await notifier.subscribe(channels[0] as string) // connected: the others need not each wait for 'ready'
  await Promise.all(channels.map((channel) => notifier.subscribe(channel)))
  t.equal((await observer.pubsub('CHANNELS', `${prefix}*`) as string[]).length, 1500)
  await observer.config('RESETSTAT')
  await observer.client('KILL', 'TYPE', 'pubsub')
  await until(() => resyncs > 0, 15_000, 'the resync')
  t.equal(resyncs, 1, 'one resync, once every batch was acknowledged')
  t.equal((await observer.pubsub('CHANNELS', `${prefix}*`) as string[]).length, 1500, 'every channel subscribed again')
  const stats = await observer.info('commandstats')
  t.equal(Number(/^cmdstat_subscribe:calls=(\d+)/m.exec(stats)?.[1]), 2, 'two SUBSCRIBE commands: 1,000 channels and 500')
  for (const channel of [channels[0] as string, channels[999] as string, channels[1000] as string, channels[1499] as string]) {
    await notifier.publish(channel, { type: 'disconnect' })
  }
  await until(() => events.length === 4, 10_000, 'an event on the first and last channel of each batch')
  t.same(events, ['many.0', 'many.999', 'many.1000', 'many.1499'])
})
