// Type-only: ioredis is an optional peer dependency, so this module must load without it installed.
import type { Cluster, Redis } from 'ioredis'
import { errors } from '../errors.js'
import { formatCursor, newEpoch, type Position } from '../cursor.js'
import type { AppendResult, IdempotencyKey, LongPollStore, ReadResult, Retention, StoredMessage } from './types.js'

/**
 * An ioredis 5 client: a `Redis` or a `Cluster`. Declared by shape rather than imported from ioredis, so that
 * this package's types compile for users who do not install ioredis (an optional peer) even without
 * `skipLibCheck`; the constructors check at run time that it really is one.
 */
export interface RedisClient {
  readonly status: string
  readonly options: object
  defineCommand (name: string, definition: { lua: string, numberOfKeys?: number }): void
  duplicate (...args: any[]): unknown
  on (event: string | symbol, listener: (...args: any[]) => void): unknown
}

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
 * Keys, hash-tagged so that one channel's keys and its pub/sub channel share a Cluster slot:
 *   <prefix>{<channel>}:meta  hash { e: epoch of the current life, s: seq of its newest message }
 *   <prefix>{<channel>}:msgs  list, oldest first, of "<seq>:<time>:<expiresAt>:<json>"
 *   <prefix>{<channel>}:key:<idempotency key>  string "<epoch>:<seq>:<time>" of the key's first message, for its ttl
 * Expiry: `msgs` expires `messageTtl` after the last append (by then every message in it has expired);
 * `meta` expires `messageTtl + emptyChannelTtl` after the last append, and reads push it back to at least
 * `emptyChannelTtl / 2` — so the epoch always outlives the messages, and an idle channel costs nothing forever.
 */

const APPEND = `-- longpollAppendV2: appends one message to a channel, then trims its head; with an idempotency key,
-- first checks it, in the same atomic step, so concurrent appends with one key store once.
-- KEYS[1] meta hash { e = epoch, s = seq of the newest message of the life }
-- KEYS[2] message list, oldest first, elements "<seq>:<time>:<expiresAt>:<json>"
-- KEYS[3] idempotency key, string "<epoch>:<seq>:<time>" of the key's first message (unused when ARGV[9] is 0)
-- ARGV[1] epoch to use if the channel has no life yet
-- ARGV[2] json (stored as is)   ARGV[3] time (ms)   ARGV[4] expiresAt (ms)   ARGV[5] maxMessages
-- ARGV[6] PEXPIRE of the list (messageTtl)   ARGV[7] PEXPIRE of meta (messageTtl + emptyChannelTtl)
-- ARGV[8] deadline, in this server's clock (ms); 0 for none
-- ARGV[9] ttl of the idempotency key (ms); 0 for no key
-- Returns { 'stored', epoch, seq, server time (ms) };
-- or { 'duplicate', epoch, seq, server time, time of the first message } when the key is remembered: nothing
-- is written;
-- or { 'late', '', 0, server time } when run at or after the deadline: nothing is written, the caller has
-- already answered 503.
local clock = redis.call('TIME')
local servertime = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local deadline = tonumber(ARGV[8])
if deadline > 0 and servertime >= deadline then return { 'late', '', 0, servertime } end
local keyttl = tonumber(ARGV[9])
if keyttl > 0 then
  local first = redis.call('GET', KEYS[3])
  if first then
    local e, s, t = string.match(first, '^([^:]*):(%d+):(%d+)$')
    return { 'duplicate', e, tonumber(s), servertime, tonumber(t) }
  end
end
local epoch = redis.call('HGET', KEYS[1], 'e')
if not epoch then
  epoch = ARGV[1]
  -- A list left over from a life whose meta was evicted must never be read as part of this one.
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'e', epoch)
end
local seq = redis.call('HINCRBY', KEYS[1], 's', 1)
local len = redis.call('RPUSH', KEYS[2], string.format('%d:', seq) .. ARGV[3] .. ':' .. ARGV[4] .. ':' .. ARGV[2])
local max = tonumber(ARGV[5])
if len > max then redis.call('LTRIM', KEYS[2], -max, -1) end
local now = tonumber(ARGV[3])
while true do
  local head = redis.call('LINDEX', KEYS[2], 0)
  if not head or tonumber(string.match(head, '^%d+:[^:]*:([^:]*):')) > now then break end
  redis.call('LPOP', KEYS[2])
end
redis.call('PEXPIRE', KEYS[2], ARGV[6])
redis.call('PEXPIRE', KEYS[1], ARGV[7])
if keyttl > 0 then redis.call('SET', KEYS[3], epoch .. ':' .. seq .. ':' .. ARGV[3], 'PX', keyttl) end
return { 'stored', epoch, seq, servertime }
`

const READ = `-- longpollReadV1: reads up to limit messages after a position; creates the channel's life if it has none.
-- KEYS[1] meta hash, KEYS[2] message list (see longpollAppendV2)
-- ARGV[1] epoch to use if the channel has no life yet
-- ARGV[2] position: 'o' oldest, 'l' latest, 'c' cursor   ARGV[3] cursor epoch   ARGV[4] cursor seq
-- ARGV[5] limit   ARGV[6] now (ms)   ARGV[7] emptyChannelTtl (ms)
-- Returns { epoch, seq, gap, messages } where seq is the seq just before the first message returned (or, with
-- none, the answer's seq) and gap is 0 or 1; or { epoch, newest seq, -1 } for a cursor past the newest message.
local meta = redis.call('HMGET', KEYS[1], 'e', 's')
local epoch, last = meta[1], tonumber(meta[2]) or 0
local keep = tonumber(ARGV[7])
if not epoch then
  epoch = ARGV[1]
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'e', epoch, 's', 0)
  redis.call('PEXPIRE', KEYS[1], keep)
elseif redis.call('PTTL', KEYS[1]) < keep / 2 then
  redis.call('PEXPIRE', KEYS[1], keep)
end
local mode = ARGV[2]
if mode == 'l' then return { epoch, last, 0, {} } end
local cursor = tonumber(ARGV[4])
if mode == 'c' and ARGV[3] == epoch then
  if cursor > last then return { epoch, last, -1 } end
  if cursor == last then return { epoch, last, 0, {} } end
end
local first = last + 1
local now = tonumber(ARGV[6])
while true do
  local head = redis.call('LINDEX', KEYS[2], 0)
  if not head then break end
  local seq, expires = string.match(head, '^(%d+):[^:]*:([^:]*):')
  if tonumber(expires) > now then first = tonumber(seq) break end
  redis.call('LPOP', KEYS[2])
end
local after, gap = first - 1, 0
if mode == 'c' then
  if ARGV[3] ~= epoch or cursor < first - 1 then gap = 1 else after = cursor end
end
local n = last - after
if n <= 0 then return { epoch, after, gap, {} } end
local count = math.min(n, tonumber(ARGV[5]))
return { epoch, after, gap, redis.call('LRANGE', KEYS[2], -n, count - n - 1) }
`

type Client = Redis | Cluster
/** The first element of the append script's reply: what it did. */
type AppendOutcome = 'stored' | 'duplicate' | 'late'
interface Scripts {
  longpollAppendV2 (meta: string, msgs: string, key: string, ...args: Array<string | number>): Promise<[AppendOutcome, string, number, number, number?]>
  longpollReadV1 (meta: string, msgs: string, ...args: Array<string | number>): Promise<[string, number, number, string[]?]>
}

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

  constructor (options: RedisStoreOptions) {
    if (options === null || typeof options !== 'object') throw new errors.InvalidOption('RedisStore', 'expects { redis }')
    checkClient(options.redis, 'RedisStore')
    this.redis = options.redis as Client
    this.prefix = checkPrefix(options.prefix)
    this.emptyChannelTtl = positive(options.emptyChannelTtl ?? 3_600_000, 'emptyChannelTtl')
    this.commandTimeout = positive(options.commandTimeout ?? 5_000, 'commandTimeout')
    // defineCommand sends EVALSHA and falls back to EVAL on NOSCRIPT (e.g. after a Redis restart). Defining
    // the same versioned name twice on one client is harmless: the script text is the same.
    this.redis.defineCommand('longpollAppendV2', { numberOfKeys: 3, lua: APPEND })
    this.redis.defineCommand('longpollReadV1', { numberOfKeys: 2, lua: READ })
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
    const [outcome, epoch, seq, servertime, firstTime] = await this.withTimeout((this.redis as unknown as Scripts).longpollAppendV2(
      this.key(channel, 'meta'), this.key(channel, 'msgs'), this.key(channel, `key:${idempotency?.key ?? ''}`),
      newEpoch(), json, time, time + retention.messageTtl, retention.maxMessages,
      retention.messageTtl, retention.messageTtl + this.emptyChannelTtl, deadline, idempotency?.ttl ?? 0
    ), 'append')
    this.offset = Number(servertime) - Date.now()
    if (outcome === 'late') throw new Error(`Redis ran the append after its ${this.commandTimeout} ms deadline; nothing was stored`)
    if (outcome === 'duplicate') return { epoch, seq: Number(seq), time: Number(firstTime), duplicate: true }
    return { epoch, seq: Number(seq), time }
  }

  // Reads may wait in ioredis's offline queue (up to commandTimeout): a read that runs late changes nothing a
  // client relies on, and a poll held across a short reconnect is answered instead of failed.
  async read (channel: string, position: Position, limit: number, now: number): Promise<ReadResult> {
    const mode = position === 'oldest' ? 'o' : position === 'latest' ? 'l' : 'c'
    const cursor = typeof position === 'object' ? position : { epoch: '', seq: 0 }
    const [epoch, rawSeq, gap, elements = []] = await this.withTimeout((this.redis as unknown as Scripts).longpollReadV1(
      this.key(channel, 'meta'), this.key(channel, 'msgs'),
      newEpoch(), mode, cursor.epoch, cursor.seq, limit, now, this.emptyChannelTtl
    ), 'read')
    if (gap === -1) throw new errors.BadCursor(formatCursor(cursor.epoch, cursor.seq), 'it is past the newest message of the channel')
    const messages = elements.map(decode)
    const last = messages[messages.length - 1]
    return { epoch, messages, seq: last === undefined ? Number(rawSeq) : last.seq, gap: gap === 1 }
  }

  /** Deletes the channel; like `append`, it is never queued while Redis is unreachable (a late delete would drop newer messages). */
  async delete (channel: string): Promise<void> {
    await this.connected()
    await this.withTimeout(this.redis.del(this.key(channel, 'meta'), this.key(channel, 'msgs')), 'delete')
  }

  /** The client is yours: close() only removes the store's listener. */
  async close (): Promise<void> {
    this.redis.removeListener('ready', this.onReady)
  }

  /** Learns Redis's clock once (the offset then follows every append's reply). */
  private async calibrate (): Promise<void> {
    const [seconds, micros] = await this.withTimeout(this.redis.time(), 'TIME')
    this.offset ??= Number(seconds) * 1000 + Math.floor(Number(micros) / 1000) - Date.now()
  }

  private key (channel: string, part: string): string {
    return `${this.prefix}{${channel}}:${part}`
  }

  /** Resolves when the client is ready; before its first connection, waits for it (up to commandTimeout). */
  private async connected (): Promise<void> {
    const { redis } = this
    if (redis.status === 'ready') return
    if (this.connectedOnce || redis.status === 'end' || redis.status === 'close') {
      throw new Error(`the Redis connection is ${redis.status}`)
    }
    if (redis.status === 'wait') redis.connect().catch(() => {}) // lazyConnect: the 'error' listener reports it
    let onReady: (() => void) | undefined
    try {
      await this.withTimeout(new Promise<void>((resolve) => { onReady = resolve; redis.once('ready', resolve) }), 'connect')
    } finally {
      if (onReady !== undefined) redis.removeListener('ready', onReady)
    }
  }

  private async withTimeout<T> (promise: Promise<T>, what: string): Promise<T> {
    let timer: NodeJS.Timeout | undefined
    try {
      return await Promise.race([promise, new Promise<never>((resolve, reject) => {
        timer = setTimeout(() => reject(new Error(`Redis did not answer the ${what} within ${this.commandTimeout} ms`)), this.commandTimeout)
      })])
    } finally {
      clearTimeout(timer)
    }
  }
}

function decode (element: string): StoredMessage {
  const a = element.indexOf(':')
  const b = element.indexOf(':', a + 1)
  const c = element.indexOf(':', b + 1)
  return { seq: Number(element.slice(0, a)), time: Number(element.slice(a + 1, b)), json: element.slice(c + 1) }
}

/** Shared with RedisNotifier: a usable ioredis client without `keyPrefix`. */
export function checkClient (redis: unknown, owner: string): void {
  const client = redis as Client | undefined
  if (client === null || typeof client !== 'object' || typeof client.defineCommand !== 'function' || typeof client.duplicate !== 'function') {
    throw new errors.InvalidOption(`${owner} redis`, 'must be an ioredis Redis or Cluster client')
  }
  const options = client.options as { keyPrefix?: string, redisOptions?: { keyPrefix?: string } }
  const keyPrefix = options.keyPrefix ?? options.redisOptions?.keyPrefix
  if (keyPrefix !== undefined && keyPrefix !== '') {
    throw new errors.InvalidOption(`${owner} redis`, `has ioredis keyPrefix "${keyPrefix}", which keys built inside Lua scripts bypass; pass a client without it and use the prefix option instead`)
  }
}

export function checkPrefix (prefix: unknown): string {
  if (prefix === undefined) return 'longpoll:'
  // A brace in the prefix would become every key's hash tag and put all channels in one Cluster slot.
  if (typeof prefix !== 'string' || /[{}]/.test(prefix)) throw new errors.InvalidOption('prefix', 'must be a string without "{" or "}"')
  return prefix
}

function positive (value: number, name: string): number {
  if (!Number.isSafeInteger(value) || value <= 0) throw new errors.InvalidOption(name, 'must be a positive integer (milliseconds)')
  return value
}
