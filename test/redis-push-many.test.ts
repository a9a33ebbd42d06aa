// app.longpoll.pushMany on one real Redis: the shared suite (test/helpers/push-many.ts) on one instance and on
// two instances of an app, and what a batch costs, counted by Redis itself (INFO commandstats).
import t from 'tap'
import type { Redis } from 'ioredis'
import { deleteByPrefix, redisApp, runPrefix, startRedis } from './helpers/redis.js'
import { pushManySuite, SUITE_OPTIONS } from './helpers/push-many.js'
import { RedisStore } from '../lib/index.js'

t.test('Redis, one instance', async (t) => {
  const server = await startRedis(t)
  const prefix = runPrefix()
  const a = await redisApp(t, server, prefix, SUITE_OPTIONS)
  pushManySuite(t, { instances: [a], name: 'redis1' })
})

t.test('Redis, two instances: pushed on the first, polled on both', async (t) => {
  const server = await startRedis(t)
  const prefix = runPrefix()
  const a = await redisApp(t, server, prefix, SUITE_OPTIONS)
  const b = await redisApp(t, server, prefix, SUITE_OPTIONS)
  pushManySuite(t, { instances: [a, b], name: 'redis2' })
})

t.test('one EVALSHA per batch, one PUBLISH per channel, nothing else', async (t) => {
  const server = await startRedis(t)
  const prefix = runPrefix()
  const a = await redisApp(t, server, prefix)
  const observer = server.client(t)
  const batch = Array.from({ length: 40 }, (_, i) => ({ channel: `count.${i % 8}`, data: { i }, key: i % 5 === 0 ? `k${i}` : undefined }))
  await a.app.longpoll.pushMany(batch.map(({ channel }) => ({ channel: `${channel}.warm`, data: 0 }))) // loads the script (EVALSHA, NOSCRIPT, EVAL) and the clock
  await (a.redis as Redis).ping()
  await observer.config('RESETSTAT')
  const results = await a.app.longpoll.pushMany(batch)
  await (a.redis as Redis).ping()
  const info = await observer.info('commandstats')
  const counts: Record<string, number> = {}
  for (const [, name, calls] of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) counts[name as string] = Number(calls)
  t.equal(results.length, 40)
  t.equal(counts.evalsha, 1, 'one script for the whole batch')
  t.equal(counts.publish, 8, 'one event per channel')
  t.equal(counts.eval, undefined, 'no script reloaded')
  // INFO counts the commands a script runs under their own names: those, and nothing sent outside the script.
  const scriptCommands = ['time', 'get', 'set', 'hget', 'hmget', 'hset', 'hincrby', 'del', 'rpush', 'ltrim', 'lindex', 'lpop', 'pexpire']
  const others = Object.keys(counts).filter((name) => ![...scriptCommands, 'evalsha', 'publish', 'info', 'config|resetstat', 'ping'].includes(name))
  t.same(others, [], 'no other command')
  t.equal(counts.rpush, 40, 'every message appended by the script')
})

t.test('RedisStore.appendMany: the deadline applies to the whole batch', async (t) => {
  const server = await startRedis(t)
  const prefix = runPrefix()
  const redis = server.client(t)
  t.teardown(() => deleteByPrefix(redis, prefix))
  const store = new RedisStore({ redis, prefix, commandTimeout: 300 })
  t.teardown(() => store.close())
  const retention = { maxMessages: 100, messageTtl: 60_000 }
  await store.append('late.warm', '0', Date.now(), retention) // learns the clock
  // A Redis that hangs past the deadline, then resumes: the script then runs late and must write nothing.
  server.pause()
  const appending = store.appendMany([{ channel: 'late.a', json: '1' }, { channel: 'late.b', json: '2' }], Date.now(), retention)
  await t.rejects(appending, /did not answer the append within 300 ms/)
  server.resume()
  await redis.ping()
  t.equal(await redis.exists(`${prefix}{late.a}:msgs`, `${prefix}{late.b}:msgs`), 0, 'nothing of the batch was stored')
  const [a] = await store.appendMany([{ channel: 'late.a', json: '3' }], Date.now(), retention)
  t.equal(a?.seq, 1, 'the store appends again afterwards')
  const read = await store.read('late.a', 'oldest', 10, Date.now())
  t.same(read.messages.map((m) => m.json), ['3'])
})
