// The exported conformance suites, run against every store and notifier of this package: the memory ones and
// the Redis ones (on a real redis-server this test starts).
import t from 'tap'
import { storeConformance, notifierConformance } from '../lib/conformance/index.js'
import { MemoryBus, MemoryNotifier, MemoryStore, RedisNotifier, RedisStore } from '../lib/index.js'
import { deleteByPrefix, runPrefix, startRedis } from './helpers/redis.js'

storeConformance({ name: 'MemoryStore', test: (name, fn) => t.test(name, fn), createStore: () => new MemoryStore() })

const bus = new MemoryBus()
notifierConformance({ name: 'MemoryNotifier', test: (name, fn) => t.test(name, fn), createNotifier: () => new MemoryNotifier({ bus }) })

t.test('Redis', async (t) => {
  const server = await startRedis(t)
  const redis = server.client(t)
  const prefix = runPrefix()
  t.teardown(() => deleteByPrefix(redis, prefix))
  storeConformance({ name: 'RedisStore', test: (name, fn) => t.test(name, fn), createStore: () => new RedisStore({ redis, prefix }) })
  notifierConformance({
    name: 'RedisNotifier',
    test: (name, fn) => t.test(name, fn),
    // Each notifier gets a publisher of its own, as separate processes would.
    createNotifier: () => new RedisNotifier({ redis: server.client(t), prefix })
  })
})
