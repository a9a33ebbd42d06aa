import { describe, expect, test } from 'tstyche'
import { LongPollClient, LongPollClientError, type LongPollClientOptions, type LongPollErrorCode, type LongPollMessage } from '../../lib/client/index.js'

describe('LongPollClientOptions', () => {
  test('takes channel or channels', () => {
    expect<LongPollClientOptions>().type.toBeAssignableFrom({ url: '/lp', channel: 'room' })
    expect<LongPollClientOptions>().type.toBeAssignableFrom({ url: '/lp', channels: ['room', 'inbox'], share: true })
    expect<LongPollClientOptions>().type.toBeAssignableFrom({ url: new URL('http://localhost/lp'), channels: [] })
  })

  test('channel and channels are exclusive, and one of them is required', () => {
    expect<LongPollClientOptions>().type.not.toBeAssignableFrom({ url: '/lp', channel: 'room', channels: ['inbox'] })
    expect<LongPollClientOptions>().type.not.toBeAssignableFrom({ url: '/lp' })
    expect(new LongPollClient({ url: '/lp', channel: 'a', channels: ['b'] })).type.toRaiseError()
  })

  test('a cursor per channel: a string for one, the aligned string or a record for many', () => {
    expect<LongPollClientOptions>().type.toBeAssignableFrom({ url: '/lp', channel: 'room', cursor: 'latest' })
    expect<LongPollClientOptions>().type.toBeAssignableFrom({ url: '/lp', channels: ['a', 'b'], cursor: 'k.1,latest' })
    expect<LongPollClientOptions>().type.toBeAssignableFrom({ url: '/lp', channels: ['a', 'b'], cursor: { a: 'k.1' } })
    expect<LongPollClientOptions>().type.not.toBeAssignableFrom({ url: '/lp', channel: 'room', cursor: { room: 'k.1' } })
  })

  test('onGap and onDisconnect name the channel', () => {
    expect(new LongPollClient({
      url: '/lp',
      channels: ['a'],
      onGap: (channel) => { expect(channel).type.toBe<string>() },
      onDisconnect: (channel) => { expect(channel).type.toBe<string>() }
    })).type.not.toRaiseError()
  })
})

describe('LongPollClient', () => {
  test('messages carry their channel', async () => {
    const client = new LongPollClient<{ text: string }>({ url: '/lp', channels: ['a', 'b'] })
    for await (const message of client) {
      expect(message).type.toBe<LongPollMessage<{ text: string }>>()
      expect(message.channel).type.toBe<string>()
      expect(message.data.text).type.toBe<string>()
    }
  })

  test('subscribe, unsubscribe, channels and cursors', () => {
    const client = new LongPollClient({ url: '/lp', channel: 'a' })
    expect(client.subscribe('b', { cursor: 'latest' })).type.toBe<void>()
    expect(client.subscribe('c')).type.toBe<void>()
    expect(client.unsubscribe('b')).type.toBe<void>()
    expect(client.channels).type.toBe<string[]>()
    expect(client.cursor).type.toBe<string | undefined>()
    expect(client.cursors).type.toBe<Record<string, string>>()
    expect(client.subscribe('b', { from: 'x' })).type.toRaiseError()
    expect(client.subscribe(42)).type.toRaiseError()
  })

  test('LongPollClientError.code takes the package\'s codes, and others', () => {
    const err = new LongPollClientError(409, 'FST_LONGPOLL_LEASE_LOST', 'lost')
    expect(err.code).type.toBeAssignableTo<LongPollErrorCode | (string & {}) | undefined>()
    expect('FST_LONGPOLL_BAD_CURSOR' as const).type.toBeAssignableTo<LongPollErrorCode>()
    expect('FST_NOT_OURS' as const).type.not.toBeAssignableTo<LongPollErrorCode>()
  })
})
