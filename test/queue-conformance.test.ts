// The exported queue conformance suites, run against the memory queue store and the memory notifier's queue
// namespace (test/redis-queue-conformance.test.ts runs them against the Redis ones).
import t from 'tap'
import { queueNotifierConformance, queueStoreConformance } from '../lib/conformance/index.js'
import { MemoryBus, MemoryNotifier, MemoryQueueStore } from '../lib/index.js'

queueStoreConformance({ name: 'MemoryQueueStore', test: (name, fn) => t.test(name, fn), createStore: () => new MemoryQueueStore() })

const bus = new MemoryBus()
queueNotifierConformance({ name: 'MemoryNotifier', test: (name, fn) => t.test(name, fn), createNotifier: () => new MemoryNotifier({ bus }) })
