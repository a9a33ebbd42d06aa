// app.longpoll.pushMany on the memory store and notifier: the shared suite (test/helpers/push-many.ts), the
// fallback for a store without appendMany, and the option.
import t from 'tap'
import Fastify from 'fastify'
import longpoll, { MemoryStore, type LongPollStore, type PushResult } from '../lib/index.js'
import { poll, serve } from './helpers/app.js'
import { pushManySuite, SUITE_OPTIONS } from './helpers/push-many.js'

t.test('memory, one instance', async (t) => {
  const served = await serve(t, SUITE_OPTIONS)
  pushManySuite(t, { instances: [served], name: 'memory' })
})

t.test('a store without appendMany: its appends, one channel\'s in batch order', async (t) => {
  const memory = new MemoryStore()
  const calls: string[] = []
  // Only the required methods: what a third-party store written before appendMany has.
  const store: LongPollStore = {
    append: async (channel, json, time, retention, idempotency) => {
      calls.push(channel)
      return await memory.append(channel, json, time, retention, idempotency)
    },
    read: async (channel, position, limit, now) => await memory.read(channel, position, limit, now),
    delete: async (channel) => await memory.delete(channel),
    close: async () => await memory.close()
  }
  const served = await serve(t, { ...SUITE_OPTIONS, store })
  pushManySuite(t, { instances: [served], name: 'fallback' })
  t.test('one append per message', async (t) => {
    calls.length = 0
    const results = await served.app.longpoll.pushMany([{ channel: 'f.a', data: 1 }, { channel: 'f.b', data: 2 }, { channel: 'f.a', data: 3, key: 'k' }, { channel: 'f.a', data: 4, key: 'k' }])
    t.same(calls.sort(), ['f.a', 'f.a', 'f.a', 'f.b'])
    t.equal((results[3] as PushResult).duplicate, true)
    const answer = await poll(served.base, { channel: 'f.a', timeout: 0 })
    t.same(answer.body.messages.map((m: { data: unknown }) => m.data), [1, 3])
  })
})

t.test('a failing store: FST_LONGPOLL_STORE_UNAVAILABLE, nothing announced', async (t) => {
  const memory = new MemoryStore()
  const store: LongPollStore = Object.assign(Object.create(memory) as MemoryStore, {
    appendMany: async () => { throw new Error('disk on fire') }
  })
  const served = await serve(t, { store })
  await t.rejects(served.app.longpoll.pushMany([{ channel: 'x', data: 1 }]), { code: 'FST_LONGPOLL_STORE_UNAVAILABLE', statusCode: 503, message: /disk on fire/ })
  t.equal(served.app.longpoll.stats().pushed, 0)
})

t.test('maxPushMany is validated at register', async (t) => {
  for (const bad of [0, -1, 1.5, '10']) {
    const app = Fastify()
    t.teardown(() => app.close())
    await t.rejects(async () => { await app.register(longpoll, { maxPushMany: bad as number }).ready() }, { code: 'FST_LONGPOLL_INVALID_OPTION', message: /maxPushMany/ }, `maxPushMany: ${String(bad)}`)
  }
})

t.test('maxPushMany defaults to 1000', async (t) => {
  const served = await serve(t)
  const results = await served.app.longpoll.pushMany(Array.from({ length: 1000 }, (_, i) => ({ channel: `d.${i % 7}`, data: i })))
  t.equal(results.length, 1000)
  await t.rejects(served.app.longpoll.pushMany(Array.from({ length: 1001 }, (_, i) => ({ channel: 'd', data: i }))), { code: 'FST_LONGPOLL_BAD_BATCH' })
})
