import type { Position } from '../cursor.js'

/** One stored message. `json` is the message's data already serialized, so it is never re-encoded per poll. */
export interface StoredMessage {
  seq: number
  /** Milliseconds since the epoch when the message was stored. */
  time: number
  /** `JSON.stringify(data)`, exactly as pushed. */
  json: string
  /**
   * The life the message was written in, when it is not the read's `epoch`: a message that survived a fork of
   * its channel (a Redis that lost writes, guarantee 6) keeps the id it was given.
   */
  epoch?: string
}

/** How long a channel keeps its messages. */
export interface Retention {
  /** Messages retained per channel; older ones are trimmed. */
  maxMessages: number
  /** Milliseconds a message is retained. */
  messageTtl: number
}

/** A push's idempotency key: a repeat of `key` on the same channel within `ttl` ms stores nothing. */
export interface IdempotencyKey {
  /** 1–200 visible ASCII characters (%x21–7E). One key space per channel. */
  key: string
  /** Milliseconds the key is remembered after the push that stored it. */
  ttl: number
}

export interface AppendResult {
  epoch: string
  seq: number
  time: number
  /**
   * True when the append repeated an idempotency key still remembered on the channel: nothing was stored, and
   * epoch, seq and time are those of the message the key's first append stored.
   */
  duplicate?: boolean
}

export interface ReadResult {
  /** The channel's current life. */
  epoch: string
  /** Up to `limit` messages after the position, in push order. */
  messages: StoredMessage[]
  /** The seq the answer's cursor points at: the last message returned, or, with none, where the read started. */
  seq: number
  /**
   * True when messages between the position and the first message returned (or, with none, the channel's newest)
   * were expired or trimmed, or when the position came from another life of the channel.
   */
  gap: boolean
}

/** One channel's read within `readMany`. */
export interface ChannelRead {
  channel: string
  position: Position
}

/**
 * Where messages live. Implementations must make `append` atomic (concurrent appends, from any number of
 * processes, get distinct increasing seqs and none is lost) and `read` consistent with every append that has
 * resolved. Run the exported conformance suite against your own implementation.
 */
export interface LongPollStore {
  /**
   * Stores a message; resolves only once it is durably visible to every later `read`. Creates the channel.
   * With `idempotency`, the check and the append are one atomic step: of concurrent appends with one key on one
   * channel, from any number of processes, exactly one stores, and every other one (until `ttl` has passed)
   * resolves with that message's epoch, seq and time and `duplicate: true`.
   */
  append (channel: string, json: string, time: number, retention: Retention, idempotency?: IdempotencyKey): Promise<AppendResult>
  /**
   * Reads up to `limit` messages after `position`. For a channel that does not exist yet this creates its
   * life (an epoch), so the cursor handed back is bound to it. A cursor of the current life whose seq is past
   * the newest message throws FST_LONGPOLL_BAD_CURSOR.
   */
  read (channel: string, position: Position, limit: number, now: number): Promise<ReadResult>
  /**
   * Optional: the reads of a poll of several channels at once, with `read`'s semantics for each, answered in
   * order (one round trip where the backend allows it). Rejects as `read` would if any read fails. Without it,
   * the plugin sends the reads of `read` together.
   */
  readMany? (reads: ChannelRead[], limit: number, now: number): Promise<ReadResult[]>
  /** Deletes the channel and its messages; its next life has a new epoch. */
  delete (channel: string): Promise<void>
  /** Releases what the store owns (timers, connections it created). Called by the plugin on `app.close()`. */
  close (): Promise<void>
}
