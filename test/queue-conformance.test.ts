// The exported queue conformance suites, run against MemoryQueueStore and MemoryNotifier's queue namespace
// (redis-queue-conformance.test.ts runs them on a real Redis).
import t from 'tap'
import { queueNotifierConformance, queueStoreConformance } from '../lib/conformance/index.js'
import { MemoryBus, MemoryNotifier, MemoryQueueStore } from '../lib/index.js'

queueStoreConformance({ name: 'MemoryQueueStore', test: (name, fn) => t.test(name, fn), createStore: () => new MemoryQueueStore() })

const bus = new MemoryBus()
queueNotifierConformance({ name: 'MemoryNotifier', test: (name, fn) => t.test(name, fn), createNotifier: () => new MemoryNotifier({ bus }) })

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
