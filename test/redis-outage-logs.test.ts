// What an outage writes to the app's log: the plugin's one line when it starts and one when it ends, not one
// per failed poll or push; the app's own routes keep Fastify's error logging. Real redis-server, killed and
// restarted; the log is the app's real pino logger writing to a stream the test reads.
import t from 'tap'
import { Writable } from 'node:stream'
import Fastify from 'fastify'
import { poll, push, until } from './helpers/app.js'
import { runPrefix, startRedis } from './helpers/redis.js'
import longpoll, { RedisNotifier, RedisStore } from '../lib/index.js'

interface LogLine { level: number, msg: string, reqId?: string, err?: { code?: string, message?: string } }

t.test('Redis down: N failed polls and pushes log one incident and one recovery, no line per request', async (t) => {
  const server = await startRedis(t)
  const prefix = runPrefix()
  const lines: LogLine[] = []
  const stream = new Writable({
    write (chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n')) if (line !== '') lines.push(JSON.parse(line))
      done()
    }
  })
  const app = Fastify({ logger: { level: 'info', stream }, forceCloseConnections: true })
  t.teardown(() => app.close())
  const redis = server.client(t)
  await app.register(longpoll, { prefix: '/lp', store: new RedisStore({ redis, prefix }), notifier: new RedisNotifier({ redis, prefix }), retryAfter: 1 })
  // A route of the user's own, outside the plugin: its errors must still be logged the way Fastify does.
  app.get('/boom', async () => { throw new Error('the user route failed') })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}/lp`
  const channel = 'logs.one'
  const { cursor } = (await poll(base, { channel, cursor: 'latest', timeout: 0 })).body
  const before = lines.length

  await server.kill()
  await until(() => redis.status !== 'ready', 10_000, 'the client to notice the outage')
  const N = 5
  const answers = []
  for (let i = 0; i < N; i++) {
    answers.push((await push(base, channel, i)).status) // the store's append fails
    answers.push((await poll(base, { channel, cursor, timeout: 0 })).status) // a short poll's read fails
    answers.push((await poll(base, { channel, cursor, timeout: 5_000 })).status) // a held poll cannot subscribe
  }
  t.same(answers, answers.map(() => 503), `${answers.length} requests answered 503 during the outage`)

  await server.start()
  const deadline = Date.now() + 20_000
  while ((await push(base, channel, 'back')).status !== 200) {
    if (Date.now() > deadline) throw new Error('the store did not come back')
    await new Promise((resolve) => setTimeout(resolve, 50)) // a client's retry pacing
  }
  t.equal((await fetch(base.replace('/lp', '/boom'))).status, 500)
  await until(() => lines.some((line) => line.msg === 'the user route failed'), 5_000, "the user route's error line")

  const during = lines.slice(before)
  const plugin = (pattern: RegExp): LogLine[] => during.filter((line) => pattern.test(line.msg))
  t.equal(plugin(/^fastify-longpoll: the store failed/).length, 1, 'one line when the store starts failing')
  t.equal(plugin(/^fastify-longpoll: the store answers again/).length, 1, 'one line when it answers again')
  const unavailable = during.filter((line) => line.err?.code === 'FST_LONGPOLL_STORE_UNAVAILABLE' || line.err?.code === 'FST_LONGPOLL_NOTIFIER_UNAVAILABLE')
  t.same(unavailable.map((line) => line.msg), [], 'no per-request error line for the 503s')
  const requestErrors = during.filter((line) => line.reqId !== undefined && line.level >= 40)
  t.same(requestErrors.map((line) => line.msg), ['the user route failed'], "the only request-level error logged is the user route's")
  t.ok(during.filter((line) => /^fastify-longpoll:/.test(line.msg)).length <= 4, `the plugin's lines: ${JSON.stringify(plugin(/^fastify-longpoll:/).map((line) => line.msg))}`)
})
