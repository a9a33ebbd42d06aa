// A wake-up whose store read fails is retried with a bounded back-off, and the retry's timer ends with the
// channel's last poll. The store is a MemoryStore behind a wrapper whose read fails on demand: a fault injector
// around the real store, not a stand-in for it (test/redis-wake-retry.test.ts does the same with a real Redis).
import t, { type Test } from 'tap'
import { heldPolls, poll, push, serve } from './helpers/app.js'
import { MemoryStore, type LongPollStore } from '../lib/index.js'

type Read = LongPollStore['read']

/** A MemoryStore whose reads fail while `failing` is set; every failure is timed, and can be waited for. */
class FlakyStore implements LongPollStore {
  failing = false
  reads = 0
  readonly failures: number[] = []
  private readonly inner = new MemoryStore()
  private waiters: Array<{ n: number, resolve: () => void }> = []

  append: LongPollStore['append'] = async (...args) => await this.inner.append(...args)
  delete: LongPollStore['delete'] = async (channel) => await this.inner.delete(channel)
  close: LongPollStore['close'] = async () => await this.inner.close()

  read: Read = async (...args) => {
    this.reads++
    if (!this.failing) return await this.inner.read(...args)
    this.failures.push(performance.now())
    this.waiters = this.waiters.filter((waiter) => {
      if (this.failures.length < waiter.n) return true
      waiter.resolve()
      return false
    })
    throw new Error('injected read failure')
  }

  /** Resolves once `n` reads have failed in all; rejects after `ms` (the test then fails, it does not hang). */
  async untilFailures (n: number, ms = 10_000): Promise<void> {
    if (this.failures.length >= n) return
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`only ${this.failures.length} of ${n} reads failed within ${ms} ms`)), ms)
      this.waiters.push({ n, resolve: () => { clearTimeout(timer); resolve() } })
    })
  }
}

/** A poll held with a concrete cursor, its first read done: from now on, only a wake-up reads for it. */
async function holdOne (t: Test, store: FlakyStore, base: string, app: Parameters<typeof heldPolls>[0], channel: string, timeout: number, init: RequestInit = {}): Promise<{ held: Promise<Awaited<ReturnType<typeof poll>>> }> {
  const { cursor } = (await poll(base, { channel, cursor: 'latest', timeout: 0 })).body
  const reads = store.reads
  const held = poll(base, { channel, cursor, timeout }, init)
  held.catch(() => {}) // an aborted poll rejects; the test awaits it only when it should answer
  await heldPolls(app, 1)
  t.equal(store.reads, reads + 1, 'the held poll made its first read')
  // The MemoryStore answers within the same turn; one more turn and the poll is past its read, `held`.
  await new Promise((resolve) => setImmediate(resolve))
  return { held } // wrapped: an async function returning the promise itself would wait for the answer
}

t.test('a wake-up whose read fails is retried, backing off, until the store answers', async (t) => {
  const store = new FlakyStore()
  const { app, base } = await serve(t, { store })
  const channel = 'retry.one'
  const { held } = await holdOne(t, store, base, app, channel, 30_000)

  store.failing = true
  const pushed = await push(base, channel, 'pushed while reads fail')
  t.equal(pushed.status, 200, 'the push is stored (only reads fail)')
  await store.untilFailures(4) // the wake-up's read, then three retries
  store.failing = false
  const started = performance.now()
  const answer = await held
  t.equal(answer.status, 200)
  t.equal(answer.body.status, 'ok', 'answered with the message by a retry, not at the timeout')
  t.same(answer.body.messages.map((m: any) => [m.id, m.data]), [[pushed.body.id, 'pushed while reads fail']])
  t.ok(performance.now() - started < 10_000, 'after the store answers again, within the next back-off')

  // Timers never fire early, so the gaps between failed reads are at least the back-off: 50, 100, 200 ms.
  const gaps = store.failures.slice(1, 4).map((at, i) => at - (store.failures[i] as number))
  t.ok(gaps.every((gap, i) => gap >= 50 * 2 ** i - 2), `the back-off doubles from 50 ms (gaps: ${gaps.map((gap) => Math.round(gap)).join(', ')} ms)`)
  t.equal(app.longpoll.stats().heldPolls, 0)
})

t.test('a retry re-reads every group of the channel: polls with different limits all get their messages', async (t) => {
  const store = new FlakyStore()
  const { app, base } = await serve(t, { store })
  const channel = 'retry.groups'
  const { cursor } = (await poll(base, { channel, cursor: 'latest', timeout: 0 })).body
  // One read per (cursor, limit): two groups.
  const polls = [1, 10].map((limit) => poll(base, { channel, cursor, limit, timeout: 30_000 }))
  await heldPolls(app, 2)
  await new Promise((resolve) => setImmediate(resolve))

  store.failing = true
  const ids = [(await push(base, channel, 'one')).body.id, (await push(base, channel, 'two')).body.id]
  await store.untilFailures(3)
  store.failing = false
  const [one, ten] = await Promise.all(polls)
  t.same(one?.body.messages.map((m: any) => m.id), ids.slice(0, 1), 'limit 1: the first message')
  t.same(ten?.body.messages.map((m: any) => m.id), ids, 'limit 10: both')
})

/** Active timers of this process, as Node counts them. */
const timers = (): number => process.getActiveResourcesInfo().filter((resource) => resource === 'Timeout').length

for (const end of ['timeout', 'abort', 'close'] as const) {
  t.test(`the retry's timer is released when the poll ends by ${end} while reads keep failing`, async (t) => {
    const store = new FlakyStore()
    const { app, base } = await serve(t, { store })
    const channel = `retry.${end}`
    const controller = new AbortController()
    const { held } = await holdOne(t, store, base, app, channel, end === 'timeout' ? 1_000 : 30_000, { signal: controller.signal })
    store.failing = true
    await push(base, channel, 'never read')
    await store.untilFailures(3) // a retry is now pending, 200 ms out

    if (end === 'timeout') {
      const answer = await held
      t.equal(answer.body.status, 'timeout', 'the poll still ends at its timeout, with its cursor')
      t.ok(answer.body.cursor, 'and a cursor to continue from')
    } else {
      // Once the failed read's promise chain has run, both the poll's timer and the channel's retry timer are
      // pending; both must go when the poll ends.
      await new Promise((resolve) => setImmediate(resolve))
      const pending = timers()
      if (end === 'abort') {
        controller.abort()
        await heldPolls(app, 0)
      } else {
        await app.close()
        t.equal((await held).status, 503, 'close answers the held poll 503')
      }
      t.ok(timers() <= pending - 2, `the poll's timer and the retry's timer are released (${pending} before, ${timers()} after)`)
    }
    t.equal(app.longpoll.stats().heldPolls, 0)
    // No read after the end: the back-off would have fired within 2 s. (Absence has no event to wait for.)
    const reads = store.reads
    await new Promise((resolve) => setTimeout(resolve, 2_500))
    t.equal(store.reads, reads, 'no retry reads once the poll has ended')
  })
}
