// The exported conformance suites, run against the memory store and notifier (test/redis-conformance.test.ts
// runs them against the Redis ones).
import t from 'tap'
import { storeConformance, notifierConformance } from '../lib/conformance/index.js'
import { MemoryBus, MemoryNotifier, MemoryStore } from '../lib/index.js'

// Each MemoryStore is a backend of its own: nothing for two of them to share.
storeConformance({ name: 'MemoryStore', test: (name, fn) => t.test(name, fn), createStore: () => new MemoryStore(), separateBackends: true })

const bus = new MemoryBus()
notifierConformance({ name: 'MemoryNotifier', test: (name, fn) => t.test(name, fn), createNotifier: () => new MemoryNotifier({ bus }) })
