/**
 * Queue wake-ups through a notifier: the `'queue'` namespace (see NotifierNamespace). Run it with the options of
 * `notifierConformance`, against the same notifiers:
 *
 * ```ts
 * queueNotifierConformance({ test, createNotifier: () => new MyNotifier(broker) })
 * ```
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import type { NotifierConformanceOptions } from './index.js'
import type { LongPollNotifier, NotifierEvent, NotifierNamespace } from '../notifiers/types.js'

interface Recorder {
  notifier: LongPollNotifier
  events: Array<{ name: string, event: NotifierEvent, namespace: NotifierNamespace }>
}

export function queueNotifierConformance (options: NotifierConformanceOptions): void {
  const prefix = options.name === undefined ? '' : `${options.name}: `
  const timeout = options.timeout ?? 5_000
  const quietPeriod = options.quietPeriod ?? 100

  function check (name: string, fn: (make: () => Promise<Recorder>) => Promise<void>): void {
    options.test(`${prefix}${name}`, async () => {
      const made: Recorder[] = []
      const make = async (): Promise<Recorder> => {
        const recorder: Recorder = { notifier: await options.createNotifier(), events: [] }
        made.push(recorder)
        await recorder.notifier.start({
          event: (name, event, namespace = 'channel') => { recorder.events.push({ name, event, namespace }) },
          resync: () => {}
        })
        return recorder
      }
      try {
        await fn(make)
      } finally {
        await Promise.all(made.map(async (recorder) => await recorder.notifier.close()))
      }
    })
  }

  async function until (condition: () => boolean, what: string): Promise<void> {
    const deadline = Date.now() + timeout
    while (!condition()) {
      if (Date.now() > deadline) throw new assert.AssertionError({ message: `timed out after ${timeout} ms waiting for ${what}` })
      await new Promise((resolve) => setTimeout(resolve, 2))
    }
  }

  const on = (recorder: Recorder, name: string, namespace: NotifierNamespace): NotifierEvent[] =>
    recorder.events.filter((entry) => entry.name === name && entry.namespace === namespace).map((entry) => entry.event)
  const unique = (): string => `conformance.ns.${randomBytes(6).toString('hex')}`

  check('queue events are delivered in the queue namespace with their fields', async (make) => {
    const a = await make()
    const b = await make()
    const queue = unique()
    await a.notifier.subscribe(queue, 'queue')
    await b.notifier.publish(queue, { type: 'jobs', count: 3 }, 'queue')
    await b.notifier.publish(queue, { type: 'due', in: 1500 }, 'queue')
    await until(() => on(a, queue, 'queue').length === 2, 'two queue events')
    assert.deepEqual(on(a, queue, 'queue'), [{ type: 'jobs', count: 3 }, { type: 'due', in: 1500 }])
    assert.deepEqual(on(a, queue, 'channel'), [], 'nothing in the channel namespace')
  })

  check('a channel and a queue of one name are independent topics', async (make) => {
    const a = await make()
    const b = await make()
    const name = unique()
    await a.notifier.subscribe(name, 'queue')
    // Only the queue is subscribed: a channel event of that name must not come back as a queue event.
    await b.notifier.publish(name, { type: 'message', epoch: 'e', seq: 1 })
    await a.notifier.subscribe(name)
    await a.notifier.unsubscribe(name) // the channel's unsubscribe leaves the queue subscribed
    await new Promise((resolve) => setTimeout(resolve, quietPeriod))
    await b.notifier.publish(name, { type: 'jobs', count: 1 }, 'queue')
    await until(() => on(a, name, 'queue').length === 1, 'the queue event after the channel was unsubscribed')
    assert.deepEqual(on(a, name, 'queue'), [{ type: 'jobs', count: 1 }])
    assert.ok(a.events.every((entry) => entry.namespace === 'channel' ? entry.event.type === 'message' : entry.event.type === 'jobs'), 'every event in the namespace it was published in')
  })

  check('the publisher receives its own queue events when subscribed', async (make) => {
    const a = await make()
    const queue = unique()
    await a.notifier.subscribe(queue, 'queue')
    await a.notifier.publish(queue, { type: 'jobs', count: 1 }, 'queue')
    await until(() => on(a, queue, 'queue').length === 1, 'the event')
  })
}
