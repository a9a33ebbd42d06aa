// The plugin's routes answer outage 503s themselves (without Fastify's per-request error log) and hand every
// other error to the app's error handler, as before. The store is a MemoryStore whose append fails: a fault
// injector around the real store.
import t from 'tap'
import Fastify from 'fastify'
import longpoll, { MemoryStore } from '../lib/index.js'

t.test("outage 503s are answered by the plugin's scope; other errors reach the app's error handler", async (t) => {
  const inner = new MemoryStore()
  const store = {
    append: async () => { throw new Error('injected append failure') },
    read: inner.read.bind(inner),
    delete: inner.delete.bind(inner),
    close: inner.close.bind(inner)
  }
  const app = Fastify()
  t.teardown(() => app.close())
  const handled: string[] = []
  app.setErrorHandler((err: { code?: string }, _request, reply) => {
    handled.push(err.code ?? 'none')
    return reply.code(418).send({ handledBy: 'the app' })
  })
  await app.register(longpoll, { prefix: '/lp', store, retryAfter: 7 })
  await app.ready()

  const down = await app.inject({ method: 'POST', url: '/lp/push', payload: { channel: 'c', data: 1 } })
  t.equal(down.statusCode, 503)
  t.equal(down.headers['retry-after'], '7')
  t.match(down.json(), { statusCode: 503, code: 'FST_LONGPOLL_STORE_UNAVAILABLE', error: 'Service Unavailable', message: /injected append failure/ })
  t.same(handled, [], "the app's handler is not asked for an outage 503")

  const bad = await app.inject({ url: '/lp/poll?channel=c&cursor=nonsense&timeout=0' })
  t.equal(bad.statusCode, 418, "a 400 goes to the app's error handler")
  t.same(handled, ['FST_LONGPOLL_BAD_CURSOR'])
})
