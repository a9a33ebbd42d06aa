// Registration: exports, the decorator, prefixes, and options that fail fast naming the option.
import t from 'tap'
import Fastify from 'fastify'
import longpoll, { fastifyLongpoll, MemoryNotifier, MemoryStore, errors, type LongPollOptions } from '../lib/index.js'

t.test('the plugin is the default and the named export, with its fastify-plugin metadata', async (t) => {
  t.equal(longpoll, fastifyLongpoll)
  const meta = (longpoll as unknown as Record<symbol, any>)[Symbol.for('plugin-meta')]
  t.equal(meta.name, 'fastify-longpoll')
  t.equal(meta.fastify, '5.x')
  t.equal(typeof MemoryStore, 'function')
  t.equal(typeof MemoryNotifier, 'function')
  t.equal(typeof errors.BadCursor, 'function')
})

t.test('the decorator is on the outer instance; routes are under the prefix', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(longpoll, { prefix: '/realtime/' })
  await app.ready()
  t.equal(typeof app.longpoll.push, 'function')
  t.equal(typeof app.longpoll.disconnect, 'function')
  t.equal(typeof app.longpoll.stats, 'function')
  t.equal((await app.inject('/realtime/poll?channel=a&timeout=0')).statusCode, 200)
  t.equal((await app.inject('/poll?channel=a&timeout=0')).statusCode, 404)
})

t.test('without a prefix the routes are at the root', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(longpoll)
  t.equal((await app.inject('/poll?channel=a&timeout=0')).statusCode, 200)
})

t.test('registering twice on one instance is refused by fastify-plugin', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  app.register(longpoll)
  app.register(longpoll)
  await t.rejects(async () => { await app.ready() }, { code: 'FST_ERR_DEC_ALREADY_PRESENT' })
})

const invalid: Array<[string, Record<string, unknown>]> = [
  ['timeout', { timeout: -1 }],
  ['timeout', { timeout: 1.5 }],
  ['timeout', { timeout: 90_000 }],
  ['maxTimeout', { maxTimeout: 0 }],
  ['maxTimeout', { maxTimeout: '60s' }],
  ['maxBatch', { maxBatch: 0 }],
  ['maxMessages', { maxMessages: -5 }],
  ['messageTtl', { messageTtl: Number.NaN }],
  ['maxMessageBytes', { maxMessageBytes: 0 }],
  ['maxHeldPolls', { maxHeldPolls: Infinity }],
  ['retryAfter', { retryAfter: -1 }],
  ['channelPattern', { channelPattern: /^a$/i }],
  ['channelPattern', { channelPattern: 'abc' }],
  ['channelPattern', { channelPattern: '^(unclosed$' }],
  ['authorize', { authorize: 'yes' }],
  ['store', { store: {} }],
  ['store', { store: { append () {}, read () {} } }],
  ['notifier', { notifier: { publish () {} } }],
  ['prefix', { prefix: 'lp' }],
  ['maxTimout', { maxTimout: 1000 }]
]

for (const [option, options] of invalid) {
  t.test(`an invalid "${option}" (${JSON.stringify(options, (_k, v) => v instanceof RegExp ? String(v) : v)}) fails register naming it`, async (t) => {
    const app = Fastify()
    t.teardown(() => app.close())
    app.register(longpoll, options as LongPollOptions)
    await t.rejects(async () => { await app.ready() }, { code: 'FST_LONGPOLL_INVALID_OPTION', message: new RegExp(`"${option}"`) })
  })
}

t.test('maxTimeout alone lowers the default timeout instead of failing', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(longpoll, { prefix: '/lp', maxTimeout: 50 })
  const started = Date.now()
  const res = await app.inject('/lp/poll?channel=a')
  t.equal(res.json().status, 'timeout')
  t.ok(Date.now() - started < 5000)
})

t.test('a store passed in is used and closed with the app; defaults are per app', async (t) => {
  const store = new MemoryStore()
  let closed = 0
  const close = store.close.bind(store)
  store.close = async () => { closed++; return close() }
  const app = Fastify()
  await app.register(longpoll, { store })
  await app.longpoll.push('a', 1)
  t.equal(store.size, 1, 'the message went to the given store')
  await app.close()
  t.equal(closed, 1)
})
