// Idempotent pushes (contract §1.5) on the memory store: the Idempotency-Key header of POST /push and { key } of
// app.longpoll.push share one key space per channel; a repeat within idempotencyTtl stores nothing and answers
// the first id with duplicate: true. test/redis-idempotency.test.ts checks the same across Redis instances.
import t from 'tap'
import { makeApp, heldPolls } from './helpers/app.js'
import { MemoryStore } from '../lib/index.js'

function pushWithKey (key: string | undefined, channel: string, data: unknown) {
  return { method: 'POST' as const, url: '/lp/push', payload: { channel, data }, headers: key === undefined ? {} : { 'idempotency-key': key } }
}

t.test('a repeated Idempotency-Key answers the first id with duplicate: true, stores and delivers once', async (t) => {
  const app = await makeApp(t)
  const first = await app.inject(pushWithKey('order-7', 'user-42', { n: 1 }))
  t.equal(first.statusCode, 200)
  t.notOk('duplicate' in first.json(), 'the first push is no duplicate')
  const repeat = await app.inject(pushWithKey('order-7', 'user-42', { n: 'retry' }))
  t.equal(repeat.statusCode, 200)
  t.same(repeat.json(), { id: first.json().id, online: false, duplicate: true })
  const poll = await app.inject('/lp/poll?channel=user-42&timeout=0')
  t.same(poll.json().messages.map((m: { data: unknown }) => m.data), [{ n: 1 }], 'one message, the first one')
  t.equal(app.longpoll.stats().pushed, 1, 'a duplicate is not counted as pushed')
})

t.test('a duplicate wakes no held poll: nothing new was stored', async (t) => {
  const app = await makeApp(t)
  const { id } = await app.longpoll.push('feed', 1, { key: 'k' })
  const held = app.inject(`/lp/poll?channel=feed&cursor=${id}&timeout=300`)
  await heldPolls(app, 1)
  t.same(await app.longpoll.push('feed', 2, { key: 'k' }), { id, online: true, duplicate: true })
  t.equal((await held).json().status, 'timeout', 'the poll saw nothing new')
})

t.test('the header and { key } share one key space per channel; other channels and other keys store', async (t) => {
  const app = await makeApp(t)
  const server = await app.longpoll.push('a', 'server', { key: 'shared' })
  const http = await app.inject(pushWithKey('shared', 'a', 'http'))
  t.same(http.json(), { id: server.id, online: false, duplicate: true }, 'a header repeats a { key } push')
  const back = await app.longpoll.push('a', 'server again', { key: 'shared' })
  t.same(back, { id: server.id, online: false, duplicate: true })
  const otherChannel = await app.inject(pushWithKey('shared', 'b', 'b'))
  t.notOk(otherChannel.json().duplicate, 'the same key on another channel is another push')
  const otherKey = await app.longpoll.push('a', 'other', { key: 'shared-2' })
  const noKey = [await app.longpoll.push('a', 'x'), await app.longpoll.push('a', 'x')]
  t.equal(new Set([server.id, otherKey.id, ...noKey.map((r) => r.id)]).size, 4, 'without a key every push stores')
  t.notOk(noKey.some((r) => r.duplicate))
})

t.test('after idempotencyTtl the key stores again', async (t) => {
  const app = await makeApp(t, { idempotencyTtl: 50 })
  const first = await app.longpoll.push('a', 1, { key: 'k' })
  await new Promise((resolve) => setTimeout(resolve, 200))
  const again = await app.longpoll.push('a', 2, { key: 'k' })
  t.not(again.id, first.id)
  t.notOk(again.duplicate)
})

t.test('concurrent pushes with one key store one message and all answer its id', async (t) => {
  const app = await makeApp(t)
  const answers = await Promise.all(Array.from({ length: 50 }, (_, i) => app.inject(pushWithKey('once', 'c', i))))
  const bodies = answers.map((answer) => answer.json())
  t.equal(new Set(bodies.map((body) => body.id)).size, 1, 'one id')
  t.equal(bodies.filter((body) => body.duplicate !== true).length, 1, 'one stored')
  t.equal((await app.inject('/lp/poll?channel=c&timeout=0')).json().messages.length, 1)
})

t.test('an invalid key answers 400 FST_LONGPOLL_BAD_IDEMPOTENCY_KEY and stores nothing', async (t) => {
  const app = await makeApp(t)
  const bad = ['', 'x'.repeat(201), 'with space', 'tab\tkey', 'ünï', 'a,b c']
  for (const key of bad) {
    const res = await app.inject(pushWithKey(key, 'a', 1))
    t.equal(res.statusCode, 400, `header ${JSON.stringify(key.slice(0, 20))}`)
    t.equal(res.json().code, 'FST_LONGPOLL_BAD_IDEMPOTENCY_KEY')
    await t.rejects(app.longpoll.push('a', 1, { key }), { code: 'FST_LONGPOLL_BAD_IDEMPOTENCY_KEY', statusCode: 400 })
  }
  await t.rejects(app.longpoll.push('a', 1, { key: 7 as unknown as string }), { code: 'FST_LONGPOLL_BAD_IDEMPOTENCY_KEY' })
  const ok = ['x'.repeat(200), '!', '~', 'order:7/2026-12-01T10:00:00Z']
  for (const key of ok) t.equal((await app.inject(pushWithKey(key, 'a', 1))).statusCode, 200, `key of ${key.length} visible characters`)
  t.equal((await app.inject('/lp/poll?channel=a&timeout=0')).json().messages.length, ok.length, 'only the valid ones stored')
})

t.test('an invalid idempotencyTtl fails register naming it', async (t) => {
  const { default: Fastify } = await import('fastify')
  const { default: longpoll } = await import('../lib/index.js')
  for (const idempotencyTtl of [0, -1, 1.5, '5m']) {
    const app = Fastify()
    t.teardown(() => app.close())
    app.register(longpoll, { idempotencyTtl } as never)
    await t.rejects(async () => { await app.ready() }, { code: 'FST_LONGPOLL_INVALID_OPTION', message: /"idempotencyTtl"/ })
  }
})

t.test('MemoryStore remembers at most maxIdempotencyKeys keys, and sweeps expired ones', async (t) => {
  const store = new MemoryStore({ maxIdempotencyKeys: 3 })
  t.teardown(() => store.close())
  const retention = { maxMessages: 100, messageTtl: 60_000 }
  const now = Date.now()
  for (let i = 0; i < 5; i++) await store.append('a', String(i), now, retention, { key: `k${i}`, ttl: 1_000 })
  t.equal(store.idempotencyKeys, 3, 'bounded')
  t.notOk((await store.append('a', '"k0 again"', now, retention, { key: 'k0', ttl: 1_000 })).duplicate, 'the oldest key was forgotten first')
  t.ok((await store.append('a', '"k4 again"', now, retention, { key: 'k4', ttl: 1_000 })).duplicate, 'a recent one is remembered')
  await store.append('a', '"later"', now + 1_000, retention, { key: 'later', ttl: 1_000 })
  t.equal(store.idempotencyKeys, 1, 'an append drops the expired keys before it')
})
