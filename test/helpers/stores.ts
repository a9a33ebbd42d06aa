// A real MemoryStore with its reads held or failed on the test's command: for the hub's paths that only run while
// a read is in flight (a push or a disconnect landing meanwhile, a timeout before it answers) or when it fails.
// The memory store answers a read in the same turn, so without this those paths never run on it.
import { MemoryStore, type LongPollStore } from '../../lib/index.js'

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
