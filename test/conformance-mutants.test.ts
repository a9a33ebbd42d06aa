// The conformance suites can fail: selected checks run against deliberately broken stores and notifiers (and, as
// a control, against the same notifier unbroken), and must reject. A check that passes a broken implementation
// proves nothing about a working one.
import t from 'tap'
import assert from 'node:assert/strict'
import { notifierConformance, storeConformance, type NotifierConformanceOptions } from '../lib/conformance/index.js'
import { MemoryStore, type LongPollNotifier, type NotifierEvent, type NotifierHandlers } from '../lib/index.js'

type Check = () => Promise<void>

function collect (declare: (test: (name: string, fn: Check) => void) => void): (part: string) => Check {
  const checks = new Map<string, Check>()
  declare((name, fn) => { checks.set(name, fn) })
  return (part) => {
    const found = [...checks].filter(([name]) => name.includes(part))
    assert.equal(found.length, 1, `one check named like "${part}"`)
    return (found[0] as [string, Check])[1]
  }
}

/** How a notifier below is broken. */
interface Flaws {
  /** Subscribe resolves this many ms before the subscription delivers. */
  lateSubscribe?: number
  /** Unsubscribe with presenceWindow 0 forgets to unsubscribe, and a second subscribe adds a second delivery. */
  leakySubscriptions?: boolean
  /** Calls resync once after start, with nothing lost. */
  spuriousResync?: boolean
  /** After a cut connection: 'never' resyncs; 'early' resyncs before re-subscribing. */
  resync?: 'never' | 'early'
  /** While the broker is down, subscribe never settles. */
  hangWhileDown?: boolean
}

/**
 * A small in-process notifier over a shared "broker" that, like Redis, delivers an event only to subscriptions it
 * holds at publish time; its connection can be cut (interrupt) and the broker taken down (outage).
 */
class Broker {
  readonly members = new Set<TestNotifier>()
  down = false
  publish (name: string, event: NotifierEvent): void {
    for (const member of this.members) member.deliver(name, event)
  }
}

class TestNotifier implements LongPollNotifier {
  private handlers: NotifierHandlers | null = null
  /** Deliveries per channel (more than one only when leaky). */
  private readonly live = new Map<string, number>()
  private readonly wanted = new Set<string>()
  private window = 0

  constructor (private readonly broker: Broker, private readonly flaws: Flaws) {}

  start (handlers: NotifierHandlers): void {
    this.handlers = handlers
    this.window = handlers.presenceWindow ?? 0
    this.broker.members.add(this)
    if (this.flaws.spuriousResync === true) setTimeout(() => this.handlers?.resync(), 5)
  }

  async subscribe (name: string): Promise<void> {
    if (this.broker.down) {
      if (this.flaws.hangWhileDown === true) return await new Promise(() => {})
      throw new Error('the broker is down')
    }
    this.wanted.add(name)
    const go = (): void => { this.live.set(name, this.flaws.leakySubscriptions === true ? (this.live.get(name) ?? 0) + 1 : 1) }
    if (this.flaws.lateSubscribe !== undefined) setTimeout(go, this.flaws.lateSubscribe)
    else go()
  }

  unsubscribe (name: string): void {
    this.wanted.delete(name)
    if (this.flaws.leakySubscriptions === true && this.window === 0) return
    this.live.delete(name)
  }

  async publish (name: string, event: NotifierEvent): Promise<void> {
    if (this.broker.down) throw new Error('the broker is down')
    this.broker.publish(name, event)
  }

  deliver (name: string, event: NotifierEvent): void {
    for (let i = 0; i < (this.live.get(name) ?? 0); i++) this.handlers?.event(name, event, 'channel')
  }

  /** The connection is lost: nothing is delivered until it re-subscribes, then resyncs. */
  cut (): void {
    this.live.clear()
    const resubscribe = (): void => {
      if (this.broker.down) {
        setTimeout(resubscribe, 5)
        return
      }
      if (this.flaws.resync === 'early') this.handlers?.resync()
      setTimeout(() => {
        for (const name of this.wanted) this.live.set(name, 1)
        if (this.flaws.resync === undefined) this.handlers?.resync()
      }, 20)
    }
    setTimeout(resubscribe, 5)
  }

  async close (): Promise<void> {
    this.broker.members.delete(this)
    this.handlers = null
  }
}

function notifierChecks (flaws: Flaws): (part: string) => Check {
  const broker = new Broker()
  return collect((test) => {
    const options: NotifierConformanceOptions = {
      test,
      createNotifier: () => new TestNotifier(broker, flaws),
      presence: false,
      timeout: 500,
      interrupt: async () => { for (const member of broker.members) member.cut() },
      outage: {
        stop: async () => { broker.down = true; for (const member of broker.members) member.cut() },
        start: async () => { broker.down = false }
      }
    }
    notifierConformance(options)
  })
}

const mutants: Array<{ check: string, flaws: Flaws, why: string }> = [
  { check: 'the moment subscribe resolves', flaws: { lateSubscribe: 50 }, why: 'subscribe resolves before it delivers' },
  { check: 'presenceWindow 0', flaws: { leakySubscriptions: true }, why: 'unsubscribe is ignored, a second subscribe delivers twice' },
  { check: 'no resync while the broker stays connected', flaws: { spuriousResync: true }, why: 'a resync with nothing lost' },
  { check: 'a lost connection', flaws: { resync: 'never' }, why: 'no resync after a cut connection' },
  { check: 'a lost connection', flaws: { resync: 'early' }, why: 'resync before re-subscribing: an event published then is lost' },
  { check: 'the broker down', flaws: { hangWhileDown: true }, why: 'subscribe hangs while the broker is down' }
]

for (const { check, flaws, why } of mutants) {
  t.test(`"${check}" fails a broken notifier (${why}) and passes it unbroken`, async (t) => {
    await t.rejects(notifierChecks(flaws)(check)(), assert.AssertionError, 'the broken notifier fails the check')
    await t.resolves(notifierChecks({})(check)(), 'the same notifier, unbroken, passes it')
  })
}

t.test('"two store instances share one sequence" fails stores that do not share, unless declared separate', async (t) => {
  const check = 'two store instances share one sequence'
  const shared = collect((test) => storeConformance({ test, createStore: () => new MemoryStore() }))
  await t.rejects(shared(check)(), assert.AssertionError, 'two MemoryStores are two backends: they share nothing')
  const declared = collect((test) => storeConformance({ test, createStore: () => new MemoryStore(), separateBackends: true }))
  t.throws(() => declared(check), /one check named like/, 'with separateBackends the check is not declared')
})
