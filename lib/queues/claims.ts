import type { FastifyBaseLogger, FastifyReply } from 'fastify'
import { withRetryAfter } from '../answers.js'
import type { ClientLimit } from '../client-limit.js'
import { errors } from '../errors.js'
import { REJECT_REASONS, type JobEvent, type Metrics } from '../metrics.js'
import type { LongPollNotifier, QueueEvent } from '../notifiers/types.js'
import type { ClaimedJob, ClaimRequest, ClaimResult, LongPollQueueStore } from './types.js'

const ATTEMPTING = 0 // a store claim is in flight for it
const WAITING = 1 // held: waiting for a wake-up, the queue's due timer, or its timeout
const DONE = 2 // answered or aborted; owns nothing any more
type ClaimState = typeof ATTEMPTING | typeof WAITING | typeof DONE

/** Milliseconds before held claims try again after a store claim failed (the jobs are safe in the store). */
const RETRY_AFTER_FAILURE = 1_000
/** A give-back nack must not dead-letter a job no worker ever saw. */
const NEVER_DEAD = Number.MAX_SAFE_INTEGER

/** One claim held on a queue. It owns its timer and its 'close' listener and releases both in `release`. */
class HeldClaim {
  state: ClaimState = ATTEMPTING
  /** A wake-up arrived while its store claim was in flight: claim again before waiting. */
  dirty = false
  /** At least one store claim answered: a timeout is then a real `timeout`, not a store failure. */
  attempted = false
  timer: NodeJS.Timeout | null = null
  /** The `maxHeldPollsPerClient` slot it holds, if that limit is on. */
  client: string | null = null
  readonly onClose: () => void

  constructor (readonly waiters: QueueWaiters, readonly reply: FastifyReply, readonly request: ClaimRequest, holder: ClaimHolder) {
    this.onClose = () => holder.abort(this)
  }
}

/** The claims held on one queue, its subscription, and its one timer for the earliest due time known. */
class QueueWaiters {
  /** Claims waiting, longest-waiting first: a wake-up takes from the front. */
  readonly idle = new Set<HeldClaim>()
  /** Claims whose store claim is in flight. */
  readonly busy = new Set<HeldClaim>()
  /** Resolves once the notifier delivers this queue's events. */
  ready: Promise<void> | void = undefined
  dueTimer: NodeJS.Timeout | null = null
  dueAt = Infinity
  constructor (readonly queue: string) {}

  get size (): number {
    return this.idle.size + this.busy.size
  }
}

export interface ClaimHolderOptions {
  store: LongPollQueueStore
  /** Counts a job event (`JobCounters` and the `longpoll_jobs_total` metric). */
  count: (event: JobEvent, n: number) => void
  metrics: Metrics
  /** `maxHeldPollsPerClient`, shared with the hub: a client's polls and claims count together. */
  clientLimit: ClientLimit | null
  notifier: LongPollNotifier
  maxHeldPolls: number
  retryAfter: number
  /** Polls held by the hub now: polls and claims share `maxHeldPolls`. */
  heldPolls: () => number
  log: FastifyBaseLogger
}

/** What happened to jobs on this instance (contract §4's `longpoll_jobs_total{event}`). */
export interface JobCounters {
  enqueued: number
  /** Jobs handed out in claim answers. */
  claimed: number
  acked: number
  nacked: number
  /** Passed leases taken back by this instance's claims (to waiting, or dead). */
  expired: number
  /** Jobs moved to the dead letters by this instance: out of attempts at a nack or at a lease's end. */
  dead: number
}

export interface ClaimCounters {
  answered: number
  timeouts: number
  aborted: number
  rejected: number
}

const HEADERS = { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' }
const TIMEOUT_BODY = '{"status":"timeout","jobs":[]}'

/**
 * Holds claims, wakes them and answers them — the queue counterpart of the hub, with the same life cycle.
 *
 * No lost wake-ups (Q4): a claim is registered on its queue, and the queue's subscription confirmed, *before*
 * its first store claim. A job that becomes available before that claim is found by it; one that becomes
 * available after it is announced to a claim already registered. An announcement that arrives while a claim's
 * store claim is in flight marks it dirty, and it claims again instead of waiting. Time-based events (a delay
 * ending, a lease passing) are announced by nobody: every store claim returns the queue's next due time, and the
 * queue keeps one timer for the earliest one known; a `due` event (a delayed enqueue or nack elsewhere) moves
 * it earlier without a store call.
 *
 * Cheap waiting (Q5): an event for `count` new jobs wakes `count` claims (not all of them), one store claim
 * each. A claim that loses the race to another instance goes back to waiting; one that wins learns how many
 * jobs are still waiting and wakes that many more, so a burst is spread without waking every claim.
 */
export class ClaimHolder {
  private readonly queues = new Map<string, QueueWaiters>()
  private held = 0
  private closing = false
  private storeFailing = false
  readonly counters: ClaimCounters = { answered: 0, timeouts: 0, aborted: 0, rejected: 0 }

  constructor (private readonly options: ClaimHolderOptions) {}

  get heldClaims (): number {
    return this.held
  }

  /** Answers at once from the store: a `timeout: 0` claim. */
  async shortClaim (reply: FastifyReply, queue: string, request: ClaimRequest): Promise<void> {
    if (this.closing) return this.reject(reply, new errors.Closing())
    let result: ClaimResult
    try {
      result = await this.claim(queue, request)
    } catch (err) {
      return this.reject(reply, err as Error)
    }
    if (reply.raw.destroyed) return this.giveBack(queue, result.jobs)
    this.counters.answered++
    if (result.jobs.length === 0) this.counters.timeouts++
    this.options.count('claimed', result.jobs.length)
    reply.code(200).headers(HEADERS).send(result.jobs.length === 0 ? TIMEOUT_BODY : okBody(result.jobs))
  }

  /** Answers with jobs as soon as there are any, or at `timeout`. */
  async hold (reply: FastifyReply, queue: string, request: ClaimRequest, timeout: number): Promise<void> {
    if (this.closing) return this.reject(reply, new errors.Closing())
    if (reply.raw.destroyed) { // the client left while an async authorize hook ran
      this.counters.aborted++
      return
    }
    if (this.held + this.options.heldPolls() >= this.options.maxHeldPolls) {
      this.counters.rejected++
      return this.reject(reply, new errors.TooManyPolls(this.options.maxHeldPolls))
    }
    let client: string | null = null
    if (this.options.clientLimit !== null) {
      try {
        client = this.options.clientLimit.take(reply.request)
      } catch (err) {
        return this.reject(reply, err as Error) // 429, or what the user's clientKey threw
      }
    }
    const claim = this.attach(queue, reply, request)
    claim.client = client
    claim.timer = setTimeout(() => this.expire(claim), timeout)
    try {
      if (claim.waiters.ready !== undefined) await claim.waiters.ready
    } catch (err) {
      if (claim.state !== DONE) this.finish(claim, new errors.NotifierUnavailable((err as Error).message, { cause: err }))
      return
    }
    await this.attempt(claim)
  }

  /** A notifier event for a queue this process may hold claims on. */
  event (queue: string, event: QueueEvent): void {
    const waiters = this.queues.get(queue)
    if (waiters === undefined) return
    if (event.type === 'due') this.arm(waiters, event.in)
    else this.wake(waiters, event.count)
  }

  /** Events may have been lost (the notifier reconnected): one claim per queue re-checks, and spreads the rest. */
  resync (): void {
    for (const waiters of this.queues.values()) this.wake(waiters, 1)
  }

  /** First phase of shutdown: every claim, held or arriving, answers 503 so that workers reconnect elsewhere. */
  close (): void {
    this.closing = true
    for (const waiters of [...this.queues.values()]) {
      for (const claim of [...waiters.idle, ...waiters.busy]) this.finish(claim, new errors.Closing())
    }
  }

  /** The worker went away mid-hold: release everything the claim owns, answer nothing. */
  abort (claim: HeldClaim): void {
    if (claim.state === DONE || claim.reply.raw.writableFinished) return
    this.counters.aborted++
    this.release(claim)
  }

  /** Answers a claim with an error; a 503 (or 429) says when to retry. */
  reject (reply: FastifyReply, err: Error): void {
    const reason = REJECT_REASONS[(err as { code?: string }).code ?? '']
    if (reason !== undefined) this.options.metrics.rejected(reason)
    reply.send(withRetryAfter(reply, err, this.options.retryAfter))
  }

  private attach (queue: string, reply: FastifyReply, request: ClaimRequest): HeldClaim {
    let waiters = this.queues.get(queue)
    if (waiters === undefined) {
      waiters = new QueueWaiters(queue)
      this.queues.set(queue, waiters)
      waiters.ready = subscribeSafely(this.options.notifier, queue)
    }
    const claim = new HeldClaim(waiters, reply, request, this)
    waiters.busy.add(claim)
    this.held++
    reply.raw.on('close', claim.onClose)
    return claim
  }

  /** Claims from the store for one held claim until it has jobs, or finds none with no wake-up pending. */
  private async attempt (claim: HeldClaim): Promise<void> {
    const { waiters } = claim
    do {
      claim.dirty = false
      let result: ClaimResult
      try {
        result = await this.claim(waiters.queue, claim.request)
      } catch (err) {
        if (claim.state === DONE) return
        // The first claim failing answers 503 (as a poll's first read does); a later one leaves the claim held
        // and tries again soon: the jobs it was woken for are still in the store.
        if (!claim.attempted) return this.finish(claim, err as Error)
        this.arm(waiters, RETRY_AFTER_FAILURE)
        break
      }
      claim.attempted = true
      // Answered (close, timeout) or aborted while the store leased jobs to it: give them back at once rather
      // than leave them until their lease passes.
      if (claim.state === DONE) return this.giveBack(waiters.queue, result.jobs)
      this.arm(waiters, result.nextDueIn)
      if (result.jobs.length > 0) {
        this.answer(claim, okBody(result.jobs), result.jobs.length)
        if (result.waiting > 0) this.wake(waiters, result.waiting)
        return
      }
    } while (claim.dirty)
    waiters.busy.delete(claim)
    claim.state = WAITING
    waiters.idle.add(claim)
  }

  /** Starts a store claim for up to `count` held claims: idle ones first, then marks busy ones to claim again. */
  private wake (waiters: QueueWaiters, count: number): void {
    let left = count
    while (left > 0 && waiters.idle.size > 0) {
      const claim = waiters.idle.values().next().value as HeldClaim
      waiters.idle.delete(claim)
      claim.state = ATTEMPTING
      waiters.busy.add(claim)
      left--
      void this.attempt(claim)
    }
    if (left === 0) return
    for (const claim of waiters.busy) {
      if (left === 0) break
      if (!claim.dirty) {
        claim.dirty = true
        left--
      }
    }
  }

  /** Keeps the queue's one timer at the earliest due time known; when it fires, one claim re-checks. */
  private arm (waiters: QueueWaiters, dueIn: number | null): void {
    if (dueIn === null || waiters.size === 0) return
    const at = Date.now() + dueIn
    if (at >= waiters.dueAt) return
    if (waiters.dueTimer !== null) clearTimeout(waiters.dueTimer)
    waiters.dueAt = at
    // +1: a timer may fire a millisecond early by the store's clock; a claim then would find nothing yet.
    waiters.dueTimer = setTimeout(() => {
      waiters.dueTimer = null
      waiters.dueAt = Infinity
      this.wake(waiters, 1)
    }, Math.min(dueIn + 1, 2_147_483_647))
  }

  private async claim (queue: string, request: ClaimRequest): Promise<ClaimResult> {
    try {
      const result = await this.options.store.claim(queue, request)
      if (result.expired !== undefined && result.expired > 0) this.options.count('expired', result.expired)
      if (result.died !== undefined && result.died > 0) this.options.count('dead', result.died)
      if (this.storeFailing) {
        this.storeFailing = false
        this.options.log.info('fastify-longpoll: the queue store answers again')
      }
      return result
    } catch (err) {
      this.options.metrics.storeError('queue')
      if (!this.storeFailing) { // logged once per incident, not once per claim
        this.storeFailing = true
        this.options.log.error({ err }, 'fastify-longpoll: the queue store failed a claim')
      }
      throw new errors.StoreUnavailable((err as Error).message, { cause: err })
    }
  }

  /** Jobs leased to a claim nobody will read: available again at once (the attempt still counts). */
  private giveBack (queue: string, jobs: ClaimedJob[]): void {
    for (const job of jobs) {
      this.options.store.nack(queue, job.receipt, { delay: 0, maxAttempts: NEVER_DEAD }).then(() => {
        this.options.notifier.publish(queue, { type: 'jobs', count: 1 }, 'queue').catch(() => {})
      }, (err: unknown) => {
        this.options.log.warn({ err, queue, job: job.id }, 'fastify-longpoll: could not give back a job claimed for a claim that was gone; it is available again when its lease passes')
      })
    }
  }

  private expire (claim: HeldClaim): void {
    claim.timer = null
    if (!claim.attempted) {
      this.finish(claim, new errors.StoreUnavailable('no answer before the claim timed out'))
      return
    }
    this.counters.timeouts++
    this.answer(claim, TIMEOUT_BODY, 0)
  }

  private answer (claim: HeldClaim, body: string, jobs: number): void {
    this.release(claim)
    this.counters.answered++
    this.options.count('claimed', jobs)
    claim.reply.code(200).headers(HEADERS).send(body)
  }

  private finish (claim: HeldClaim, err: Error): void {
    this.release(claim)
    this.reject(claim.reply, err)
  }

  private release (claim: HeldClaim): void {
    claim.state = DONE
    if (claim.timer !== null) clearTimeout(claim.timer)
    claim.timer = null
    claim.reply.raw.removeListener('close', claim.onClose)
    if (claim.client !== null) this.options.clientLimit?.release(claim.client)
    claim.client = null
    const { waiters } = claim
    waiters.idle.delete(claim)
    waiters.busy.delete(claim)
    this.held--
    if (waiters.size === 0 && this.queues.get(waiters.queue) === waiters) {
      this.queues.delete(waiters.queue)
      if (waiters.dueTimer !== null) clearTimeout(waiters.dueTimer)
      waiters.dueTimer = null
      const failed = (err: unknown): void => {
        this.options.log.warn({ err, queue: waiters.queue }, 'fastify-longpoll: unsubscribe failed')
      }
      try {
        Promise.resolve(this.options.notifier.unsubscribe(waiters.queue, 'queue')).catch(failed)
      } catch (err) {
        failed(err)
      }
    }
  }
}

/** The answer text, with each job's data as stored: serialized once, at enqueue. */
function okBody (jobs: ClaimedJob[]): string {
  let items = ''
  for (let i = 0; i < jobs.length; i++) {
    const job = jobs[i] as ClaimedJob
    items += `${i === 0 ? '' : ','}{"id":${JSON.stringify(job.id)},"data":${job.json},"attempt":${job.attempt},"receipt":${JSON.stringify(job.receipt)},"leaseUntil":${job.leaseUntil},"time":${job.time}}`
  }
  return `{"status":"ok","jobs":[${items}]}`
}

function subscribeSafely (notifier: LongPollNotifier, queue: string): Promise<void> | void {
  try {
    return notifier.subscribe(queue, 'queue')
  } catch (err) {
    return Promise.reject(err)
  }
}
