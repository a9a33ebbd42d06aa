// The exported conformance suites, run against the Redis store and notifier, on a real redis-server this test
// starts (test/conformance.test.ts runs them against the memory ones).
import t from 'tap'
import { storeConformance, notifierConformance } from '../lib/conformance/index.js'
import { RedisNotifier, RedisStore } from '../lib/index.js'
import { deleteByPrefix, runPrefix, startRedis } from './helpers/redis.js'

t.test('Redis', async (t) => {
  const server = await startRedis(t)
  const redis = server.client(t)
  const observer = server.client(t)
  const prefix = runPrefix()
  t.teardown(() => deleteByPrefix(redis, prefix))
  storeConformance({ name: 'RedisStore', test: (name, fn) => t.test(name, fn), createStore: () => new RedisStore({ redis, prefix }) })
  notifierConformance({
    name: 'RedisNotifier',
    test: (name, fn) => t.test(name, fn),
    // Each notifier gets a publisher of its own, as separate processes would.
    createNotifier: () => new RedisNotifier({ redis: server.client(t), prefix }),
    interrupt: async () => { await observer.client('KILL', 'TYPE', 'pubsub') },
    outage: { stop: async () => { await server.kill() }, start: async () => { await server.start() } }
  })
})
