import { describe, expect, test } from 'tstyche'
import { LongPollClientError, LongPollWorker, type LongPollJob, type LongPollJobContext, type LongPollWorkerOperation, type LongPollWorkerOptions } from '../../lib/client/index.js'

describe('LongPollWorker', () => {
  test('the handler gets typed jobs and a signal; start() and stop() are promises', () => {
    const worker = new LongPollWorker<{ to: string }>({
      url: 'https://api.example.com/lp',
      queue: 'emails',
      concurrency: 4,
      lease: 30_000,
      retryDelay: (job, error) => {
        expect(job).type.toBe<LongPollJob<{ to: string }>>()
        expect(error).type.toBe<unknown>()
        return 1000 * job.attempt
      },
      async handler (job, context) {
        expect(job.data.to).type.toBe<string>()
        expect(job.attempt).type.toBe<number>()
        expect(job.receipt).type.toBe<string>()
        expect(context).type.toBe<LongPollJobContext>()
        expect(context.signal).type.toBe<AbortSignal>()
      },
      onError: (error, { operation, job }) => {
        expect(error).type.toBe<unknown>()
        expect(operation).type.toBe<LongPollWorkerOperation>()
        expect(job).type.toBe<LongPollJob<{ to: string }> | undefined>()
      }
    })
    expect(worker.start()).type.toBe<Promise<void>>()
    expect(worker.stop()).type.toBe<Promise<void>>()
    expect(worker.active).type.toBe<number>()
    expect<LongPollWorkerOperation>().type.toBe<'claim' | 'ack' | 'nack' | 'extend' | 'handler'>()
    expect(new LongPollClientError(409, 'FST_LONGPOLL_LEASE_LOST', 'lost').status).type.toBe<number>()
  })

  test('options it does not know, and missing ones, are rejected', () => {
    const handler = (): void => {}
    expect<LongPollWorkerOptions>().type.toBeAssignableFrom({ url: new URL('https://x'), queue: 'q', handler })
    expect<LongPollWorkerOptions>().type.not.toBeAssignableFrom({ url: 'https://x', queue: 'q' })
    expect<LongPollWorkerOptions>().type.not.toBeAssignableFrom({ url: 'https://x', handler })
    expect<LongPollWorkerOptions>().type.not.toBeAssignableFrom({ url: 'https://x', queue: 'q', handler, concurrency: '4' })
    expect(new LongPollWorker({ url: 'https://x', queue: 'q', handler, concurency: 4 })).type.toRaiseError()
  })
})
