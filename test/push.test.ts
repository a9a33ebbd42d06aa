// POST /push and app.longpoll.push: one code path, a 2xx only for a stored message, clear 4xx otherwise.
import t from 'tap'
import { makeApp } from './helpers/app.js'
import { MemoryNotifier, MemoryStore, type LongPollNotifier, type LongPollStore } from '../lib/index.js'

t.test('any JSON value is a message, delivered exactly as pushed', async (t) => {
  const app = await makeApp(t)
  const values = [null, false, 0, -1.5, '', 'text with "quotes" and ünïcödé', [], [1, [2]], {}, { nested: { a: [true] } }]
  for (const data of values) {
    const res = await app.inject({ method: 'POST', url: '/lp/push', payload: { channel: 'a', data } })
    t.equal(res.statusCode, 200)
    t.match(res.json().id, /^[A-Za-z0-9_-]+\.\d+$/)
  }
  const res = await app.inject({ method: 'GET', url: '/lp/poll?channel=a&timeout=0' })
  t.same(res.json().messages.map((m: any) => m.data), values)
})

t.test('bad push input answers 4xx and stores nothing', async (t) => {
  const app = await makeApp(t, { maxMessageBytes: 100 })
  const cases: Array<[string, Record<string, unknown>, number, string]> = [
    ['missing data', { payload: { channel: 'a' } }, 400, 'FST_ERR_VALIDATION'],
    ['missing channel', { payload: { data: 1 } }, 400, 'FST_ERR_VALIDATION'],
    ['invalid channel', { payload: { channel: 'a b', data: 1 } }, 400, 'FST_ERR_VALIDATION'],
    ['an object channel', { payload: { channel: { name: 'a' }, data: 1 } }, 400, 'FST_ERR_VALIDATION'],
    ['malformed JSON', { payload: '{"channel":"a","data":', headers: { 'content-type': 'application/json' } }, 400, 'FST_ERR_CTP_INVALID_JSON_BODY'],
    ['a JSON array body', { payload: '[1]', headers: { 'content-type': 'application/json' } }, 400, 'FST_ERR_VALIDATION'],
    ['data over maxMessageBytes', { payload: { channel: 'a', data: 'x'.repeat(101) } }, 413, 'FST_LONGPOLL_MESSAGE_TOO_LARGE'],
    ['a body far over the limit', { payload: { channel: 'a', data: 'x'.repeat(100_000) } }, 413, 'FST_ERR_CTP_BODY_TOO_LARGE'],
    ['a text body', { payload: 'hello', headers: { 'content-type': 'text/plain' } }, 400, 'FST_ERR_VALIDATION'],
    ['an unsupported content type', { payload: '<a/>', headers: { 'content-type': 'application/xml' } }, 415, 'FST_ERR_CTP_INVALID_MEDIA_TYPE']
  ]
  for (const [what, options, status, code] of cases) {
    const res = await app.inject({ method: 'POST', url: '/lp/push', ...options })
    t.equal(res.statusCode, status, `${what}: ${status}`)
    t.equal(res.json().code, code, `${what}: ${code}`)
  }
  const poll = await app.inject({ method: 'GET', url: '/lp/poll?channel=a&timeout=0' })
  t.same(poll.json().messages, [], 'nothing was stored')
  t.equal(app.longpoll.stats().pushed, 0)
})

t.test('maxMessageBytes counts the UTF-8 bytes of the serialized data', async (t) => {
  const app = await makeApp(t, { maxMessageBytes: 10 })
  t.equal((await app.inject({ method: 'POST', url: '/lp/push', payload: { channel: 'a', data: 'ab' } })).statusCode, 200, '4 bytes')
  t.equal((await app.inject({ method: 'POST', url: '/lp/push', payload: { channel: 'a', data: 'abcdefgh' } })).statusCode, 200, '10 bytes')
  t.equal((await app.inject({ method: 'POST', url: '/lp/push', payload: { channel: 'a', data: 'ééééé' } })).statusCode, 413, '7 characters but 12 bytes')
})

t.test('server-side push validates like the route', async (t) => {
  const app = await makeApp(t, { maxMessageBytes: 16 })
  await t.rejects(app.longpoll.push('a b', 1), { code: 'FST_LONGPOLL_BAD_CHANNEL', statusCode: 400 })
  await t.rejects(app.longpoll.push('a', undefined), { code: 'FST_LONGPOLL_MISSING_DATA', statusCode: 400 })
  await t.rejects(app.longpoll.push('a', () => 1), { code: 'FST_LONGPOLL_MISSING_DATA' })
  await t.rejects(app.longpoll.push('a', 10n), { code: 'FST_LONGPOLL_BAD_DATA', statusCode: 400 })
  const cyclic: Record<string, unknown> = {}
  cyclic.self = cyclic
  await t.rejects(app.longpoll.push('a', cyclic), { code: 'FST_LONGPOLL_BAD_DATA' })
  await t.rejects(app.longpoll.push('a', 'x'.repeat(20)), { code: 'FST_LONGPOLL_MESSAGE_TOO_LARGE', statusCode: 413 })
  t.equal(app.longpoll.stats().pushed, 0)
})

t.test('a store that fails answers 503 and never 2xx', async (t) => {
  const store = new MemoryStore()
  const failing: LongPollStore = {
    append: async () => { throw new Error('connection refused') },
    read: store.read.bind(store),
    delete: async () => { throw new Error('connection refused') },
    close: store.close.bind(store)
  }
  const app = await makeApp(t, { store: failing })
  app.log.level = 'silent'
  const res = await app.inject({ method: 'POST', url: '/lp/push', payload: { channel: 'a', data: 1 } })
  t.equal(res.statusCode, 503)
  t.equal(res.json().code, 'FST_LONGPOLL_STORE_UNAVAILABLE')
  t.match(res.json().message, /connection refused/)
  t.equal(res.headers['retry-after'], '1', 'worth retrying: Retry-After says when')
  await t.rejects(app.longpoll.push('a', 1), { code: 'FST_LONGPOLL_STORE_UNAVAILABLE', statusCode: 503 })
  const disconnect = await app.inject({ method: 'DELETE', url: '/lp/disconnect?channel=a' })
  t.equal(disconnect.statusCode, 503)
  t.equal(app.longpoll.stats().pushed, 0)
})

t.test('a notifier that fails to publish: push still answers 200 (stored), disconnect answers 503', async (t) => {
  const notifier = new MemoryNotifier()
  // A fault a real in-process notifier cannot produce on demand: publish rejects, everything else is real.
  const failing: LongPollNotifier = {
    start: notifier.start.bind(notifier),
    subscribe: notifier.subscribe.bind(notifier),
    unsubscribe: notifier.unsubscribe.bind(notifier),
    publish: async () => { throw new Error('broker gone') },
    close: notifier.close.bind(notifier)
  }
  const app = await makeApp(t, { notifier: failing })
  app.log.level = 'silent'
  const push = await app.inject({ method: 'POST', url: '/lp/push', payload: { channel: 'a', data: 1 } })
  t.equal(push.statusCode, 200, 'the message is stored, so the push succeeded')
  t.equal((await app.inject({ method: 'GET', url: '/lp/poll?channel=a&timeout=0' })).json().messages.length, 1)
  const res = await app.inject({ method: 'DELETE', url: '/lp/disconnect?channel=a' })
  t.equal(res.statusCode, 503)
  t.equal(res.json().code, 'FST_LONGPOLL_NOTIFIER_UNAVAILABLE')
  t.equal(res.headers['retry-after'], '1')
  t.match(res.json().message, /broker gone/)
})

t.test('a notifier that throws instead of rejecting: polls are still answered, pushes still stored', async (t) => {
  const notifier = new MemoryNotifier()
  let failSubscribe = false
  // Faults a real notifier cannot produce on demand: methods that throw synchronously.
  const throwing: LongPollNotifier = {
    start: notifier.start.bind(notifier),
    subscribe: () => { if (failSubscribe) throw new Error('subscribe threw') },
    unsubscribe: () => { throw new Error('unsubscribe threw') },
    publish: () => { throw new Error('publish threw') },
    close: notifier.close.bind(notifier)
  }
  const app = await makeApp(t, { notifier: throwing })
  app.log.level = 'silent'
  t.equal((await app.inject({ method: 'POST', url: '/lp/push', payload: { channel: 'a', data: 1 } })).statusCode, 200, 'stored, so 200')
  const answered = await app.inject({ method: 'GET', url: '/lp/poll?channel=a&timeout=50' })
  t.equal(answered.json().messages.length, 1, 'a poll is answered although unsubscribing its channel throws')
  const timedOut = await app.inject({ method: 'GET', url: `/lp/poll?channel=a&cursor=${answered.json().cursor}&timeout=50` })
  t.equal(timedOut.json().status, 'timeout')
  failSubscribe = true
  const refused = await app.inject({ method: 'GET', url: '/lp/poll?channel=b&timeout=5000' })
  t.equal(refused.statusCode, 503)
  t.equal(refused.json().code, 'FST_LONGPOLL_NOTIFIER_UNAVAILABLE')
  t.equal(app.longpoll.stats().channels, 0, 'the failed subscription leaves no channel behind')
  t.equal(app.longpoll.stats().heldPolls, 0)
})

t.test('disconnect deletes the channel\'s messages; a later poll starts empty', async (t) => {
  const app = await makeApp(t)
  await app.longpoll.push('a', 1)
  await app.longpoll.push('b', 2)
  const res = await app.inject({ method: 'DELETE', url: '/lp/disconnect?channel=a' })
  t.equal(res.statusCode, 200)
  t.same(res.json(), { channel: 'a', status: 'disconnected' })
  t.same((await app.inject({ method: 'GET', url: '/lp/poll?channel=a&timeout=0' })).json().messages, [])
  t.equal((await app.inject({ method: 'GET', url: '/lp/poll?channel=b&timeout=0' })).json().messages.length, 1, 'other channels keep theirs')
  t.equal((await app.inject({ method: 'DELETE', url: '/lp/disconnect' })).statusCode, 400, 'channel is required')
})
