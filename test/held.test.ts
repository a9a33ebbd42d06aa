// Held polls over real sockets: wake-up, fan-out, timeout, disconnect, limits, aborts and close.
import t from 'tap'
import http from 'node:http'
import Fastify, { type FastifyServerOptions } from 'fastify'
import longpoll from '../lib/index.js'
import { heldPolls, poll, push, serve, until } from './helpers/app.js'

t.test('a held poll answers as soon as a message is pushed, not at its timeout', async (t) => {
  const { app, base } = await serve(t)
  const started = Date.now()
  const held = poll(base, { channel: 'a', cursor: 'latest', timeout: 20_000 })
  await heldPolls(app, 1)
  const { body: pushed } = await push(base, 'a', { text: 'hi' })
  const { body } = await held
  t.equal(body.status, 'ok')
  t.same(body.messages.map((m: any) => [m.id, m.data]), [[pushed.id, { text: 'hi' }]])
  t.equal(body.cursor, pushed.id)
  t.ok(Date.now() - started < 10_000, 'well before the 20 s timeout')
  t.same(app.longpoll.stats(), { ...app.longpoll.stats(), heldPolls: 0, channels: 0, delivered: 1, pushed: 1 })
})

t.test('fan-out: 500 polls held on one channel all receive one push', async (t) => {
  const { app, base } = await serve(t)
  const polls = Array.from({ length: 500 }, () => poll(base, { channel: 'room', cursor: 'latest', timeout: 30_000 }))
  await heldPolls(app, 500)
  t.equal(app.longpoll.stats().channels, 1)
  const { body: pushed } = await push(base, 'room', 'hello all')
  const answers = await Promise.all(polls)
  t.equal(answers.filter((a) => a.body.status === 'ok' && a.body.messages[0].id === pushed.id && a.body.messages.length === 1).length, 500)
  t.equal(app.longpoll.stats().delivered, 500)
  t.equal(app.longpoll.stats().heldPolls, 0)
})

t.test('a poll with no message answers status timeout with its concrete cursor', async (t) => {
  const { app, base } = await serve(t)
  const { id } = await app.longpoll.push('a', 1)
  const started = Date.now()
  const { status, body, headers } = await poll(base, { channel: 'a', cursor: id, timeout: 100 })
  t.equal(status, 200)
  t.equal(headers.get('cache-control'), 'no-store')
  t.same(body, { status: 'timeout', messages: [], cursor: id })
  t.ok(Date.now() - started >= 95, 'held for its timeout')
  t.equal(app.longpoll.stats().timeouts, 1)
})

t.test('disconnect answers every poll held on the channel with disconnected; other channels keep waiting', async (t) => {
  const { app, base } = await serve(t)
  const { id } = await app.longpoll.push('a', 'old')
  const onA = [poll(base, { channel: 'a', cursor: id, timeout: 30_000 }), poll(base, { channel: 'a', cursor: 'latest', timeout: 30_000 })]
  const onB = poll(base, { channel: 'b', cursor: 'latest', timeout: 30_000 })
  await heldPolls(app, 3)
  const res = await fetch(`${base}/disconnect?channel=a`, { method: 'DELETE' })
  t.equal(res.status, 200)
  for (const { body } of await Promise.all(onA)) {
    t.equal(body.status, 'disconnected')
    t.same(body.messages, [])
    t.equal(typeof body.cursor, 'string')
  }
  t.equal(app.longpoll.stats().heldPolls, 1, 'the poll on b is still held')
  const again = await poll(base, { channel: 'a', timeout: 0 })
  t.same(again.body.messages, [], 'the channel starts empty')
  await app.longpoll.push('b', 'still here')
  t.equal((await onB).body.status, 'ok')
})

t.test('maxHeldPolls: past it, polls answer 503 with Retry-After; short polls still answer', async (t) => {
  const { app, base } = await serve(t, { maxHeldPolls: 3, retryAfter: 2 })
  const held = [1, 2, 3].map(() => poll(base, { channel: 'a', cursor: 'latest', timeout: 30_000 }))
  await heldPolls(app, 3)
  const refused = await poll(base, { channel: 'b', timeout: 30_000 })
  t.equal(refused.status, 503)
  t.equal(refused.headers.get('retry-after'), '2')
  t.equal(refused.body.code, 'FST_LONGPOLL_TOO_MANY_POLLS')
  t.equal(app.longpoll.stats().rejected, 1)
  t.equal((await poll(base, { channel: 'b', timeout: 0 })).status, 200, 'timeout=0 holds nothing')
  await app.longpoll.push('a', 'release')
  await Promise.all(held)
  t.equal((await poll(base, { channel: 'b', timeout: 0 })).status, 200)
})

t.test('a client that goes away mid-hold is removed at once', async (t) => {
  const { app, base } = await serve(t)
  const request = http.get(`${base}/poll?channel=a&timeout=30000`)
  request.on('error', () => {}) // the socket is destroyed on purpose
  await heldPolls(app, 1)
  request.destroy()
  await until(() => app.longpoll.stats().heldPolls === 0, 5000, 'the aborted poll to be released')
  t.same(app.longpoll.stats(), { ...app.longpoll.stats(), heldPolls: 0, channels: 0, aborted: 1, answered: 0 })
  await app.longpoll.push('a', 'nobody listens')
  t.equal(app.longpoll.stats().delivered, 0)
})

t.test('app.close() answers every held poll 503 at once', async (t) => {
  const { app, base } = await serve(t)
  const held = Array.from({ length: 20 }, (_, i) => poll(base, { channel: `c${i % 4}`, timeout: 60_000 }))
  await heldPolls(app, 20)
  const started = Date.now()
  await app.close()
  t.ok(Date.now() - started < 5000, `close took ${Date.now() - started} ms`)
  for (const answer of await Promise.all(held)) {
    t.equal(answer.status, 503)
    t.equal(answer.body.code, 'FST_LONGPOLL_CLOSING')
    t.equal(answer.headers.get('retry-after'), '1')
  }
  t.equal(app.longpoll.stats().heldPolls, 0)
})

t.test('a poll that reaches its hold after close began answers 503 at once', async (t) => {
  let authorizing = (): void => {}
  const inAuthorize = new Promise<void>((resolve) => { authorizing = resolve })
  let allow = (): void => {}
  const allowed = new Promise<boolean>((resolve) => { allow = () => resolve(true) })
  const { app, base } = await serve(t, { authorize: () => { authorizing(); return allowed } })
  const answer = poll(base, { channel: 'a', timeout: 30_000 })
  await inAuthorize
  const closing = app.close()
  allow()
  const { status, body, headers } = await answer
  t.equal(status, 503)
  t.equal(body.code, 'FST_LONGPOLL_CLOSING')
  t.equal(headers.get('retry-after'), '1')
  await closing
  t.equal(app.longpoll.stats().heldPolls, 0)
})

t.test('a poll without timeout is held for the timeout option', async (t) => {
  const { base } = await serve(t, { timeout: 150 })
  const started = Date.now()
  const { body } = await poll(base, { channel: 'a' })
  const took = Date.now() - started
  t.equal(body.status, 'timeout')
  t.ok(took >= 140 && took < 10_000, `held ${took} ms`)
})

t.test('a server-wide handlerTimeout shorter than a hold does not cut held polls off', async (t) => {
  const app = Fastify({ handlerTimeout: 100 } as FastifyServerOptions)
  t.teardown(() => app.close())
  await app.register(longpoll, { prefix: '/lp', maxTimeout: 1000 })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}/lp`
  const held = poll(base, { channel: 'a', cursor: 'latest', timeout: 800 })
  await heldPolls(app, 1)
  const { status, body } = await held
  t.equal(status, 200, 'not a 503 from the server-wide handler timeout')
  t.equal(body.status, 'timeout')
})
