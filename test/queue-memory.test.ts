// Contract §3 on the default MemoryQueueStore and MemoryNotifier: one instance, and two instances of one
// process sharing a store and a bus.
import t from 'tap'
import { serve } from './helpers/app.js'
import { queueSuite } from './helpers/queue-suite.js'
import { MemoryBus, MemoryNotifier, MemoryQueueStore } from '../lib/index.js'

queueSuite(t, 'memory, one instance', async (t, options = {}) => {
  const one = await serve(t, options)
  return [one, one]
})

queueSuite(t, 'memory, two instances', async (t, options = {}) => {
  const queueStore = new MemoryQueueStore()
  const bus = new MemoryBus()
  const a = await serve(t, { ...options, queueStore, notifier: new MemoryNotifier({ bus }) })
  const b = await serve(t, { ...options, queueStore, notifier: new MemoryNotifier({ bus }) })
  return [a, b]
})
