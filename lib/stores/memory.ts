import { errors } from '../errors.js'
import { emptyCursorFits, emptyEpochFor, formatCursor, newEpoch, type Position } from '../cursor.js'
import type { AppendResult, ChannelRead, IdempotencyKey, LongPollStore, ReadResult, Retention, StoredMessage } from './types.js'

export interface MemoryStoreOptions {
  /**
   * Milliseconds a channel with no retained message is kept after its last use (default one hour).
   * Keeping it keeps its epoch, so cursors handed out for it stay valid while its clients come and go.
   */
  emptyChannelTtl?: number
  /** Milliseconds between sweeps that drop expired messages and idle channels (default 60 s). */
  sweepInterval?: number
  /**
   * Idempotency keys remembered at most, over all channels (default 100000). Past it the oldest key is forgotten
   * before its ttl, so a flood of distinct keys cannot grow memory without bound.
   */
  maxIdempotencyKeys?: number
}

/** What an idempotency key remembers: the message its first append stored. */
interface RememberedKey {
  epoch: string
  seq: number
  time: number
  expiresAt: number
}

interface MemoryMessage extends StoredMessage {
  expiresAt: number
}

interface MemoryChannel {
  epoch: string
  /** When this life began (its first append). */
  began: number
  /** When the life before it ended: its disconnect, or this store's start. */
  ended: number
  /** Seq of the newest message ever appended in this life (0 before the first). */
  lastSeq: number
  /** Retained messages are `messages[head..]`; their seqs are consecutive, so a cursor maps to an index in O(1). */
  messages: MemoryMessage[]
  head: number
  lastUsed: number
}

/**
 * The default store: one process, nothing to install. Its messages are lost when the process ends.
 * Only an append creates a channel's life: a read of a channel with none keeps nothing and answers the
 * empty-channel cursor (`emptyEpoch`), so polls on names that never get a message cost nothing once they end.
 */
export class MemoryStore implements LongPollStore {
  private readonly channels = new Map<string, MemoryChannel>()
  /** Channels disconnected within emptyChannelTtl → when: what an empty-channel cursor is checked against. */
  private readonly disconnectedAt = new Map<string, number>()
  /** A cursor handed out before this store existed belongs to another store's lives. */
  private readonly started = Date.now()
  /** `<key> <channel>` (a key has no space) → its first message; in insertion order, so the oldest come first. */
  private readonly keys = new Map<string, RememberedKey>()
  private readonly maxIdempotencyKeys: number
  private readonly emptyChannelTtl: number
  private readonly sweepInterval: number
  private sweeper: NodeJS.Timeout | null = null
  private closed = false

  constructor (options: MemoryStoreOptions = {}) {
    this.emptyChannelTtl = positive(options.emptyChannelTtl ?? 3_600_000, 'emptyChannelTtl')
    this.sweepInterval = positive(options.sweepInterval ?? 60_000, 'sweepInterval')
    this.maxIdempotencyKeys = positive(options.maxIdempotencyKeys ?? 100_000, 'maxIdempotencyKeys')
  }

  /** Number of channels held in memory (for tests and stats). */
  get size (): number {
    return this.channels.size
  }

  /** Number of idempotency keys remembered (for tests and stats). */
  get idempotencyKeys (): number {
    return this.keys.size
  }

  // Synchronous from the key check to the append: concurrent appends with one key cannot interleave.
  async append (channel: string, json: string, time: number, retention: Retention, idempotency?: IdempotencyKey): Promise<AppendResult> {
    let id = ''
    if (idempotency !== undefined) {
      this.forgetKeys(time)
      id = `${idempotency.key} ${channel}`
      const first = this.keys.get(id)
      if (first !== undefined && first.expiresAt > time) return { epoch: first.epoch, seq: first.seq, time: first.time, duplicate: true }
    }
    const state = this.channels.get(channel) ?? this.newLife(channel, time)
    state.lastUsed = time
    const seq = ++state.lastSeq
    state.messages.push({ seq, time, json, expiresAt: time + retention.messageTtl })
    const retained = state.messages.length - state.head
    if (retained > retention.maxMessages) state.head += retained - retention.maxMessages
    this.prune(state, time)
    if (idempotency !== undefined) {
      this.keys.delete(id) // an expired entry: re-inserted at the end, in expiry order
      this.keys.set(id, { epoch: state.epoch, seq, time, expiresAt: time + idempotency.ttl })
      if (this.keys.size > this.maxIdempotencyKeys) this.keys.delete(this.keys.keys().next().value as string)
    }
    return { epoch: state.epoch, seq, time }
  }

  async read (channel: string, position: Position, limit: number, now: number): Promise<ReadResult> {
    return this.readNow(channel, position, limit, now)
  }

  async readMany (reads: ChannelRead[], limit: number, now: number): Promise<ReadResult[]> {
    return reads.map(({ channel, position }) => this.readNow(channel, position, limit, now))
  }

  private readNow (channel: string, position: Position, limit: number, now: number): ReadResult {
    const state = this.channels.get(channel)
    if (state === undefined) {
      const ended = this.endedBefore(channel)
      const fits = typeof position === 'object' && emptyCursorFits(position, now, ended, this.emptyChannelTtl)
      return { epoch: emptyEpochFor(position, now, ended, this.emptyChannelTtl, fits), messages: [], seq: 0, gap: typeof position === 'object' && !fits }
    }
    state.lastUsed = now
    this.prune(state, now)
    const { epoch, lastSeq, messages, head } = state
    const firstSeq = head < messages.length ? (messages[head] as MemoryMessage).seq : lastSeq + 1
    if (position === 'latest') return { epoch, messages: [], seq: lastSeq, gap: false }

    let after = firstSeq - 1
    let gap = false
    if (position !== 'oldest') {
      if (position.epoch !== epoch) {
        // An empty-channel cursor from before this life is the position before its first message; a cursor
        // from another life is answered from the oldest retained message.
        if (emptyCursorFits(position, state.began, state.ended, this.emptyChannelTtl)) gap = firstSeq > 1
        else gap = true
      } else if (position.seq > lastSeq) {
        throw new errors.BadCursor(formatCursor(position.epoch, position.seq), 'it is past the newest message of the channel')
      } else {
        gap = position.seq < firstSeq - 1
        after = Math.max(position.seq, firstSeq - 1)
      }
    }
    const start = head + (after + 1 - firstSeq)
    const out: StoredMessage[] = []
    for (let i = start; i < messages.length && out.length < limit; i++) {
      const { seq, time, json } = messages[i] as MemoryMessage
      out.push({ seq, time, json })
    }
    return { epoch, messages: out, seq: out.length > 0 ? (out[out.length - 1] as StoredMessage).seq : after, gap }
  }

  async delete (channel: string): Promise<void> {
    if (!this.channels.delete(channel)) return
    this.disconnectedAt.delete(channel) // re-inserted at the end: the map stays in time order
    this.disconnectedAt.set(channel, Date.now())
    this.startSweeper()
  }

  async close (): Promise<void> {
    this.closed = true
    if (this.sweeper !== null) clearTimeout(this.sweeper)
    this.sweeper = null
  }

  private newLife (channel: string, now: number): MemoryChannel {
    const state: MemoryChannel = { epoch: newEpoch(), began: now, ended: this.endedBefore(channel), lastSeq: 0, messages: [], head: 0, lastUsed: now }
    this.channels.set(channel, state)
    this.disconnectedAt.delete(channel)
    this.startSweeper()
    return state
  }

  private endedBefore (channel: string): number {
    return this.disconnectedAt.get(channel) ?? this.started
  }

  /** Drops expired messages from the head (messages are in time order) and compacts the array now and then. */
  private prune (state: MemoryChannel, now: number): void {
    const { messages } = state
    while (state.head < messages.length && (messages[state.head] as MemoryMessage).expiresAt <= now) state.head++
    if (state.head > 64 && state.head * 2 > messages.length) {
      state.messages = messages.slice(state.head)
      state.head = 0
    }
  }

  private startSweeper (): void {
    if (this.sweeper !== null || this.closed) return
    // One unref'd timer re-armed with refresh(): it never keeps the process alive and never overlaps itself.
    this.sweeper = setTimeout(() => {
      this.sweep(Date.now())
      if (this.channels.size > 0 || this.keys.size > 0 || this.disconnectedAt.size > 0) this.sweeper?.refresh()
      else this.sweeper = null
    }, this.sweepInterval).unref()
  }

  /**
   * Drops expired keys from the head. Keys are remembered in insertion order, which is expiry order while the
   * ttl stays the same; one inserted with a longer ttl may hold shorter-lived ones behind it until it expires,
   * which `maxIdempotencyKeys` still bounds (and a lookup checks expiry itself).
   */
  private forgetKeys (now: number): void {
    for (const [id, remembered] of this.keys) {
      if (remembered.expiresAt > now) break
      this.keys.delete(id)
    }
  }

  private sweep (now: number): void {
    this.forgetKeys(now)
    for (const [name, at] of this.disconnectedAt) {
      if (now - at < this.emptyChannelTtl) break
      this.disconnectedAt.delete(name)
    }
    for (const [name, state] of this.channels) {
      this.prune(state, now)
      if (state.head === state.messages.length && now - state.lastUsed >= this.emptyChannelTtl) this.channels.delete(name)
    }
  }
}

function positive (value: number, name: string): number {
  if (!Number.isInteger(value) || value <= 0) throw new errors.InvalidOption(name, 'must be a positive integer (milliseconds)')
  return value
}
