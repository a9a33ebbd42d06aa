// Type-only: ioredis is an optional peer dependency, so this module must load without it installed.
import type { Cluster, Redis } from 'ioredis'
import { randomBytes } from 'node:crypto'
import { errors } from '../errors.js'
import { checkClient, whenReady, withTimeout, type Connectable, type RedisClient } from '../redis/client.js'
import { checkPrefix, queueKey, type QueuePart } from '../redis/keys.js'
import { SCRIPTS, SENTINELS } from '../redis/scripts.js'
import type { ClaimedJob, ClaimRequest, ClaimResult, DeadJob, EnqueueRequest, EnqueueResult, LongPollQueueStore, NackRequest, NackResult, QueueCounts } from './types.js'

export interface RedisQueueStoreOptions {
  /**
   * Your ioredis client (`Redis` or `Cluster`). The store never closes it. It must not have ioredis's
   * `keyPrefix` set: keys built inside Lua scripts bypass it; use `prefix` instead.
   */
  redis: RedisClient
  /** Prefix of every key; use the same as the store's and the notifier's. Default `longpoll:`. No `{` or `}`. */
  prefix?: string
  /** Milliseconds a store command may take before it is failed (default 5000). An enqueue that fails answers 503. */
  commandTimeout?: number
}

/*
 * One queue Q is a handful of keys sharing the hash tag {Q} (lib/redis/keys.ts), so each step is one Lua
 * script on one Cluster slot (lib/redis/scripts/queue-*.lua):
 *   <prefix>q:{Q}:waiting   list of job ids, oldest first (RPUSH in, LPOP out: O(1))
 *   <prefix>q:{Q}:delayed   sorted set id -> when it becomes available
 *   <prefix>q:{Q}:leased    sorted set id -> when its lease passes
 *   <prefix>q:{Q}:jobs      hash id -> "<time>:<json>", written once
 *   <prefix>q:{Q}:state     hash id -> "<attempts>:<receipt>" (small, rewritten per lease; the data is not)
 *   <prefix>q:{Q}:errors    hash id -> the last nack error
 *   <prefix>q:{Q}:dead      list of dead job ids, oldest first
 *   <prefix>q:{Q}:key:<k>   string, the id of the first job enqueued with key k, expiring after idempotencyTtl
 * Time is Redis's (TIME inside each script), so leases mean the same to every instance whatever its clock.
 * Every key empties itself when the queue drains: an idle queue costs nothing.
 */

const RETRY_BATCH = 1000
const NO_KEY = 'unused'

type Client = Redis | Cluster
type Reply = Array<string | number | Reply>
type ScriptCall = (...args: Array<string | number>) => Promise<Reply>

/** Names the scripts are defined under on the client: versioned, so a changed script never meets an old name. */
const COMMANDS = {
  enqueue: 'longpollQueueEnqueueV1',
  claim: 'longpollQueueClaimV1',
  ack: 'longpollQueueAckV1',
  nack: 'longpollQueueNackV1',
  extend: 'longpollQueueExtendV1',
  counts: 'longpollQueueCountsV1',
  dead: 'longpollQueueDeadV1',
  retryDead: 'longpollQueueRetryDeadV1'
} as const
const SCRIPT_OF = {
  enqueue: SCRIPTS.queueEnqueue,
  claim: SCRIPTS.queueClaim,
  ack: SCRIPTS.queueAck,
  nack: SCRIPTS.queueNack,
  extend: SCRIPTS.queueExtend,
  counts: SCRIPTS.queueCounts,
  dead: SCRIPTS.queueDead,
  retryDead: SCRIPTS.queueRetryDead
} as const

/** Jobs in Redis: every instance of your app sees the same queues. Each step is one Lua script, one round trip. */
export class RedisQueueStore implements LongPollQueueStore {
  readonly prefix: string
  private readonly redis: Client
  private readonly commandTimeout: number
  private connectedOnce: boolean
  private readonly onReady = (): void => { this.connectedOnce = true }
  /** A lower bound of (Redis's clock - ours) in ms; null until learnt. See RedisStore.append for why. */
  private offset: number | null = null

  constructor (options: RedisQueueStoreOptions) {
    if (options === null || typeof options !== 'object') throw new errors.InvalidOption('RedisQueueStore', 'expects { redis }')
    checkClient(options.redis, 'RedisQueueStore')
    this.redis = options.redis as Client
    this.prefix = checkPrefix(options.prefix)
    const commandTimeout = options.commandTimeout ?? 5_000
    if (!Number.isSafeInteger(commandTimeout) || commandTimeout <= 0) throw new errors.InvalidOption('commandTimeout', 'must be a positive integer (milliseconds)')
    this.commandTimeout = commandTimeout
    for (const [op, command] of Object.entries(COMMANDS)) this.redis.defineCommand(command, SCRIPT_OF[op as keyof typeof COMMANDS])
    this.connectedOnce = this.redis.status === 'ready'
    this.redis.on('ready', this.onReady)
  }

  /**
   * Like RedisStore.append: refused at once while Redis is unreachable (never queued to run after the 503),
   * and carrying a deadline in Redis's clock so that a late run of a timed-out enqueue stores nothing.
   */
  async enqueue (queue: string, json: string, request: EnqueueRequest): Promise<EnqueueResult> {
    await this.connected()
    if (this.offset === null) await this.calibrate()
    const deadline = this.offset === null ? 0 : Date.now() + this.commandTimeout + this.offset
    for (;;) {
      const id = randomBytes(9).toString('base64url')
      const reply = await this.run('enqueue', queue, ['waiting', 'delayed', 'jobs', 'state', NO_KEY], [
        id, json, request.delay, request.keyTtl, request.key === undefined ? '0' : '1', deadline
      ], request.key)
      const [code, value] = reply as [number, string | undefined]
      if (code === SENTINELS.ENQUEUED) return { id: value as string, duplicate: false }
      if (code === SENTINELS.DUPLICATE) return { id: value as string, duplicate: true }
      if (code === SENTINELS.PAST_DEADLINE) throw new Error(`Redis ran the enqueue after its ${this.commandTimeout} ms deadline; nothing was stored`)
      // ID_TAKEN: 72 random bits collided; draw again.
    }
  }

  /** Refused at once while Redis is unreachable, like enqueue: a late run would lease jobs to a claim that is gone. */
  async claim (queue: string, request: ClaimRequest): Promise<ClaimResult> {
    await this.connected()
    const parts = Array.from({ length: request.limit }, () => randomBytes(16).toString('base64url'))
    const reply = await this.run('claim', queue, ['waiting', 'delayed', 'leased', 'jobs', 'state', 'dead'], [request.limit, request.lease, request.maxAttempts, ...parts])
    const [now, leaseUntil, waiting, nextDue, raw, expired, died] = reply as [number, number, number, number, Array<[string, string, number, string]>, number, number]
    this.offset = Number(now) - Date.now()
    const jobs: ClaimedJob[] = raw.map(([id, stored, attempt, receipt]) => {
      const colon = stored.indexOf(':')
      return { id, json: stored.slice(colon + 1), time: Number(stored.slice(0, colon)), attempt: Number(attempt), receipt, leaseUntil: Number(leaseUntil) }
    })
    return { jobs, waiting: Number(waiting), nextDueIn: Number(nextDue) === SENTINELS.NO_DUE ? null : Number(nextDue), expired: Number(expired), died: Number(died) }
  }

  async ack (queue: string, receipts: string[]): Promise<number> {
    const [code, value] = await this.run('ack', queue, ['leased', 'jobs', 'state', 'errors'], receipts) as [number, number]
    if (code === SENTINELS.LEASE_LOST) throw new errors.LeaseLost(String(receipts[Number(value) - 1]).slice(0, 80))
    return Number(value)
  }

  async nack (queue: string, receipt: string, request: NackRequest): Promise<NackResult> {
    const [code] = await this.run('nack', queue, ['waiting', 'delayed', 'leased', 'state', 'errors', 'dead'], [
      receipt, request.delay, request.maxAttempts, request.error === undefined ? '0' : '1', request.error ?? ''
    ]) as [number]
    if (code === SENTINELS.LEASE_LOST) throw new errors.LeaseLost(receipt.slice(0, 80))
    if (code === SENTINELS.NACKED_DEAD) return 'dead'
    return code === SENTINELS.NACKED_DELAYED ? 'delayed' : 'waiting'
  }

  async extend (queue: string, receipt: string, lease: number): Promise<number> {
    const [code, leaseUntil] = await this.run('extend', queue, ['leased', 'state'], [receipt, lease]) as [number, number]
    if (code === SENTINELS.LEASE_LOST) throw new errors.LeaseLost(receipt.slice(0, 80))
    return Number(leaseUntil)
  }

  async counts (queue: string, request: { maxAttempts: number }): Promise<QueueCounts> {
    const [waiting, delayed, leased, dead] = (await this.run('counts', queue, ['waiting', 'delayed', 'leased', 'state', 'dead'], [request.maxAttempts])).map(Number) as [number, number, number, number]
    return { waiting, delayed, leased, dead }
  }

  async dead (queue: string, limit: number): Promise<DeadJob[]> {
    const reply = await this.run('dead', queue, ['dead', 'jobs', 'state', 'errors'], [limit]) as Array<[string, string | null, number, string, number]>
    return reply.filter(([, stored]) => typeof stored === 'string').map(([id, stored, attempts, error, hasError]) => {
      const colon = (stored as string).indexOf(':')
      return { id, json: (stored as string).slice(colon + 1), time: Number((stored as string).slice(0, colon)), attempts: Number(attempts), error: Number(hasError) === 1 ? error : null }
    })
  }

  async retryDead (queue: string): Promise<number> {
    let total = 0
    for (;;) {
      const count = Number(await this.run('retryDead', queue, ['waiting', 'dead', 'state', 'errors'], [RETRY_BATCH]))
      total += count
      if (count < RETRY_BATCH) return total
    }
  }

  /** The client is yours: close() only removes the store's listener. */
  async close (): Promise<void> {
    this.redis.removeListener('ready', this.onReady)
  }

  private async run (op: keyof typeof COMMANDS, queue: string, parts: Array<QueuePart | typeof NO_KEY>, args: Array<string | number>, dedupKey?: string): Promise<Reply> {
    const keys = parts.map((part) => part === NO_KEY
      ? (dedupKey === undefined ? `${queueKey(this.prefix, queue, 'key')}:` : `${queueKey(this.prefix, queue, 'key')}:${dedupKey}`)
      : queueKey(this.prefix, queue, part))
    const call = (this.redis as unknown as Record<string, ScriptCall>)[COMMANDS[op]] as ScriptCall
    return await withTimeout(call.call(this.redis, ...keys, ...args), this.commandTimeout, op)
  }

  private async calibrate (): Promise<void> {
    const [seconds, micros] = await withTimeout(this.redis.time(), this.commandTimeout, 'TIME')
    this.offset ??= Number(seconds) * 1000 + Math.floor(Number(micros) / 1000) - Date.now()
  }

  /** Resolves when the client is ready; before its first connection, waits for it (up to commandTimeout). */
  private async connected (): Promise<void> {
    await whenReady(this.redis as unknown as Connectable, this.connectedOnce, this.commandTimeout)
  }
}
