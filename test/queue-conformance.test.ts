// The exported queue conformance suites, run against both queue stores of this package and both notifiers'
// queue namespace (the Redis ones on a real redis-server this test starts).
import t from 'tap'
import { queueNotifierConformance, queueStoreConformance } from '../lib/conformance/index.js'
import { MemoryBus, MemoryNotifier, MemoryQueueStore, RedisNotifier, RedisQueueStore } from '../lib/index.js'
import { deleteByPrefix, runPrefix, startRedis } from './helpers/redis.js'

queueStoreConformance({ name: 'MemoryQueueStore', test: (name, fn) => t.test(name, fn), createStore: () => new MemoryQueueStore() })

const bus = new MemoryBus()
queueNotifierConformance({ name: 'MemoryNotifier', test: (name, fn) => t.test(name, fn), createNotifier: () => new MemoryNotifier({ bus }) })

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

t.test('MemoryQueueStore drops a drained queue, and keeps nothing for claims on an unknown one', async (t) => {
  const store = new MemoryQueueStore()
  await store.claim('never', { limit: 1, lease: 1000, maxAttempts: 5 })
  t.equal(store.size, 0, 'a claim on an unknown queue creates nothing')
  await store.enqueue('drain', '1', { delay: 0, keyTtl: 1000 })
  t.equal(store.size, 1)
  const { jobs } = await store.claim('drain', { limit: 1, lease: 1000, maxAttempts: 5 })
  await store.ack('drain', jobs.map((job) => job.receipt))
  t.equal(store.size, 0, 'dropped once its last job is acked')
})
