// maxHeldPollsPerClient and clientKey (contract §4): past the limit a poll answers 429 with Retry-After and a
// coded error; the slot is released with the poll; counted per instance; behind a proxy, trustProxy tells
// clients apart.
import t from 'tap'
import Fastify from 'fastify'
import { Registry } from 'prom-client'
import longpoll, { MemoryBus, MemoryNotifier, MemoryStore, type LongPollOptions } from '../lib/index.js'
import { heldPolls, makeApp, serve } from './helpers/app.js'

const hold = (app: Awaited<ReturnType<typeof makeApp>>, channel: string, headers: Record<string, string> = {}) =>
  app.inject({ url: `/lp/poll?channel=${channel}&cursor=latest&timeout=20000`, headers })

t.test('past maxHeldPollsPerClient a poll answers 429 with Retry-After and FST_LONGPOLL_TOO_MANY_CLIENT_POLLS', async (t) => {
  const app = await makeApp(t, { maxHeldPollsPerClient: 2, retryAfter: 3 })
  const held = [hold(app, 'a'), hold(app, 'b')]
  await heldPolls(app, 2)
  const refused = await hold(app, 'c')
  t.equal(refused.statusCode, 429)
  t.equal(refused.headers['retry-after'], '3')
  t.equal(refused.json().code, 'FST_LONGPOLL_TOO_MANY_CLIENT_POLLS')
  t.equal(app.longpoll.stats().heldPolls, 2, 'the refused poll holds nothing')
  const short = await app.inject('/lp/poll?channel=c&timeout=0')
  t.equal(short.statusCode, 200, 'a short poll holds nothing, so it is not limited')

  await app.longpoll.push('a', 'answer one')
  t.equal((await held[0])?.json().status, 'ok')
  const next = hold(app, 'd')
  await heldPolls(app, 2)
  t.pass('the answered poll released its slot: a new one is held')
  await app.longpoll.push('b', 1)
  await app.longpoll.push('d', 1)
  await Promise.all([held[1], next])
})

t.test('a poll aborted by its client releases its slot', async (t) => {
  const { app, base } = await serve(t, { maxHeldPollsPerClient: 1 })
  const controller = new AbortController()
  const gone = fetch(`${base}/poll?channel=a&timeout=20000`, { signal: controller.signal }).catch((err: Error) => err.name)
  await heldPolls(app, 1)
  controller.abort()
  t.equal(await gone, 'AbortError')
  await heldPolls(app, 0)
  const again = fetch(`${base}/poll?channel=a&cursor=latest&timeout=20000`)
  await heldPolls(app, 1)
  await app.longpoll.push('a', 1)
  t.equal((await again).status, 200)
})

t.test('clientKey tells clients apart; each has its own limit', async (t) => {
  const app = await makeApp(t, { maxHeldPollsPerClient: 1, clientKey: (request) => String(request.headers['x-user']) })
  const alice = hold(app, 'a', { 'x-user': 'alice' })
  const bob = hold(app, 'b', { 'x-user': 'bob' })
  await heldPolls(app, 2)
  t.equal((await hold(app, 'c', { 'x-user': 'alice' })).statusCode, 429)
  await app.longpoll.push('a', 1)
  await app.longpoll.push('b', 1)
  t.same([(await alice).statusCode, (await bob).statusCode], [200, 200])
})

t.test('behind a proxy with trustProxy, the default key is the forwarded client address', async (t) => {
  const app = Fastify({ trustProxy: true })
  t.teardown(() => app.close())
  await app.register(longpoll, { prefix: '/lp', maxHeldPollsPerClient: 1 })
  const first = hold(app, 'a', { 'x-forwarded-for': '203.0.113.1' })
  const second = hold(app, 'b', { 'x-forwarded-for': '203.0.113.2' })
  await heldPolls(app, 2)
  t.equal((await hold(app, 'c', { 'x-forwarded-for': '203.0.113.1' })).statusCode, 429, 'the same forwarded address is one client')
  await app.longpoll.push('a', 1)
  await app.longpoll.push('b', 1)
  t.same([(await first).statusCode, (await second).statusCode], [200, 200])
})

t.test('the limit is counted per instance', async (t) => {
  const bus = new MemoryBus()
  const store = new MemoryStore()
  const shared = (): LongPollOptions => ({ store, notifier: new MemoryNotifier({ bus }), maxHeldPollsPerClient: 1 })
  const a = await makeApp(t, shared())
  const b = await makeApp(t, shared())
  const onA = hold(a, 'room')
  const onB = hold(b, 'room')
  await heldPolls(a, 1)
  await heldPolls(b, 1)
  t.equal((await hold(a, 'other')).statusCode, 429, 'A refuses a second poll of the client')
  await a.longpoll.push('room', 'to both')
  t.same([(await onA).json().status, (await onB).json().status], ['ok', 'ok'], 'the client held one poll on each instance')
})

t.test('refusals are counted in metrics as max_held_polls_per_client', async (t) => {
  const registry = new Registry()
  const app = await makeApp(t, { maxHeldPollsPerClient: 1, metrics: { registry } })
  const held = hold(app, 'a')
  await heldPolls(app, 1)
  t.equal((await hold(app, 'b')).statusCode, 429)
  t.match(await registry.metrics(), /longpoll_polls_rejected_total\{reason="max_held_polls_per_client"\} 1/)
  await app.longpoll.push('a', 1)
  await held
})

for (const [name, options] of [['maxHeldPollsPerClient', { maxHeldPollsPerClient: 0 }], ['maxHeldPollsPerClient', { maxHeldPollsPerClient: 1.5 }], ['clientKey', { clientKey: 'ip' }]] as const) {
  t.test(`${JSON.stringify(options)} fails register naming "${name}"`, async (t) => {
    const app = Fastify()
    t.teardown(() => app.close())
    app.register(longpoll, options as unknown as LongPollOptions)
    await t.rejects(async () => { await app.ready() }, { code: 'FST_LONGPOLL_INVALID_OPTION', message: new RegExp(`"${name}"`) })
  })
}
