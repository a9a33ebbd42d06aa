import Fastify, { type FastifyRequest } from 'fastify'
import { describe, expect, test } from 'tstyche'
import longpoll, {
  fastifyLongpoll, MemoryNotifier, MemoryStore, RedisNotifier, RedisStore,
  type ChannelEvent, type LongPollNotifier, type LongPollOptions, type LongPollStats, type LongPollStore, type PushResult, type RedisClient, type LongPollErrorCode
} from '../../lib/index.js'
import { Cluster, Redis } from 'ioredis'
import { LongPollClient, type LongPollMessage } from '../../lib/client/index.js'

describe('the plugin', () => {
  test('registers with its options, and rejects what is not one', () => {
    const app = Fastify()
    expect(app.register(longpoll, { prefix: '/lp', timeout: 30_000, maxTimeout: 60_000, maxBatch: 100 })).type.not.toRaiseError()
    expect(app.register(fastifyLongpoll, { store: new MemoryStore(), notifier: new MemoryNotifier() })).type.not.toRaiseError()
    expect(app.register(longpoll, { maxTimout: 1000 })).type.toRaiseError()
    expect(app.register(longpoll, { timeout: '30s' })).type.toRaiseError()
    expect(app.register(longpoll, { store: {} })).type.toRaiseError()
  })

  test('authorize gets the request and the action', () => {
    const options: LongPollOptions = {
      authorize: async (request, { action, channel }) => {
        expect(request).type.toBe<FastifyRequest>()
        expect(action).type.toBe<'poll' | 'push' | 'disconnect' | 'enqueue' | 'claim' | 'settle'>()
        expect(channel).type.toBe<string>()
        return true
      }
    }
    expect(options).type.toBeAssignableTo<LongPollOptions>()
    expect<LongPollOptions>().type.not.toBeAssignableFrom({ authorize: () => 'yes' })
  })
})

describe('the decorator', () => {
  test('app.longpoll is typed through declaration merging', () => {
    const app = Fastify()
    expect(app.longpoll.push('user-42', { text: 'hi' })).type.toBe<Promise<PushResult>>()
    expect(app.longpoll.disconnect('user-42')).type.toBe<Promise<void>>()
    expect(app.longpoll.stats()).type.toBe<LongPollStats>()
    expect(app.longpoll.stats().heldPolls).type.toBe<number>()
    expect(app.longpoll.push(42, 'x')).type.toRaiseError()
    expect(app.longpoll.publish).type.toRaiseError()
  })
})

describe('stores and notifiers', () => {
  test('the built-in ones implement the exported interfaces', () => {
    expect(new MemoryStore()).type.toBeAssignableTo<LongPollStore>()
    expect(new MemoryNotifier()).type.toBeAssignableTo<LongPollNotifier>()
  })

  test('a third-party store must implement every method', () => {
    expect<LongPollStore>().type.not.toBeAssignableFrom({ append: async () => ({ epoch: 'e', seq: 1, time: 0 }) })
  })

  test('the Redis ones take an ioredis Redis or Cluster, and nothing else', () => {
    expect<Redis>().type.toBeAssignableTo<RedisClient>()
    expect<Cluster>().type.toBeAssignableTo<RedisClient>()
    expect(new RedisStore({ redis: new Redis({ lazyConnect: true }) })).type.toBeAssignableTo<LongPollStore>()
    expect(new RedisNotifier({ redis: new Cluster([], { lazyConnect: true }) })).type.toBeAssignableTo<LongPollNotifier>()
    expect(new RedisStore({ redis: {} })).type.toRaiseError()
    expect(new RedisNotifier({ redis: 'redis://localhost' })).type.toRaiseError()
  })

  test('events are a closed union', () => {
    expect<ChannelEvent>().type.toBeAssignableFrom({ type: 'disconnect' as const })
    expect<ChannelEvent>().type.not.toBeAssignableFrom({ type: 'message' as const })
  })
})

describe('the client', () => {
  test('iterates typed messages', async () => {
    const client = new LongPollClient<{ text: string }>({ url: 'http://localhost/lp', channel: 'room' })
    for await (const message of client) {
      expect(message).type.toBe<LongPollMessage<{ text: string }>>()
      expect(message.data.text).type.toBe<string>()
    }
    expect(new LongPollClient({ url: 'http://localhost/lp' })).type.toRaiseError()
  })
})

describe('operations options', () => {
  test('routes, idempotencyTtl and metrics', () => {
    const app = Fastify()
    expect(app.register(longpoll, { routes: { push: false }, idempotencyTtl: 60_000, metrics: true })).type.not.toRaiseError()
    expect(app.register(longpoll, { metrics: { prefix: 'chat_' } })).type.not.toRaiseError()
    expect(app.register(longpoll, { routes: { pull: false } })).type.toRaiseError()
    expect(app.register(longpoll, { routes: { push: 'no' } })).type.toRaiseError()
    expect(app.register(longpoll, { metrics: 'yes' })).type.toRaiseError()
  })

  test('push takes an idempotency key and may answer a duplicate', () => {
    const app = Fastify()
    expect(app.longpoll.push('a', 1, { key: 'order-7' })).type.toBe<Promise<PushResult>>()
    expect<PushResult['duplicate']>().type.toBe<true | undefined>()
    expect(app.longpoll.push('a', 1, { id: 'x' })).type.toRaiseError()
  })

  test('LongPollErrorCode is the union of the package\'s codes', () => {
    expect<'FST_LONGPOLL_BAD_CURSOR'>().type.toBeAssignableTo<LongPollErrorCode>()
    expect<'FST_LONGPOLL_BAD_IDEMPOTENCY_KEY'>().type.toBeAssignableTo<LongPollErrorCode>()
    expect<'FST_ERR_VALIDATION'>().type.not.toBeAssignableTo<LongPollErrorCode>()
    expect<string>().type.not.toBeAssignableTo<LongPollErrorCode>()
  })
})

describe('presence', () => {
  test('push answers online; online(channel) is a Promise<boolean>; publish may resolve a receiver count', () => {
    const app = Fastify()
    expect<PushResult['online']>().type.toBe<boolean>()
    expect(app.longpoll.online('a')).type.toBe<Promise<boolean>>()
    expect(app.register(longpoll, { presenceWindow: 2_000, maxHeldPollsPerClient: 20, clientKey: (request) => request.ip })).type.not.toRaiseError()
    expect<ReturnType<LongPollNotifier['publish']>>().type.toBe<Promise<number | void>>()
  })
})
