// A real MemoryStore with its reads held or failed on the test's command: for the hub's paths that only run while
// a read is in flight (a push or a disconnect landing meanwhile, a timeout before it answers) or when it fails.
// The memory store answers a read in the same turn, so without this those paths never run on it.
import { MemoryNotifier, MemoryStore, type LongPollNotifier, type LongPollStore, type NotifierNamespace } from '../../lib/index.js'

export interface GatedStore {
  store: MemoryStore
  /** Answers every read held so far (each with what it read when it ran). */
  release: () => void
  /** Reads (calls of `read` or `readMany`) that ran and wait to answer. */
  waiting: () => number
  /** Calls of `read` or `readMany` so far. */
  calls: () => number
  /** While false, reads answer at once (to set a test up); true by default. */
  holding: boolean
}

/**
 * A memory store whose reads run at once but answer only when the test releases them: a read "in flight" whose
 * result was taken before anything the test does next. `readMany: false` removes `readMany`, so a many-channel
 * poll takes the hub's path for stores without it (one `read` per channel, together).
 */
export function gatedStore ({ readMany = true }: { readMany?: boolean } = {}): GatedStore {
  const store = new MemoryStore()
  let gates: Array<() => void> = []
  let calls = 0
  const gated: GatedStore = {
    store,
    release: () => { const open = gates; gates = []; for (const resolve of open) resolve() },
    waiting: () => gates.length,
    calls: () => calls,
    holding: true
  }
  const hold = async <T>(result: T): Promise<T> => {
    calls++
    if (gated.holding) await new Promise<void>((resolve) => gates.push(resolve))
    return result
  }
  const read = store.read.bind(store)
  store.read = async (...args) => await hold(await read(...args))
  const many = store.readMany.bind(store)
  if (readMany) store.readMany = async (...args) => await hold(await many(...args))
  else (store as LongPollStore).readMany = undefined
  return gated
}

export interface FailingStore {
  store: MemoryStore
  /** While true, every read rejects (as a Redis read does while Redis is down); appends still work. */
  failReads: boolean
  /** Reads that rejected. */
  failed: number
}

/** A memory store whose reads reject while `failReads` is set. */
export function failingStore (): FailingStore {
  const store = new MemoryStore()
  const failing: FailingStore = { store, failReads: false, failed: 0 }
  const fail = (): never => {
    failing.failed++
    throw new Error('the test store refuses reads')
  }
  const read = store.read.bind(store)
  store.read = async (...args) => failing.failReads ? fail() : await read(...args)
  const many = store.readMany.bind(store)
  store.readMany = async (...args) => failing.failReads ? fail() : await many(...args)
  return failing
}

export interface GatedNotifier {
  notifier: LongPollNotifier
  /** Confirms every subscription asked for so far; `before` runs after events flow and before `subscribe` resolves. */
  release: (before?: () => Promise<void>) => Promise<void>
  /** Subscriptions asked for and not confirmed yet. */
  pending: () => number
}

/**
 * A MemoryNotifier whose subscriptions are confirmed only when the test says so, and which, like Redis before it
 * has processed a SUBSCRIBE, delivers no event on a channel until then: a push during that time is announced to
 * nobody, so only the poll's store read (which must come after the confirmation) can find it.
 */
export function gatedNotifier (): GatedNotifier {
  const inner = new MemoryNotifier()
  const live = new Set<string>()
  let waiting: Array<{ key: string, resolve: () => void }> = []
  const key = (name: string, namespace: NotifierNamespace = 'channel'): string => `${namespace}:${name}`
  const notifier: LongPollNotifier = {
    start: (handlers) => inner.start({
      ...handlers,
      event: (name, event, namespace) => { if (live.has(key(name, namespace))) handlers.event(name, event, namespace) }
    }),
    subscribe: async (name, namespace) => {
      inner.subscribe(name, namespace)
      await new Promise<void>((resolve) => waiting.push({ key: key(name, namespace), resolve }))
    },
    unsubscribe: (name, namespace) => {
      live.delete(key(name, namespace))
      inner.unsubscribe(name, namespace)
    },
    publish: async (name, event, namespace) => await inner.publish(name, event, namespace),
    close: async () => await inner.close()
  }
  return {
    notifier,
    release: async (before) => {
      const confirmed = waiting
      waiting = []
      for (const { key } of confirmed) live.add(key)
      await before?.()
      for (const { resolve } of confirmed) resolve()
    },
    pending: () => waiting.length
  }
}
