// The exported queue conformance suites, run against RedisQueueStore and RedisNotifier's queue namespace on a
// real redis-server this test starts (test/queue-conformance.test.ts runs them against the memory ones).
import t from 'tap'
import { queueNotifierConformance, queueStoreConformance } from '../lib/conformance/index.js'
import { RedisNotifier, RedisQueueStore } from '../lib/index.js'
import { deleteByPrefix, runPrefix, startRedis } from './helpers/redis.js'

t.test('Redis', async (t) => {
  const server = await startRedis(t)
  const redis = server.client(t)
  const prefix = runPrefix()
  t.teardown(() => deleteByPrefix(redis, prefix))
  queueStoreConformance({ name: 'RedisQueueStore', test: (name, fn) => t.test(name, fn), createStore: () => new RedisQueueStore({ redis: server.client(t), prefix }) })
  queueNotifierConformance({ name: 'RedisNotifier', test: (name, fn) => t.test(name, fn), createNotifier: () => new RedisNotifier({ redis: server.client(t), prefix }) })
  t.test('a drained queue leaves no key behind', async (t) => {
    const store = new RedisQueueStore({ redis, prefix })
    await store.enqueue('drain', '1', { delay: 0, keyTtl: 1000 })
    const { jobs } = await store.claim('drain', { limit: 1, lease: 1000, maxAttempts: 5 })
    await store.ack('drain', jobs.map((job) => job.receipt))
    t.same(await redis.keys(`${prefix}q:{drain}*`), [])
  })
})
