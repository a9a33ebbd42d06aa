import Fastify from 'fastify'
import { describe, expect, test } from 'tstyche'
import longpoll, { MemoryStore, RedisStore, type AppendItem, type AppendResult, type LongPollStore, type PushManyMessage, type PushResult } from '../../lib/index.js'
import { Redis } from 'ioredis'

describe('app.longpoll.pushMany', () => {
  test('takes { channel, data, key? } messages and answers push results', () => {
    const app = Fastify()
    expect(app.longpoll.pushMany([{ channel: 'a', data: { text: 'hi' } }, { channel: 'b', data: 1, key: 'order-7' }])).type.toBe<Promise<PushResult[]>>()
    const readonlyBatch: readonly PushManyMessage[] = [{ channel: 'a', data: null }]
    expect(app.longpoll.pushMany(readonlyBatch)).type.not.toRaiseError()
    expect(app.longpoll.pushMany([])).type.not.toRaiseError()
  })

  test('rejects what is not a message', () => {
    const app = Fastify()
    expect(app.longpoll.pushMany([{ channel: 42, data: 1 }])).type.toRaiseError()
    expect(app.longpoll.pushMany([{ data: 1 }])).type.toRaiseError()
    expect(app.longpoll.pushMany([{ channel: 'a', data: 1, key: 7 }])).type.toRaiseError()
    expect(app.longpoll.pushMany({ channel: 'a', data: 1 })).type.toRaiseError()
    expect(app.longpoll.pushMany('a', 1)).type.toRaiseError()
  })

  test('maxPushMany is a number option', () => {
    const app = Fastify()
    expect(app.register(longpoll, { maxPushMany: 500 })).type.not.toRaiseError()
    expect(app.register(longpoll, { maxPushMany: '500' })).type.toRaiseError()
  })
})

describe('LongPollStore.appendMany', () => {
  test('is optional: a store without it is still a store', () => {
    const store = {
      append: async (): Promise<AppendResult> => ({ epoch: 'e', seq: 1, time: 0 }),
      read: async () => ({ epoch: 'e', messages: [], seq: 0, gap: false }),
      delete: async () => {},
      close: async () => {}
    }
    expect(store).type.toBeAssignableTo<LongPollStore>()
  })

  test('the built-in stores implement it, with its signature', () => {
    expect(new MemoryStore().appendMany).type.toBe<(items: AppendItem[], time: number, retention: { maxMessages: number, messageTtl: number }) => Promise<AppendResult[]>>()
    expect(new RedisStore({ redis: new Redis({ lazyConnect: true }) }).appendMany([{ channel: 'a', json: '1' }], 0, { maxMessages: 1, messageTtl: 1 })).type.toBe<Promise<AppendResult[]>>()
    expect<LongPollStore>().type.not.toBeAssignableFrom({
      append: async (): Promise<AppendResult> => ({ epoch: 'e', seq: 1, time: 0 }),
      read: async () => ({ epoch: 'e', messages: [], seq: 0, gap: false }),
      delete: async () => {},
      close: async () => {},
      appendMany: async () => 'not results'
    })
  })
})
