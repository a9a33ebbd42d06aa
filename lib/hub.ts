import type { FastifyBaseLogger, FastifyReply } from 'fastify'
import { answerBody, withRetryAfter, type PollStatus } from './answers.js'
import type { Cursor, Position } from './cursor.js'
import { errors } from './errors.js'
import type { LongPollStore, ReadResult } from './stores/types.js'
import type { ChannelEvent, LongPollNotifier } from './notifiers/types.js'

const READING = 0 // registered on its channel; its store read is in flight
const HELD = 1 // waiting for a wake-up or its timeout
const DONE = 2 // answered or aborted; owns nothing any more

/** One poll waiting on a channel. It owns its timer and its 'close' listener and releases both in `finish`. */
class HeldPoll {
  state = READING
  /** A wake-up arrived while the poll's own read was in flight: read again before holding. */
  dirty = false
  /** Set once the first read made the starting position concrete. */
  cursor: Cursor | null = null
  /** The starting cursor came from another life of the channel, or messages after it were lost: say so. */
  gap = false
  /** The channel was disconnected before the first read made the cursor concrete: answer once it has. */
  disconnected = false
  timer: NodeJS.Timeout | null = null
  readonly onClose: () => void

  constructor (readonly waiters: ChannelWaiters, readonly reply: FastifyReply, readonly limit: number, readonly hub: Hub) {
    this.onClose = () => hub.abort(this)
  }
}

/** The polls held on one channel, and the channel's subscription. */
class ChannelWaiters {
  readonly polls = new Set<HeldPoll>()
  /** Resolves once the notifier delivers this channel's events. */
  ready: Promise<void> | void = undefined
  waking = false
  rewake = false
  constructor (readonly channel: string) {}
}

export interface HubOptions {
  store: LongPollStore
  notifier: LongPollNotifier
  maxHeldPolls: number
  retryAfter: number
  log: FastifyBaseLogger
}

export interface HubCounters {
  delivered: number
  answered: number
  timeouts: number
  disconnected: number
  aborted: number
  rejected: number
}

const HEADERS = { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' }

/**
 * Holds polls, wakes them and answers them.
 *
 * No lost wake-ups: a poll is registered on its channel, and the channel's subscription is confirmed, *before*
 * the poll reads the store. A push that lands before the read is seen by the read; one that lands after it
 * notifies a poll that is already registered. A notification that arrives while the read is still in flight
 * marks the poll dirty, and the poll reads again instead of holding. So there is no moment at which a message
 * can be stored without the poll either reading it or being woken for it.
 */
export class Hub {
  private readonly channels = new Map<string, ChannelWaiters>()
  private held = 0
  private closing = false
  private storeFailing = false
  readonly counters: HubCounters = { delivered: 0, answered: 0, timeouts: 0, disconnected: 0, aborted: 0, rejected: 0 }
  /** Claims held by the queue side (lib/queues/claims.ts): polls and claims share `maxHeldPolls`. */
  heldElsewhere: () => number = () => 0

  constructor (private readonly options: HubOptions) {}

  get heldPolls (): number {
    return this.held
  }

  get channelCount (): number {
    return this.channels.size
  }

  /** Answers at once from the store: a `timeout=0` poll. */
  async shortPoll (reply: FastifyReply, channel: string, position: Position, limit: number): Promise<void> {
    if (this.closing) return this.reject(reply, new errors.Closing())
    let result: ReadResult
    try {
      result = await this.read(channel, position, limit)
    } catch (err) {
      return this.reject(reply, err as Error)
    }
    this.counters.delivered += result.messages.length
    this.counters.answered++
    const status: PollStatus = result.messages.length > 0 ? 'ok' : 'timeout'
    if (status === 'timeout') this.counters.timeouts++
    reply.code(200).headers(HEADERS).send(answerBody(status, result.epoch, result.messages, result.seq, result.gap))
  }

  /** Answers with messages as soon as there are any after `position`, or at `timeout`. */
  async hold (reply: FastifyReply, channel: string, position: Position, limit: number, timeout: number): Promise<void> {
    if (this.closing) return this.reject(reply, new errors.Closing())
    // The client left while an async authorize hook ran: its 'close' event has passed, so holding the poll would
    // keep a slot and a timer until the timeout for nobody.
    if (reply.raw.destroyed) {
      this.counters.aborted++
      return
    }
    if (this.held + this.heldElsewhere() >= this.options.maxHeldPolls) {
      this.counters.rejected++
      return this.reject(reply, new errors.TooManyPolls(this.options.maxHeldPolls))
    }
    const poll = this.attach(channel, reply, limit)
    if (typeof position === 'object') poll.cursor = position
    poll.timer = setTimeout(() => this.expire(poll), timeout)
    try {
      // Awaiting `undefined` (the memory notifier subscribes synchronously) still costs a microtask turn.
      if (poll.waiters.ready !== undefined) await poll.waiters.ready
      while (poll.state === READING) {
        const result = await this.read(channel, poll.cursor ?? position, limit)
        if (poll.state !== READING) return // answered (close) or aborted meanwhile
        poll.cursor = { epoch: result.epoch, seq: result.seq }
        poll.gap ||= result.gap
        if (poll.disconnected) return this.answer(poll, 'disconnected')
        if (result.messages.length > 0) return this.answer(poll, 'ok', this.body(poll, result), result.messages.length)
        if (poll.dirty) poll.dirty = false
        else poll.state = HELD
      }
    } catch (err) {
      if (poll.state !== DONE) this.finish(poll, (err as { statusCode?: number }).statusCode === undefined ? new errors.NotifierUnavailable((err as Error).message, { cause: err }) : err as Error)
    }
  }

  /** A notifier event for a channel this process may hold polls on. */
  event (channel: string, event: ChannelEvent): void {
    const waiters = this.channels.get(channel)
    if (waiters === undefined) return
    if (event.type === 'disconnect') {
      for (const poll of waiters.polls) {
        this.counters.disconnected++
        if (poll.cursor === null) poll.disconnected = true
        else this.answer(poll, 'disconnected')
      }
      return
    }
    void this.wake(waiters)
  }

  /** Events may have been lost (the notifier reconnected): every held poll re-checks the store. */
  resync (): void {
    for (const waiters of this.channels.values()) void this.wake(waiters)
  }

  /** First phase of shutdown: every poll, held or arriving, answers 503 so that clients reconnect elsewhere. */
  close (): void {
    this.closing = true
    for (const waiters of this.channels.values()) {
      for (const poll of waiters.polls) this.finish(poll, new errors.Closing())
    }
  }

  /** The client went away mid-hold: release everything the poll owns, answer nothing. */
  abort (poll: HeldPoll): void {
    if (poll.state === DONE || poll.reply.raw.writableFinished) return
    this.counters.aborted++
    this.release(poll)
  }

  private attach (channel: string, reply: FastifyReply, limit: number): HeldPoll {
    let waiters = this.channels.get(channel)
    if (waiters === undefined) {
      waiters = new ChannelWaiters(channel)
      this.channels.set(channel, waiters)
      waiters.ready = subscribeSafely(this.options.notifier, channel)
    }
    const poll = new HeldPoll(waiters, reply, limit, this)
    waiters.polls.add(poll)
    this.held++
    reply.raw.on('close', poll.onClose)
    return poll
  }

  /**
   * Reads once per distinct (cursor, limit, gap) among the held polls of a channel and answers every poll of
   * that group with the same bytes. Wake-ups that arrive while reads are in flight are coalesced into one
   * more round, so a burst of pushes costs a few reads, not one per push per poll.
   */
  private async wake (waiters: ChannelWaiters): Promise<void> {
    if (waiters.waking) {
      waiters.rewake = true
      return
    }
    waiters.waking = true
    try {
      do {
        waiters.rewake = false
        if (waiters.polls.size === 1) {
          // One poll on the channel (per-user channels, the common case): no key, no Map, no Promise.all.
          const poll = waiters.polls.values().next().value as HeldPoll
          if (poll.state === READING) poll.dirty = true
          else await this.deliver([poll])
          continue
        }
        const groups = new Map<string, HeldPoll[]>()
        for (const poll of waiters.polls) {
          if (poll.state === READING) {
            poll.dirty = true
            continue
          }
          const cursor = poll.cursor as Cursor
          const key = `${cursor.epoch}.${cursor.seq}/${poll.limit}/${poll.gap ? 1 : 0}`
          const group = groups.get(key)
          if (group === undefined) groups.set(key, [poll])
          else group.push(poll)
        }
        await Promise.all(Array.from(groups.values(), (group) => this.deliver(group)))
      } while (waiters.rewake && waiters.polls.size > 0)
    } finally {
      waiters.waking = false
    }
  }

  private async deliver (group: HeldPoll[]): Promise<void> {
    const first = group[0] as HeldPoll
    let result: ReadResult
    try {
      result = await this.read(first.waiters.channel, first.cursor as Cursor, first.limit)
    } catch {
      return // logged by read(); the polls stay held and the next wake-up or their timeout answers them
    }
    if (result.messages.length === 0) return
    const body = this.body(first, result)
    for (const poll of group) {
      if (poll.state === HELD) this.answer(poll, 'ok', body, result.messages.length)
    }
  }

  private async read (channel: string, position: Position, limit: number): Promise<ReadResult> {
    try {
      const result = await this.options.store.read(channel, position, limit, Date.now())
      if (this.storeFailing) {
        this.storeFailing = false
        this.options.log.info('fastify-longpoll: the store answers again')
      }
      return result
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode === 400) throw err
      // Logged once per incident, not once per poll.
      if (!this.storeFailing) {
        this.storeFailing = true
        this.options.log.error({ err }, 'fastify-longpoll: the store failed a read')
      }
      throw new errors.StoreUnavailable((err as Error).message, { cause: err })
    }
  }

  private body (poll: HeldPoll, result: ReadResult): Buffer {
    return answerBody('ok', result.epoch, result.messages, result.seq, poll.gap || result.gap)
  }

  private expire (poll: HeldPoll): void {
    poll.timer = null
    if (poll.cursor === null) {
      // The store never answered, so there is no concrete cursor to hand back: a timeout answer would lose the
      // client's place. Tell it to retry instead.
      this.finish(poll, new errors.StoreUnavailable('no answer before the poll timed out'))
      return
    }
    this.counters.timeouts++
    this.answer(poll, 'timeout')
  }

  /** Answers a poll; without a body, an empty answer at the poll's (concrete) cursor. */
  private answer (poll: HeldPoll, status: PollStatus, body?: Buffer, delivered = 0): void {
    this.release(poll)
    this.counters.answered++
    this.counters.delivered += delivered
    const cursor = poll.cursor as Cursor
    poll.reply.code(200).headers(HEADERS).send(body ?? answerBody(status, cursor.epoch, [], cursor.seq, poll.gap))
  }

  private finish (poll: HeldPoll, err: Error): void {
    this.release(poll)
    this.reject(poll.reply, err)
  }

  /** Answers a poll with an error; a 503 says when to retry. */
  reject (reply: FastifyReply, err: Error): void {
    reply.send(withRetryAfter(reply, err, this.options.retryAfter))
  }

  private release (poll: HeldPoll): void {
    poll.state = DONE
    if (poll.timer !== null) clearTimeout(poll.timer)
    poll.timer = null
    poll.reply.raw.removeListener('close', poll.onClose)
    const { waiters } = poll
    waiters.polls.delete(poll)
    this.held--
    if (waiters.polls.size === 0 && this.channels.get(waiters.channel) === waiters) {
      this.channels.delete(waiters.channel)
      const failed = (err: unknown): void => {
        this.options.log.warn({ err, channel: waiters.channel }, 'fastify-longpoll: unsubscribe failed')
      }
      // A notifier may throw instead of rejecting: the poll is released either way, and still answered.
      try {
        Promise.resolve(this.options.notifier.unsubscribe(waiters.channel)).catch(failed)
      } catch (err) {
        failed(err)
      }
    }
  }
}

/**
 * A notifier may throw instead of rejecting: turn that into a rejected subscription, which the poll answers
 * (503) and which releases the channel like any failed subscription, rather than an exception thrown mid-attach.
 */
function subscribeSafely (notifier: LongPollNotifier, channel: string): Promise<void> | void {
  try {
    return notifier.subscribe(channel)
  } catch (err) {
    return Promise.reject(err)
  }
}
