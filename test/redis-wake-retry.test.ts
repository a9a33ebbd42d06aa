// A held poll whose wake-up read fails against a real, hung Redis is answered once Redis answers again, well
// before its timeout. Two real redis-servers, so that the wake-up and the read can fail apart: the store's
// (paused with SIGSTOP while the wake-up reaches the poll) and the notifier's.
import t from 'tap'
import { Writable } from 'node:stream'
import Fastify from 'fastify'
import { heldPolls, poll, push, until } from './helpers/app.js'
import { runPrefix, startRedis } from './helpers/redis.js'
import longpoll, { RedisNotifier, RedisStore } from '../lib/index.js'

t.test('the store hangs while a wake-up reaches a held poll: a retry answers it once the store is back', async (t) => {
  const storeServer = await startRedis(t)
  const notifierServer = await startRedis(t)
  t.teardown(() => { storeServer.resume(); notifierServer.resume() })
  const prefix = runPrefix()
  const messages: string[] = []
  const stream = new Writable({
    write (chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n')) if (line !== '') messages.push(JSON.parse(line).msg)
      done()
    }
  })
  const app = Fastify({ logger: { level: 'info', stream }, forceCloseConnections: true })
  t.teardown(() => app.close())
  const storeRedis = storeServer.client(t)
  const notifierRedis = notifierServer.client(t)
  const observer = notifierServer.client(t)
  await app.register(longpoll, {
    prefix: '/lp',
    store: new RedisStore({ redis: storeRedis, prefix, commandTimeout: 300 }),
    notifier: new RedisNotifier({ redis: notifierRedis, prefix, commandTimeout: 300 })
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}/lp`
  const channel = 'wake.retry'
  const { cursor } = (await poll(base, { channel, cursor: 'latest', timeout: 0 })).body

  const timeout = 30_000
  const held = poll(base, { channel, cursor, timeout })
  await heldPolls(app, 1)
  // Subscribed (Redis lists it), so its first read, a local round trip to the other server, is done long before
  // the publish below times out.
  for (const deadline = Date.now() + 10_000; !/\bsub=1\b/.test(await observer.client('LIST') as string);) {
    if (Date.now() > deadline) throw new Error('the poll was never subscribed')
    await new Promise((resolve) => setTimeout(resolve, 10))
  }

  // The wake-up is held back in the paused notifier server while the message is stored.
  notifierServer.pause()
  const pushed = await push(base, channel, 'stored, then announced late')
  t.equal(pushed.status, 200, 'stored (its publish timed out, and stays queued in the paused server)')
  // Now the store hangs, and the wake-up goes out: its read times out (commandTimeout 300 ms) and is retried.
  storeServer.pause()
  notifierServer.resume()
  await until(() => messages.includes('fastify-longpoll: the store failed a read'), 10_000, 'the wake-up read to fail')
  const resumed = Date.now()
  storeServer.resume()

  const answer = await held
  t.equal(answer.status, 200)
  t.equal(answer.body.status, 'ok', 'answered with the message by a retried read, not at the timeout')
  t.same(answer.body.messages.map((m: any) => [m.id, m.data]), [[pushed.body.id, 'stored, then announced late']])
  t.ok(Date.now() - resumed < timeout / 2, `well before the poll's ${timeout} ms timeout (${Date.now() - resumed} ms after the store came back)`)
  await until(() => messages.includes('fastify-longpoll: the store answers again'), 5_000, 'the recovery line')
  t.equal(messages.filter((msg) => msg === 'fastify-longpoll: the store failed a read').length, 1, 'the failed reads logged once')
})
