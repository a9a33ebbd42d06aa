// LongPollWorker: takes jobs from a work queue (contract §3) over plain HTTP, through held claims. For browsers
// and Node (global fetch); no Node-only import may appear here.
// index.ts re-exports it; it takes the error type and Retry-After parsing from poll.js, as the client does.
import { LongPollClientError, parseRetryAfter } from './poll.js'
import { backoffDelay, sleep } from './backoff.js'

/** A job as a claim hands it out. `receipt` belongs to this lease alone; `attempt` counts from 1. */
export interface LongPollJob<T = unknown> {
  id: string
  data: T
  attempt: number
  receipt: string
  /** When the lease passes (epoch ms, the server's clock) unless it is extended. */
  leaseUntil: number
  /** When the job was enqueued (epoch ms). */
  time: number
}

export interface LongPollJobContext {
  /**
   * Aborted when the worker learns that the job's lease is lost (an extend answered 409): another worker may
   * have the job now, and whatever this handler still does will not be acknowledged.
   */
  signal: AbortSignal
}

export type LongPollWorkerOperation = 'claim' | 'ack' | 'nack' | 'extend' | 'handler'

export interface LongPollWorkerOptions<T = unknown> {
  /** Where the plugin's routes are, e.g. `https://example.com/lp` (its `/queues/<queue>/…` are appended). */
  url: string | URL
  queue: string
  /**
   * Does one job. What it resolves is acknowledged (the job is done and gone); what it throws is nacked with
   * the error's message (the job comes back, its attempt counted). Jobs are delivered at least once: a handler
   * must be safe to run again for the same `job.id`.
   */
  handler: (job: LongPollJob<T>, context: LongPollJobContext) => unknown
  /** Jobs run at once, at most. Default 1. */
  concurrency?: number
  /** Milliseconds each claimed job is this worker's alone; extended at half of it while the handler runs. Default 30000 (the server clamps it to its `maxLease`). */
  lease?: number
  /** Milliseconds the server holds each claim (the server clamps it). Default: the server's default. */
  timeout?: number
  /** Milliseconds before a nacked job is available again: a number, or computed from the job and the error. Default 0. */
  retryDelay?: number | ((job: LongPollJob<T>, error: unknown) => number)
  /** First retry delay after a failed request, in milliseconds; it doubles per failure. Default 500. */
  minDelay?: number
  /** Longest retry delay, in milliseconds. Default 30000. */
  maxDelay?: number
  /** Extra request headers (e.g. authorization); a function is called before every request. */
  headers?: Record<string, string> | (() => Record<string, string>)
  /** The fetch to use. Default: the global fetch. */
  fetch?: typeof fetch
  /**
   * Told of every failure, none of which stops the worker: a handler that threw (the job is nacked), a request
   * that failed and is retried, a lease lost (`LongPollClientError` with status 409 and code
   * `FST_LONGPOLL_LEASE_LOST`: the job may be with another worker now).
   */
  onError?: (error: unknown, context: { operation: LongPollWorkerOperation, job?: LongPollJob<T> }) => void
}

interface ClaimAnswer<T> {
  status: 'ok' | 'timeout'
  jobs: Array<LongPollJob<T>>
}

/** One job in hand, from its claim until its ack or nack is answered (or given up). */
interface InHand<T> {
  job: LongPollJob<T>
  /** Our estimate of when the lease passes, in our own clock. */
  expires: number
  /** The next extend. */
  timer: ReturnType<typeof setTimeout> | undefined
  /** Aborted when the lease is known lost. */
  lost: AbortController
  /** The handler has returned: a late extend answer no longer matters. */
  finished: boolean
}

type RetryableError = LongPollClientError & { retryAfter?: number }

const LEASE_LOST = 'FST_LONGPOLL_LEASE_LOST'
const DEFAULT_LEASE_MS = 30_000
/** Slack on top of a claim's own timeout before the worker gives up on an answer and retries. */
const ANSWER_GRACE_MS = 15_000
/** How long an ack, nack or extend may take before it counts as failed. */
const REQUEST_TIMEOUT_MS = 15_000
/** Most receipts in one ack (the server's default maxBatch; a server with a smaller one refuses, and they are acked one by one). */
const MAX_ACK_BATCH = 100
/** Longest error message sent with a nack. */
const MAX_ERROR_LENGTH = 1000

/**
 * Takes jobs from one queue and runs `handler` on each, at most `concurrency` at once. Claims are held long
 * polls asking for as many jobs as there are free slots; a job still running at half its lease gets its lease
 * extended; what the handler resolves is acked, what it throws is nacked. Failed requests are retried with
 * exponential backoff and jitter, honouring `Retry-After`.
 *
 * `start()` resolves when the worker has stopped, and rejects if the server refuses claims for good (400,
 * 401, 403, 404: a wrong URL, queue or credentials) after settling the jobs in hand. `stop()` claims no more,
 * aborts the held claim, and resolves once every job in hand is settled.
 */
export class LongPollWorker<T = unknown> {
  private readonly options: LongPollWorkerOptions<T>
  private readonly concurrency: number
  private readonly lease: number
  private readonly stopper = new AbortController()
  private readonly inHand = new Map<string, InHand<T>>()
  /** Handlers running now: what `concurrency` bounds. */
  private running = 0
  private readonly settling = new Set<Promise<void>>()
  /** Acks waiting for the end of this turn of the event loop, to go in one request. */
  private readonly acks: Array<{ receipt: string, resolve: (acked: boolean) => void }> = []
  private loop: Promise<void> | undefined
  /** Resolves the claim loop's wait for a free slot. */
  private slotFreed: (() => void) | undefined

  constructor (options: LongPollWorkerOptions<T>) {
    if (options === null || typeof options !== 'object') throw new TypeError('LongPollWorker needs options { url, queue, handler }')
    if (typeof options.url !== 'string' && !(options.url instanceof URL)) throw new TypeError('LongPollWorker: "url" must be a string or URL')
    if (typeof options.queue !== 'string' || options.queue === '') throw new TypeError('LongPollWorker: "queue" must be a non-empty string')
    if (typeof options.handler !== 'function') throw new TypeError('LongPollWorker: "handler" must be a function')
    const concurrency = options.concurrency ?? 1
    if (!Number.isInteger(concurrency) || concurrency < 1) throw new TypeError('LongPollWorker: "concurrency" must be an integer ≥ 1')
    const lease = options.lease ?? DEFAULT_LEASE_MS
    if (!Number.isInteger(lease) || lease < 1) throw new TypeError('LongPollWorker: "lease" must be an integer number of milliseconds ≥ 1')
    this.options = options
    this.concurrency = concurrency
    this.lease = lease
  }

  /** Jobs in hand: running, or waiting for their ack or nack to be answered. */
  get active (): number {
    return this.inHand.size
  }

  get stopped (): boolean {
    return this.stopper.signal.aborted
  }

  /** Starts claiming; resolves when the worker has stopped (see the class). Called again while running, it returns the same promise; after a stop, it rejects. */
  start (): Promise<void> {
    if (this.stopped) return Promise.reject(new Error('LongPollWorker: stopped; a worker cannot be restarted'))
    if (this.loop !== undefined) return this.loop
    this.loop = this.claimLoop()
    return this.loop
  }

  /** Claims no more (a held claim is aborted) and resolves once every job in hand is settled. */
  async stop (): Promise<void> {
    this.stopper.abort()
    this.slotFreed?.()
    await this.loop?.catch(() => {})
    await this.settled()
  }

  private async claimLoop (): Promise<void> {
    let failures = 0
    try {
      while (!this.stopped) {
        // A slot is free once its handler has returned: the claim for it goes out while the ack is on its way,
        // so a busy worker does not wait a round trip per job. stop() still waits for every ack.
        const free = this.concurrency - this.running
        if (free === 0) {
          await new Promise<void>((resolve) => { this.slotFreed = resolve })
          this.slotFreed = undefined
          continue
        }
        let jobs: Array<LongPollJob<T>>
        const asked = Date.now()
        try {
          jobs = await this.claim(free)
          failures = 0
        } catch (err) {
          if (this.stopped) break
          this.report(err, 'claim')
          const retryAfter = (err as RetryableError).retryAfter
          if (err instanceof LongPollClientError && retryAfter === undefined) throw err
          await sleep(backoffDelay(failures++, retryAfter, this.options.minDelay, this.options.maxDelay), this.stopper.signal)
          continue
        }
        // Jobs that arrive after stop() (the claim was answered just before the abort) are in hand all the
        // same: they are run and settled, not dropped to wait out their lease.
        for (const job of jobs) this.run(job)
        // An empty answer that came at once (`timeout: 0`, or a server whose maxTimeout is tiny) must not turn
        // the loop into a busy one: wait about a min-delay before asking again.
        if (jobs.length === 0 && Date.now() - asked < (this.options.minDelay ?? 500)) {
          await sleep(backoffDelay(0, 0, this.options.minDelay, this.options.maxDelay), this.stopper.signal)
        }
      }
    } finally {
      this.stopper.abort()
      await this.settled()
    }
  }

  private async claim (limit: number): Promise<Array<LongPollJob<T>>> {
    const { timeout } = this.options
    const body: Record<string, number> = { limit, lease: this.lease }
    if (timeout !== undefined) body.timeout = timeout
    const answer = await this.request('claim', body, (timeout ?? 60_000) + ANSWER_GRACE_MS, this.stopper.signal) as ClaimAnswer<T>
    return Array.isArray(answer?.jobs) ? answer.jobs : []
  }

  private run (job: LongPollJob<T>): void {
    const entry: InHand<T> = { job, expires: this.expiry(job.leaseUntil), timer: undefined, lost: new AbortController(), finished: false }
    this.inHand.set(job.receipt, entry)
    this.running++
    this.scheduleExtend(entry)
    const done = (async () => {
      let failure: { error: unknown } | undefined
      try {
        await this.options.handler(job, { signal: entry.lost.signal })
      } catch (error) {
        failure = { error }
        this.report(error, 'handler', job)
      }
      entry.finished = true
      clearTimeout(entry.timer)
      this.running--
      this.slotFreed?.()
      // A lease known lost is not settled: the receipt is stale, and the ack or nack would only answer 409.
      if (!entry.lost.signal.aborted) await this.settle(entry, failure)
    })().finally(() => {
      this.inHand.delete(job.receipt)
      this.settling.delete(done)
    })
    this.settling.add(done)
  }

  /** Acks (no failure) or nacks the job, retrying transient failures while its lease may still hold. */
  private async settle (entry: InHand<T>, failure: { error: unknown } | undefined): Promise<void> {
    const { job } = entry
    const operation = failure === undefined ? 'ack' : 'nack'
    const body: Record<string, unknown> = { receipt: job.receipt }
    if (failure !== undefined) {
      body.error = errorMessage(failure.error)
      const delay = this.retryDelay(job, failure.error)
      if (delay > 0) body.delay = delay
    } else if (this.concurrency > 1 && await this.ackTogether(entry)) {
      return
    }
    for (let failures = 0; ; failures++) {
      try {
        await this.request(operation, body, REQUEST_TIMEOUT_MS)
        return
      } catch (err) {
        this.report(err, operation, job)
        const retryAfter = (err as RetryableError).retryAfter
        if (err instanceof LongPollClientError && retryAfter === undefined) return // 409 (lease lost), 400, 403…: retrying cannot help
        const delay = backoffDelay(failures, retryAfter, this.options.minDelay, this.options.maxDelay)
        // Past the lease the receipt is stale: the job goes back to the queue by itself (at least once).
        if (Date.now() + delay >= entry.expires) return
        await sleep(delay)
      }
    }
  }

  /**
   * Acks jobs whose handlers finished in the same turn of the event loop with one request (`{ receipts }`).
   * Resolves true once this job's ack is answered 200. On any failure it resolves false for every job of the
   * batch, and each is acked on its own (the server checks every receipt before it changes anything, so a
   * failed batch acked none, and one stale receipt cannot cost the others theirs).
   */
  private ackTogether (entry: InHand<T>): Promise<boolean> {
    return new Promise((resolve) => {
      this.acks.push({ receipt: entry.job.receipt, resolve })
      if (this.acks.length === 1) setTimeout(() => { void this.flushAcks() }, 0)
    })
  }

  private async flushAcks (): Promise<void> {
    const batch = this.acks.splice(0, this.acks.length)
    for (let start = 0; start < batch.length; start += MAX_ACK_BATCH) {
      const part = batch.slice(start, start + MAX_ACK_BATCH)
      let ok = false
      try {
        const body = part.length === 1 ? { receipt: part[0]?.receipt } : { receipts: part.map((a) => a.receipt) }
        await this.request('ack', body, REQUEST_TIMEOUT_MS)
        ok = true
      } catch {
        // Each job is acked again on its own, and its failure, if it fails again, reported with it.
      }
      for (const ack of part) ack.resolve(ok)
    }
  }

  private retryDelay (job: LongPollJob<T>, error: unknown): number {
    const { retryDelay } = this.options
    try {
      const delay = typeof retryDelay === 'function' ? retryDelay(job, error) : retryDelay
      return typeof delay === 'number' && Number.isFinite(delay) && delay > 0 ? Math.round(delay) : 0
    } catch (err) {
      this.report(err, 'nack', job)
      return 0
    }
  }

  /** The next extend, at half of what is left of the lease. */
  private scheduleExtend (entry: InHand<T>, delay = (entry.expires - Date.now()) / 2): void {
    entry.timer = setTimeout(() => { void this.extend(entry) }, Math.max(0, delay))
  }

  private async extend (entry: InHand<T>): Promise<void> {
    const { job } = entry
    try {
      const answer = await this.request('extend', { receipt: job.receipt, lease: this.lease }, REQUEST_TIMEOUT_MS) as { leaseUntil: number }
      if (entry.finished) return
      entry.expires = this.expiry(answer.leaseUntil)
      this.scheduleExtend(entry)
    } catch (err) {
      // An extend still in flight when the handler returned can lose the race to the ack (then it answers 409):
      // it no longer matters.
      if (entry.finished) return
      this.report(err, 'extend', job)
      if (err instanceof LongPollClientError && err.code === LEASE_LOST) {
        entry.lost.abort(err)
        return
      }
      // Transient: try again while the lease may still hold, sooner as its end nears.
      const left = entry.expires - Date.now()
      if (left > 0) this.scheduleExtend(entry, Math.max(left / 2, Math.min(left, 50)))
    }
  }

  /**
   * When a lease passes, in our clock: the lease we asked for from now, or less if the server's `leaseUntil`
   * says so (it clamps to its `maxLease`). A `leaseUntil` already past in our clock reads as a clock that is
   * ahead of the server's, not as a lease that is over, and is ignored.
   */
  private expiry (leaseUntil: number): number {
    const now = Date.now()
    const left = leaseUntil - now
    return now + (left > 0 ? Math.min(this.lease, left) : this.lease)
  }

  private async request (operation: 'claim' | 'ack' | 'nack' | 'extend', body: unknown, timeoutMs: number, signal?: AbortSignal): Promise<unknown> {
    const { url, queue, headers } = this.options
    // Relative to the page in a browser (`url: '/lp'`); absolute elsewhere.
    const target = new URL(`${String(url).replace(/\/+$/, '')}/queues/${encodeURIComponent(queue)}/${operation}`, globalThis.location?.href)
    const controller = new AbortController()
    const abort = (): void => controller.abort()
    signal?.addEventListener('abort', abort)
    const guard = setTimeout(abort, timeoutMs)
    try {
      const doFetch = this.options.fetch ?? globalThis.fetch
      const response = await doFetch(target, {
        method: 'POST',
        signal: controller.signal,
        cache: 'no-store',
        headers: { accept: 'application/json', 'content-type': 'application/json', ...(typeof headers === 'function' ? headers() : headers) },
        body: JSON.stringify(body)
      })
      if (response.status === 200 || response.status === 201) return await response.json()
      const answer = await response.json().catch(() => ({})) as { code?: string, message?: string }
      const error: RetryableError = new LongPollClientError(response.status, answer.code, answer.message ?? `${operation} answered ${response.status}`)
      if (response.status >= 500 || response.status === 429 || response.status === 408) {
        error.retryAfter = parseRetryAfter(response.headers.get('retry-after')) ?? 0
      }
      throw error
    } finally {
      clearTimeout(guard)
      signal?.removeEventListener('abort', abort)
    }
  }

  private async settled (): Promise<void> {
    while (this.settling.size > 0) await Promise.all(this.settling)
  }

  private report (error: unknown, operation: LongPollWorkerOperation, job?: LongPollJob<T>): void {
    try {
      this.options.onError?.(error, job === undefined ? { operation } : { operation, job })
    } catch {
      // A throwing onError must not stop the worker or leave a job unsettled.
    }
  }
}

function errorMessage (error: unknown): string {
  const message = error instanceof Error ? error.message : String(error)
  return message.length > MAX_ERROR_LENGTH ? message.slice(0, MAX_ERROR_LENGTH) : message
}
