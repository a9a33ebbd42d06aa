import Fastify from 'fastify'
import { describe, expect, test } from 'tstyche'
import longpoll, {
  MemoryQueueStore, RedisQueueStore,
  type ClaimAnswerBody, type DeadLetter, type EnqueueResult, type LongPollNotifier, type LongPollQueueStore, type NotifierNamespace, type QueueCounts, type QueueEvent
} from '../../lib/index.js'
import { queueNotifierConformance, queueStoreConformance } from '../../lib/conformance/index.js'
import { Redis } from 'ioredis'

describe('queues', () => {
  test('queue options type-check, and what is not one is rejected', () => {
    const app = Fastify()
    expect(app.register(longpoll, { queueStore: new MemoryQueueStore(), lease: 30_000, maxLease: 600_000, maxAttempts: 5, routes: { queues: false } })).type.not.toRaiseError()
    expect(app.register(longpoll, { queueStore: new RedisQueueStore({ redis: new Redis() }) })).type.not.toRaiseError()
    expect(app.register(longpoll, { routes: { queue: false } })).type.toRaiseError()
    expect(app.register(longpoll, { lease: '30s' })).type.toRaiseError()
    expect(app.register(longpoll, { queueStore: {} })).type.toRaiseError()
  })

  test('app.longpoll.queue(q) is typed', async () => {
    const app = Fastify()
    const queue = app.longpoll.queue('emails')
    expect(queue.enqueue({ to: 'a@b' }, { delay: 1000, key: 'k' })).type.toBe<Promise<EnqueueResult>>()
    expect(queue.stats()).type.toBe<Promise<QueueCounts>>()
    expect(queue.dead()).type.toBe<Promise<DeadLetter[]>>()
    expect(queue.retryDead()).type.toBe<Promise<number>>()
    expect(queue.enqueue(1, { delay: 'soon' })).type.toRaiseError()
    expect(app.longpoll.stats().heldClaims).type.toBe<number>()
  })

  test('the built-in queue stores implement the exported interface; a third-party one must implement every method', () => {
    expect(new MemoryQueueStore()).type.toBeAssignableTo<LongPollQueueStore>()
    expect(new RedisQueueStore({ redis: new Redis() })).type.toBeAssignableTo<LongPollQueueStore>()
    expect({ enqueue: async () => ({ id: '1', duplicate: false }) }).type.not.toBeAssignableTo<LongPollQueueStore>()
    expect(queueStoreConformance).type.toBeCallableWith({ test: (_name: string, _fn: () => Promise<void>) => {}, createStore: () => new MemoryQueueStore() })
    expect(queueNotifierConformance).type.toBeCallableWith({ test: (_name: string, _fn: () => Promise<void>) => {}, createNotifier: () => ({}) as LongPollNotifier })
  })

  test('queue events and namespaces are closed unions', () => {
    expect<QueueEvent>().type.toBeAssignableFrom({ type: 'jobs' as const, count: 1 })
    expect<QueueEvent>().type.not.toBeAssignableFrom({ type: 'jobs' as const })
    expect<NotifierNamespace>().type.toBe<'channel' | 'queue'>()
    expect<ClaimAnswerBody['status']>().type.toBe<'ok' | 'timeout'>()
  })
})
