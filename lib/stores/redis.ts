// Type-only: ioredis is an optional peer dependency, so this module must load without it installed.
import type { Cluster, Redis } from 'ioredis'
import { errors } from '../errors.js'
import { formatCursor, newEpoch, type Position } from '../cursor.js'
import { checkClient, whenReady, withTimeout, type Connectable, type RedisClient } from '../redis/client.js'
import { channelKey, checkPrefix, type ChannelPart } from '../redis/keys.js'
import { SCRIPTS, SENTINELS } from '../redis/scripts.js'
import type { AppendResult, ChannelRead, IdempotencyKey, LongPollStore, ReadResult, Retention, StoredMessage } from './types.js'

export interface RedisStoreOptions {
  /**
   * Your ioredis client (`Redis` or `Cluster`). The store never closes it. It must not have ioredis's
   * `keyPrefix` set: keys built inside Lua scripts bypass it; use `prefix` instead.
   */
  redis: RedisClient
  /** Prefix of every key the store writes. Default `longpoll:`. Must not contain `{` or `}`. */
  prefix?: string
  /**
   * Milliseconds a channel's life (its epoch and newest seq) outlives its last message, and is kept while polls
   * keep reading it (default one hour, like MemoryStore). While it is kept, cursors handed out for the channel
   * stay valid; once it is gone, an old cursor is answered from the oldest message with `gap: true`.
   */
  emptyChannelTtl?: number
  /**
   * Milliseconds a store command may take before it is failed (default 5000). A push whose append fails
   * answers 503. See the note on `append` for what a timed-out append means.
   */
  commandTimeout?: number
}

/*
 * Why a list per channel (plus a small hash), and not a stream or a sorted set:
 * - Within one life of a channel seqs are consecutive and messages only ever leave from the head (trimmed by
 *   count, or expired — they expire in append order), so message n sits at a computable index, counted from
 *   the tail: a read after seq s is `LRANGE -(last-s) …`, which walks from the tail, and long polls almost
 *   always read the newest few messages. RPUSH is O(1), trimming is O(messages removed). This is exactly the
 *   model of MemoryStore (an array with a moving head), which keeps the two stores' semantics identical.
 * - A sorted set (score = seq) would index what the arithmetic above already gives us, at O(log n) per
 *   operation and, past 128 members, a skiplist plus a dict: roughly twice the memory per message.
 * - A stream's IDs are time-based unless set by hand; with hand-made `0-<seq>` IDs it does what the list does,
 *   but replies are nested field arrays to unpack in Lua, and an emptied stream key never goes away by itself.
 *
 * Keys (built in lib/redis/keys.ts), hash-tagged so that one channel's keys and its pub/sub channel share a Cluster slot:
 *   <prefix>{<channel>}:meta  hash: the channel's life — epoch, newest seq, when it began, the run id of the
 *                             Redis process that last wrote it, its ancestors (lib/redis/scripts/includes/channel-life.lua);
 *                             or, for emptyChannelTtl after a disconnect, a tombstone holding only the time of it
 *   <prefix>{<channel>}:msgs  list, oldest first, of "<seq>:<time>:<expiresAt>:<json>"
 *   <prefix>{<channel>}:key:<idempotency key>  string "<epoch>:<seq>:<time>" of the key's first message, for its ttl
 * Only an append creates a life: a read of a channel with none writes nothing and answers an empty-channel
 * cursor, so polls on names that never get a message cost Redis nothing once they end.
 * Expiry: `msgs` expires `messageTtl` after the last append (by then every message in it has expired);
 * `meta` expires `messageTtl + emptyChannelTtl` after the last append, and reads push it back to at least
 * `emptyChannelTtl / 2` — so the epoch always outlives the messages, and an idle channel costs nothing forever.
 * The scripts are lib/redis/scripts/append-3.lua, read-2.lua, read-many-n.lua and delete-2.lua.
 */

export type { RedisClient }

type Client = Redis | Cluster
/** The first element of the append script's reply: what it did. */
type AppendOutcome = 'stored' | 'duplicate' | 'late'
interface Scripts {
  longpollAppendV2 (meta: string, msgs: string, key: string, ...args: Array<string | number>): Promise<[AppendOutcome, string, number, number, number?]>
  longpollReadV1 (meta: string, msgs: string, ...args: Array<string | number>): Promise<ReadReply>
  longpollReadManyV1 (numberOfKeys: number, ...keysAndArgs: Array<string | number>): Promise<ReadReply[]>
  longpollDeleteV1 (meta: string, msgs: string, emptyChannelTtl: number): Promise<number>
}
/** { epoch, seq, gap (0, 1 or PAST_NEWEST), messages, ancestors when a message predates a fork } */
type ReadReply = [string, number, number, string[]?, string?]

/**
 * Messages in Redis: every instance of your app sees the same channels. Append and read are one Lua script
 * (one round trip) each, so concurrent appends from any number of processes get distinct, increasing seqs.
 */
export class RedisStore implements LongPollStore {
  readonly prefix: string
  private readonly redis: Client
  private readonly emptyChannelTtl: number
  private readonly commandTimeout: number
  /** Whether the client was ever ready: before that, a command may wait for the first connection. */
  private connectedOnce: boolean
  private readonly onReady = (): void => { this.connectedOnce = true }
  /** A lower bound of (Redis's clock - ours) in ms, from the last server time seen; null until the first. */
  private offset: number | null = null
  /** A Cluster: channels live in different slots, so each is read by its own script (sent together). */
  private readonly sharded: boolean

  constructor (options: RedisStoreOptions) {
    if (options === null || typeof options !== 'object') throw new errors.InvalidOption('RedisStore', 'expects { redis }')
    checkClient(options.redis, 'RedisStore')
    this.redis = options.redis as Client
    this.prefix = checkPrefix(options.prefix)
    this.emptyChannelTtl = positive(options.emptyChannelTtl ?? 3_600_000, 'emptyChannelTtl')
    this.commandTimeout = positive(options.commandTimeout ?? 5_000, 'commandTimeout')
    // defineCommand sends EVALSHA and falls back to EVAL on NOSCRIPT (e.g. after a Redis restart). Defining
    // the same versioned name twice on one client is harmless: the script text is the same.
    this.redis.defineCommand('longpollAppendV2', SCRIPTS.append)
    this.redis.defineCommand('longpollReadV1', SCRIPTS.read)
    this.redis.defineCommand('longpollReadManyV1', SCRIPTS.readMany)
    this.redis.defineCommand('longpollDeleteV1', SCRIPTS.delete)
    this.sharded = (this.redis as Cluster).isCluster === true
    this.connectedOnce = this.redis.status === 'ready'
    this.redis.on('ready', this.onReady)
  }

  /**
   * Resolves once the message is stored; a 2xx push always means stored. What a rejection (503) means:
   * - Redis unreachable: the client is not `ready`, so the append is refused at once and never queued. ioredis's
   *   offline queue cannot store it after the 503.
   * - No answer within `commandTimeout` (a hung Redis, a dead socket not yet noticed): the script was sent and
   *   may still run — when Redis resumes, or when ioredis re-sends unanswered commands after reconnecting
   *   (`autoResendUnfulfilledCommands`, on by default). So the script carries a deadline, in Redis's own clock,
   *   equal to the moment this call times out, and writes nothing if it runs at or after it: a late run cannot
   *   turn a 503 into a stored message. Redis's clock is learnt from the server time every append returns (a
   *   lower bound of the offset, so the deadline errs early, never late); the first append of a store asks
   *   for TIME once to learn it.
   * Residual risks, stated honestly: (1) the script ran before the deadline but its reply was lost or arrived
   * after the timeout: the push answers 503 yet the message is stored, once (a client that retries without an
   * idempotency key stores it twice; with one, its retry answers the first id with `duplicate: true`); (2) the
   * connection dropped after the script ran and ioredis re-sent it within the deadline: without a key, stored
   * twice, the push answered 2xx with the second id (with a key, the re-sent script finds it and answers the
   * first id). Set `autoResendUnfulfilledCommands: false` on the client to rule out (2); the push then answers
   * 503 instead, which is case (1). (3) On a Cluster, nodes' clocks may differ by their
   * skew (milliseconds under NTP), by which a deadline can be late.
   */
  async append (channel: string, json: string, time: number, retention: Retention, idempotency?: IdempotencyKey): Promise<AppendResult> {
    await this.connected()
    if (this.offset === null) await this.calibrate()
    const sent = Date.now()
    const deadline = this.offset === null ? 0 : sent + this.commandTimeout + this.offset
    const [outcome, epoch, seq, servertime, firstTime] = await withTimeout((this.redis as unknown as Scripts).longpollAppendV2(
      this.key(channel, 'meta'), this.key(channel, 'msgs'), this.key(channel, `key:${idempotency?.key ?? ''}`),
      newEpoch(), json, time, time + retention.messageTtl, retention.maxMessages,
      retention.messageTtl, retention.messageTtl + this.emptyChannelTtl, deadline, idempotency?.ttl ?? 0
    ), this.commandTimeout, 'append')
    this.offset = Number(servertime) - Date.now()
    if (outcome === 'late') throw new Error(`Redis ran the append after its ${this.commandTimeout} ms deadline; nothing was stored`)
    if (outcome === 'duplicate') return { epoch, seq: Number(seq), time: Number(firstTime), duplicate: true }
    return { epoch, seq: Number(seq), time }
  }

  // Reads may wait in ioredis's offline queue (up to commandTimeout): a read that runs late changes nothing a
  // client relies on, and a poll held across a short reconnect is answered instead of failed.
  async read (channel: string, position: Position, limit: number, now: number): Promise<ReadResult> {
    const [mode, cursor] = positionArgs(position)
    const reply = await withTimeout((this.redis as unknown as Scripts).longpollReadV1(
      this.key(channel, 'meta'), this.key(channel, 'msgs'),
      newEpoch(), mode, cursor.epoch, cursor.seq, limit, now, this.emptyChannelTtl
    ), this.commandTimeout, 'read')
    return readResult(reply, cursor)
  }

  /** One script for all the channels on a single server; on a Cluster, one per channel, sent together. */
  async readMany (reads: ChannelRead[], limit: number, now: number): Promise<ReadResult[]> {
    if (this.sharded) return await Promise.all(reads.map(({ channel, position }) => this.read(channel, position, limit, now)))
    const keys: string[] = []
    const args: Array<string | number> = [limit, now, this.emptyChannelTtl]
    const cursors = reads.map(({ channel, position }) => {
      const [mode, cursor] = positionArgs(position)
      keys.push(this.key(channel, 'meta'), this.key(channel, 'msgs'))
      args.push(newEpoch(), mode, cursor.epoch, cursor.seq)
      return cursor
    })
    const replies = await withTimeout((this.redis as unknown as Scripts).longpollReadManyV1(keys.length, ...keys, ...args), this.commandTimeout, 'read')
    return replies.map((reply, i) => readResult(reply, cursors[i] as { epoch: string, seq: number }))
  }

  /** Deletes the channel; like `append`, it is never queued while Redis is unreachable (a late delete would drop newer messages). */
  async delete (channel: string): Promise<void> {
    await this.connected()
    await withTimeout((this.redis as unknown as Scripts).longpollDeleteV1(this.key(channel, 'meta'), this.key(channel, 'msgs'), this.emptyChannelTtl), this.commandTimeout, 'delete')
  }

  /** The client is yours: close() only removes the store's listener. */
  async close (): Promise<void> {
    this.redis.removeListener('ready', this.onReady)
  }

  /** Learns Redis's clock once (the offset then follows every append's reply). */
  private async calibrate (): Promise<void> {
    const [seconds, micros] = await withTimeout(this.redis.time(), this.commandTimeout, 'TIME')
    this.offset ??= Number(seconds) * 1000 + Math.floor(Number(micros) / 1000) - Date.now()
  }

  private key (channel: string, part: ChannelPart): string {
    return channelKey(this.prefix, channel, part)
  }

  /** Resolves when the client is ready; before its first connection, waits for it (up to commandTimeout). */
  private async connected (): Promise<void> {
    await whenReady(this.redis as unknown as Connectable, this.connectedOnce, this.commandTimeout)
  }
}

function positionArgs (position: Position): ['o' | 'l' | 'c', { epoch: string, seq: number }] {
  if (typeof position === 'object') return ['c', position]
  return [position === 'oldest' ? 'o' : 'l', { epoch: '', seq: 0 }]
}

function readResult ([epoch, rawSeq, gap, elements = [], ancestors]: ReadReply, cursor: { epoch: string, seq: number }): ReadResult {
  if (gap === SENTINELS.PAST_NEWEST) throw new errors.BadCursor(formatCursor(cursor.epoch, cursor.seq), 'it is past the newest message of the channel')
  const messages = elements.map(decode)
  if (ancestors !== undefined) labelByLife(messages, ancestors)
  const last = messages[messages.length - 1]
  return { epoch, messages, seq: last === undefined ? Number(rawSeq) : last.seq, gap: gap === 1 }
}

/**
 * Gives each message written before a fork the epoch of the life it was written in. `ancestors` is
 * "<epoch>:<bound>,…", newest first, with bounds that never grow towards the oldest: message n was written in
 * the oldest ancestor whose bound is at least n (lib/redis/scripts/includes/channel-life.lua).
 */
function labelByLife (messages: StoredMessage[], ancestors: string): void {
  const lives = ancestors.split(',').map((entry) => {
    const colon = entry.lastIndexOf(':')
    return { epoch: entry.slice(0, colon), bound: Number(entry.slice(colon + 1)) }
  }).reverse()
  for (const message of messages) {
    const life = lives.find(({ bound }) => message.seq <= bound)
    if (life === undefined) break // this and every later message belong to the current life
    message.epoch = life.epoch
  }
}

function decode (element: string): StoredMessage {
  const a = element.indexOf(':')
  const b = element.indexOf(':', a + 1)
  const c = element.indexOf(':', b + 1)
  return { seq: Number(element.slice(0, a)), time: Number(element.slice(a + 1, b)), json: element.slice(c + 1) }
}

function positive (value: number, name: string): number {
  if (!Number.isSafeInteger(value) || value <= 0) throw new errors.InvalidOption(name, 'must be a positive integer (milliseconds)')
  return value
}
