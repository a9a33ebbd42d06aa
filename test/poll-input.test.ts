// Bad input to GET /poll gets a clear 400 and changes nothing; every answer has the contract's shape.
import t from 'tap'
import { makeApp } from './helpers/app.js'

const bad: Array<[string, string, string]> = [
  ['a missing channel', '', 'FST_ERR_VALIDATION'],
  ['an empty channel', 'channel=', 'FST_ERR_VALIDATION'],
  ['a channel with a space', 'channel=a%20b', 'FST_ERR_VALIDATION'],
  ['a channel with a slash', 'channel=a/b', 'FST_ERR_VALIDATION'],
  ['a 201-character channel', `channel=${'x'.repeat(201)}`, 'FST_ERR_VALIDATION'],
  ['a channel given twice', 'channel=a&channel=b&channel=a', 'FST_ERR_VALIDATION'],
  ['101 channels (over maxChannels)', Array.from({ length: 101 }, (_, i) => `channel=c${i}`).join('&'), 'FST_ERR_VALIDATION'],
  ['an invalid channel among several', 'channel=a&channel=b%20c', 'FST_ERR_VALIDATION'],
  ['a cursor with too few entries', 'channel=a&channel=b&channel=c&cursor=,', 'FST_LONGPOLL_BAD_CURSOR'],
  ['a cursor with too many entries', 'channel=a&channel=b&cursor=,,', 'FST_LONGPOLL_BAD_CURSOR'],
  ['a malformed cursor entry', 'channel=a&channel=b&cursor=latest,abc', 'FST_LONGPOLL_BAD_CURSOR'],
  ['a comma in a one-channel cursor', 'channel=a&cursor=abc.1,abc.2', 'FST_LONGPOLL_BAD_CURSOR'],
  ['a malformed cursor', 'channel=a&cursor=abc', 'FST_LONGPOLL_BAD_CURSOR'],
  ['a cursor with a negative seq', 'channel=a&cursor=abc.-1', 'FST_LONGPOLL_BAD_CURSOR'],
  ['a cursor with a fractional seq', 'channel=a&cursor=abc.1.5', 'FST_LONGPOLL_BAD_CURSOR'],
  ['a cursor with a leading zero', 'channel=a&cursor=abc.01', 'FST_LONGPOLL_BAD_CURSOR'],
  ['a cursor past 2^53', 'channel=a&cursor=abc.9999999999999999', 'FST_LONGPOLL_BAD_CURSOR'],
  ['an overlong cursor', `channel=a&cursor=${'a'.repeat(6501)}`, 'FST_ERR_VALIDATION'],
  ['a negative timeout', 'channel=a&timeout=-1', 'FST_ERR_VALIDATION'],
  ['a fractional timeout', 'channel=a&timeout=1.5', 'FST_ERR_VALIDATION'],
  ['a non-numeric timeout', 'channel=a&timeout=soon', 'FST_ERR_VALIDATION'],
  ['limit 0', 'channel=a&limit=0', 'FST_ERR_VALIDATION'],
  ['limit over maxBatch', 'channel=a&limit=101', 'FST_ERR_VALIDATION'],
  ['a non-numeric limit', 'channel=a&limit=all', 'FST_ERR_VALIDATION']
]

t.test('bad poll input answers 400 with a stable code and Fastify\'s error shape', async (t) => {
  const app = await makeApp(t)
  for (const [what, query, code] of bad) {
    const res = await app.inject({ method: 'GET', url: `/lp/poll?${query}` })
    t.equal(res.statusCode, 400, `${what}: 400`)
    const body = res.json()
    t.equal(body.code, code, `${what}: ${code}`)
    t.same(Object.keys(body).sort(), ['code', 'error', 'message', 'statusCode'], `${what}: error shape`)
  }
  t.equal(app.longpoll.stats().heldPolls, 0, 'nothing held')
})

t.test('a cursor past the newest message of the channel is 400, not a silent wait', async (t) => {
  const app = await makeApp(t)
  const { id } = await app.longpoll.push('a', 1)
  const epoch = id.split('.')[0]
  const res = await app.inject({ method: 'GET', url: `/lp/poll?channel=a&cursor=${epoch}.5&timeout=0` })
  t.equal(res.statusCode, 400)
  t.equal(res.json().code, 'FST_LONGPOLL_BAD_CURSOR')
})

t.test('the channel pattern option replaces the default and is enforced on every route', async (t) => {
  const app = await makeApp(t, { channelPattern: /^room-[0-9]+$/ })
  t.equal((await app.inject({ method: 'GET', url: '/lp/poll?channel=room-1&timeout=0' })).statusCode, 200)
  t.equal((await app.inject({ method: 'GET', url: '/lp/poll?channel=lobby&timeout=0' })).statusCode, 400)
  t.equal((await app.inject({ method: 'POST', url: '/lp/push', payload: { channel: 'lobby', data: 1 } })).statusCode, 400)
  t.equal((await app.inject({ method: 'DELETE', url: '/lp/disconnect?channel=lobby' })).statusCode, 400)
  await t.rejects(app.longpoll.push('lobby', 1), { code: 'FST_LONGPOLL_BAD_CHANNEL', statusCode: 400 })
})

t.test('a short poll answers at once with a concrete cursor and no-store caching', async (t) => {
  const app = await makeApp(t)
  const res = await app.inject({ method: 'GET', url: '/lp/poll?channel=a&timeout=0' })
  t.equal(res.statusCode, 200)
  t.equal(res.headers['cache-control'], 'no-store')
  t.match(res.headers['content-type'], /^application\/json/)
  const body = res.json()
  t.equal(body.status, 'timeout')
  t.same(body.messages, [])
  t.match(body.cursor, /^[A-Za-z0-9_-]+\.0$/)
  t.notOk('gap' in body)
})

t.test('HEAD /poll is not a route: it would hold a poll only to drop the answer', async (t) => {
  const app = await makeApp(t)
  t.equal((await app.inject({ method: 'HEAD', url: '/lp/poll?channel=a' })).statusCode, 404)
})
