import type { FastifyBaseLogger } from 'fastify'
import { errors } from '../errors.js'
import type { LongPollNotifier, QueueEvent } from '../notifiers/types.js'
import type { NormalizedOptions } from '../options.js'
import { ClaimHolder, type JobCounters } from './claims.js'
import { noMetrics, type JobEvent, type Metrics } from '../metrics.js'
import type { EnqueueResult, LongPollQueueStore, NackResult, QueueCounts } from './types.js'

/** `Idempotency-Key`'s grammar (contract §1.5): 1–200 visible ASCII characters. */
export const JOB_KEY_PATTERN = /^[\x21-\x7e]{1,200}$/

export interface EnqueueOptions {
  /** Milliseconds before the job may be claimed. Default 0. */
  delay?: number
  /** De-duplicating key: a repeat within `idempotencyTtl` stores nothing and answers the first job's id. */
  key?: string
}

export interface DeadLetter {
  id: string
  data: unknown
  /** Leases the job had. */
  attempts: number
  /** The last error a nack gave; null when its leases passed without one. */
  error: string | null
  /** Epoch ms when the job was enqueued. */
  time: number
}

/** `app.longpoll.queue(name)`: the server side of one queue. */
export interface QueueApi {
  /** Stores a job and wakes a claim, on any instance. Same path as `POST /queues/:queue/jobs`. */
  enqueue (data: unknown, options?: EnqueueOptions): Promise<EnqueueResult>
  /** How many jobs are waiting, delayed, leased and dead. */
  stats (): Promise<QueueCounts>
  /** Dead letters, oldest first (at most `limit`, default 100). */
  dead (options?: { limit?: number }): Promise<DeadLetter[]>
  /** Requeues every dead letter with its attempts reset; resolves with how many. */
  retryDead (): Promise<number>
}

export type QueueOptions = Pick<NormalizedOptions, 'channelPattern' | 'maxMessageBytes' | 'maxAttempts' | 'idempotencyTtl' | 'maxTimeout' | 'maxHeldPolls' | 'retryAfter' | 'clientLimit'> & {
  queueStore: LongPollQueueStore
  notifier: LongPollNotifier
}

/** Enqueue, settle, counts and dead letters, shared by the routes and the decorator so both take one code path. */
export class Queues {
  readonly claims: ClaimHolder
  readonly jobs: JobCounters = { enqueued: 0, claimed: 0, acked: 0, nacked: 0, expired: 0, dead: 0 }

  constructor (readonly options: QueueOptions, private readonly log: FastifyBaseLogger, heldPolls: () => number, private readonly metrics: Metrics = noMetrics) {
    this.claims = new ClaimHolder({
      count: (event, n) => this.count(event, n),
      metrics,
      clientLimit: options.clientLimit,
      store: options.queueStore,
      notifier: options.notifier,
      maxHeldPolls: options.maxHeldPolls,
      retryAfter: options.retryAfter,
      heldPolls,
      log
    })
  }

  checkQueue (queue: unknown): string {
    if (typeof queue !== 'string' || !this.options.channelPattern.test(queue)) {
      throw new errors.BadQueue(String(queue).slice(0, 200), this.options.channelPattern.source)
    }
    return queue
  }

  async enqueue (queue: string, data: unknown, options: EnqueueOptions = {}): Promise<EnqueueResult> {
    this.checkQueue(queue)
    const delay = options.delay ?? 0
    if (!Number.isSafeInteger(delay) || delay < 0 || delay > 2_147_483_647) throw new errors.BadJobOption('delay', 'must be an integer of milliseconds, 0 to 2147483647')
    if (options.key !== undefined && (typeof options.key !== 'string' || !JOB_KEY_PATTERN.test(options.key))) {
      throw new errors.BadJobOption('key', '1 to 200 visible ASCII characters')
    }
    let json: string | undefined
    try {
      json = JSON.stringify(data)
    } catch (err) {
      throw new errors.BadData((err as Error).message)
    }
    if (json === undefined) throw new errors.MissingData()
    const bytes = Buffer.byteLength(json)
    if (bytes > this.options.maxMessageBytes) throw new errors.MessageTooLarge(bytes, this.options.maxMessageBytes)
    const request = { delay, keyTtl: this.options.idempotencyTtl, ...(options.key === undefined ? {} : { key: options.key }) }
    const result = await this.store('enqueue', queue, () => this.options.queueStore.enqueue(queue, json, request))
    // Stored, so the enqueue succeeded whatever happens next; a failed announcement makes the job late for
    // claims already held (their timeout, or the next announcement, finds it), never lost.
    if (!result.duplicate) {
      this.count('enqueued', 1)
      this.announce(queue, delay > 0 ? { type: 'due', in: delay } : { type: 'jobs', count: 1 })
    }
    return result
  }

  async ack (queue: string, receipts: string[]): Promise<number> {
    const acked = await this.store('ack', queue, () => this.options.queueStore.ack(queue, receipts))
    this.count('acked', acked)
    return acked
  }

  async nack (queue: string, receipt: string, delay: number, error: string | undefined): Promise<NackResult> {
    const request = { delay, maxAttempts: this.options.maxAttempts, ...(error === undefined ? {} : { error }) }
    const where = await this.store('nack', queue, () => this.options.queueStore.nack(queue, receipt, request))
    this.count('nacked', 1)
    if (where === 'dead') this.count('dead', 1)
    if (where === 'waiting') this.announce(queue, { type: 'jobs', count: 1 })
    else if (where === 'delayed') this.announce(queue, { type: 'due', in: delay })
    return where
  }

  async extend (queue: string, receipt: string, lease: number): Promise<number> {
    return await this.store('extend', queue, () => this.options.queueStore.extend(queue, receipt, lease))
  }

  async counts (queue: string): Promise<QueueCounts> {
    this.checkQueue(queue)
    return await this.store('counts', queue, () => this.options.queueStore.counts(queue, { maxAttempts: this.options.maxAttempts }))
  }

  async dead (queue: string, limit = 100): Promise<DeadLetter[]> {
    this.checkQueue(queue)
    if (!Number.isSafeInteger(limit) || limit < 1) throw new errors.BadJobOption('limit', 'must be a positive integer')
    const dead = await this.store('dead', queue, () => this.options.queueStore.dead(queue, limit))
    return dead.map((job) => ({ id: job.id, data: JSON.parse(job.json) as unknown, attempts: job.attempts, error: job.error, time: job.time }))
  }

  async retryDead (queue: string): Promise<number> {
    this.checkQueue(queue)
    const count = await this.store('retryDead', queue, () => this.options.queueStore.retryDead(queue))
    if (count > 0) this.announce(queue, { type: 'jobs', count })
    return count
  }

  api (queue: string): QueueApi {
    this.checkQueue(queue)
    return Object.freeze({
      enqueue: (data: unknown, options?: EnqueueOptions) => this.enqueue(queue, data, options),
      stats: () => this.counts(queue),
      dead: (options?: { limit?: number }) => this.dead(queue, options?.limit),
      retryDead: () => this.retryDead(queue)
    })
  }

  /** What happened to jobs: `jobs` for tests and stats, and the `longpoll_jobs_total{event}` metric. */
  private count (event: JobEvent, n: number): void {
    this.jobs[event] += n
    this.metrics.job(event, n)
  }

  /** Store errors become 503 (nothing changed, retry), except the store's own coded ones (409 lease lost). */
  private async store<T> (op: string, queue: string, run: () => Promise<T>): Promise<T> {
    try {
      return await run()
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode !== undefined) throw err
      this.metrics.storeError('queue')
      this.log.error({ err, queue, op }, `fastify-longpoll: the queue store failed to ${op}`)
      throw new errors.StoreUnavailable((err as Error).message, { cause: err })
    }
  }

  private announce (queue: string, event: QueueEvent): void {
    const failed = (err: unknown): void => {
      this.log.warn({ err, queue }, 'fastify-longpoll: the notifier failed to announce jobs')
    }
    try {
      this.options.notifier.publish(queue, event, 'queue').catch(failed)
    } catch (err) {
      failed(err)
    }
  }
}
