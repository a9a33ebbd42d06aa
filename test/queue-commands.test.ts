// Q5, counted by Redis itself (INFO commandstats): an enqueue costs each instance O(1) store operations however
// many claims it holds, because an announcement of n jobs wakes n claims, not all of them.
import t from 'tap'
import type { Redis } from 'ioredis'
import { serve, until } from './helpers/app.js'
import { heldClaims } from './helpers/queue-suite.js'
import { claim, enqueue } from './helpers/queue.js'
import { deleteByPrefix, runPrefix, startRedis } from './helpers/redis.js'
import { RedisNotifier, RedisQueueStore, RedisStore } from '../lib/index.js'

t.test('scripts run per enqueue do not grow with the number of held claims', async (t) => {
  const server = await startRedis(t)
  const prefix = runPrefix()
  const observer = server.client(t)
  t.teardown(() => deleteByPrefix(observer, prefix))
  const clients: Redis[] = []
  const instance = async (): Promise<Awaited<ReturnType<typeof serve>>> => {
    const redis = server.client(t)
    clients.push(redis)
    return await serve(t, { store: new RedisStore({ redis, prefix }), notifier: new RedisNotifier({ redis, prefix }), queueStore: new RedisQueueStore({ redis, prefix }) })
  }
  const a = await instance()
  const b = await instance()

  const scripts = async (): Promise<number> => {
    const info = await observer.info('commandstats')
    return Number(/^cmdstat_evalsha:calls=(\d+)/m.exec(info)?.[1] ?? 0) + Number(/^cmdstat_eval:calls=(\d+)/m.exec(info)?.[1] ?? 0)
  }

  /** Scripts run for `jobs` enqueues (one at a time, each answered before the next) with `waiting` claims held per instance. */
  async function measure (queue: string, waiting: number, jobs: number): Promise<number> {
    // Claims still held at the end are answered 503 when the apps close.
    for (const app of [a, b]) for (let i = 0; i < waiting; i++) void claim(app.base, queue, { timeout: 30_000 }).catch(() => {})
    await until(() => heldClaims(a) === waiting && heldClaims(b) === waiting, 20_000, 'held claims')
    await Promise.all([a, b].map(async (app) => await claim(app.base, queue, { timeout: 0 }))) // first claims answered
    await Promise.all(clients.map(async (redis) => await redis.ping()))
    await observer.config('RESETSTAT')
    for (let i = 0; i < jobs; i++) {
      await enqueue(i % 2 === 0 ? a.base : b.base, queue, i)
    }
    await until(() => heldClaims(a) + heldClaims(b) === 2 * waiting - jobs, 10_000, `${jobs} claims answered`)
    await Promise.all(clients.map(async (redis) => await redis.ping()))
    const count = await scripts()
    return count
  }

  const jobs = 6
  const few = await measure('commands.few', jobs / 2, jobs)
  const many = await measure('commands.many', 100, jobs)
  t.comment(`scripts for ${jobs} enqueues: ${few} with ${jobs / 2} claims held per instance, ${many} with 100`)
  // Per enqueue: the enqueue itself, and one store claim per instance (one of which wins the job).
  const bound = jobs * 3 + 2
  t.ok(few <= bound, `with ${jobs / 2} held claims per instance: ${few} <= ${bound}`)
  t.ok(many <= bound, `with 100 held claims per instance: ${many} <= ${bound} (not one per held claim)`)
})
