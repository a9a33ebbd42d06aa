// Contract §3 on RedisQueueStore and RedisNotifier (a real redis-server): one instance, and two instances with
// clients of their own, as two processes would have; then Redis going away under held claims and enqueues.
import t from 'tap'
import { serve, until } from './helpers/app.js'
import { heldClaims, queueSuite } from './helpers/queue-suite.js'
import { claim, counts, enqueue } from './helpers/queue.js'
import { deleteByPrefix, runPrefix, startRedis, type RedisServer } from './helpers/redis.js'
import { RedisNotifier, RedisQueueStore, RedisStore, type LongPollOptions } from '../lib/index.js'
import type { Test } from 'tap'

async function instance (t: Test, server: RedisServer, prefix: string, options: LongPollOptions = {}): Promise<Awaited<ReturnType<typeof serve>>> {
  const redis = server.client(t)
  return await serve(t, {
    store: new RedisStore({ redis, prefix }),
    notifier: new RedisNotifier({ redis, prefix }),
    queueStore: new RedisQueueStore({ redis, prefix, commandTimeout: 2_000 }),
    ...options
  })
}

t.test('Redis', async (t) => {
  const server = await startRedis(t)
  const prefix = runPrefix()
  const cleaner = server.client(t)
  t.teardown(() => deleteByPrefix(cleaner, prefix))

  queueSuite(t, 'Redis, one instance', async (t, options = {}) => {
    const one = await instance(t, server, prefix, options)
    return [one, one]
  })

  queueSuite(t, 'Redis, two instances', async (t, options = {}) => {
    return [await instance(t, server, prefix, options), await instance(t, server, prefix, options)]
  })
})

t.test('Redis restarts', async (t) => {
  const server = await startRedis(t)
  const prefix = runPrefix()

  t.test('a claim held across a Redis restart is answered by a job enqueued after it', async (t) => {
    const a = await instance(t, server, prefix)
    const b = await instance(t, server, prefix)
    const queue = 'restart.held'
    const held = claim(b.base, queue, { timeout: 30_000 })
    await until(() => heldClaims(b) === 1, 10_000, 'a held claim')
    // Its first store claim was sent on B's connection before this one: once this answers, that one has too,
    // and the claim is waiting (a claim whose first store claim fails answers 503, as a poll does).
    t.same((await claim(b.base, queue, { timeout: 0 })).body.jobs, [])
    await server.kill()
    await server.start()
    // The instances' clients reconnect by themselves; enqueue once A's is back (before, it answers 503).
    let stored = await enqueue(a.base, queue, 'after the restart')
    const deadline = Date.now() + 20_000
    while (stored.status === 503 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100))
      stored = await enqueue(a.base, queue, 'after the restart')
    }
    t.equal(stored.status, 201)
    const answer = await held
    t.equal(answer.status, 200, `the held claim was not failed by the restart: ${JSON.stringify(answer.body)}`)
    t.same(answer.body.jobs.map((job: any) => job.data), ['after the restart'])
  })

  t.test('an enqueue while Redis is down answers 503 with Retry-After and is not stored later', async (t) => {
    const a = await instance(t, server, prefix)
    const queue = 'restart.down'
    t.equal((await enqueue(a.base, queue, 'before')).status, 201, 'Redis up: stored')
    t.equal((await claim(a.base, queue, { timeout: 0 })).body.jobs.length, 1)
    await server.kill()
    const down = await enqueue(a.base, queue, 'while down')
    t.equal(down.status, 503)
    t.equal(down.body.code, 'FST_LONGPOLL_STORE_UNAVAILABLE')
    t.ok(Number(down.headers.get('retry-after')) >= 1, 'Retry-After')
    const claimDown = await claim(a.base, queue, { timeout: 0 })
    t.equal(claimDown.status, 503, 'a claim while Redis is down answers 503 too')
    await server.start()
    const back = Date.now() + 20_000
    let seen = await counts(a.base, queue)
    while (seen.status !== 200 && Date.now() < back) {
      await new Promise((resolve) => setTimeout(resolve, 100))
      seen = await counts(a.base, queue)
    }
    // The restarted server has no persistence: only a late write of the refused enqueue could show up here.
    t.same(seen.body, { waiting: 0, delayed: 0, leased: 0, dead: 0 }, 'the refused enqueue never ran')
    t.same((await claim(a.base, queue, { timeout: 300 })).body, { status: 'timeout', jobs: [] })
  })

  t.test('an enqueue Redis does not answer in time (a hung server) answers 503, and its late run stores nothing', async (t) => {
    const a = await instance(t, server, prefix)
    const queue = 'restart.hung'
    t.equal((await enqueue(a.base, queue, 'warm-up')).status, 201, 'the store knows Redis\'s clock')
    server.pause()
    let resumed = false
    t.teardown(() => { if (!resumed) server.resume() })
    const started = Date.now()
    const hung = await enqueue(a.base, queue, 'while hung')
    t.equal(hung.status, 503)
    t.ok(Date.now() - started >= 1_500, 'after the store\'s commandTimeout (2 s)')
    server.resume()
    resumed = true
    // The script was sent before the timeout and runs now, past its deadline: it must write nothing.
    const seen = await counts(a.base, queue)
    t.same(seen.body, { waiting: 1, delayed: 0, leased: 0, dead: 0 }, 'only the warm-up job')
    t.same((await claim(a.base, queue, { timeout: 0, limit: 10 })).body.jobs.map((job: any) => job.data), ['warm-up'])
  })
})
