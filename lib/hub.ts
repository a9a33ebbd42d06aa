import type { FastifyBaseLogger, FastifyReply } from 'fastify'
import { pollAnswerBody, roundRobin, withRetryAfter, type ChannelPart, type PollStatus } from './answers.js'
import type { Cursor, Position } from './cursor.js'
import { errors } from './errors.js'
import type { ChannelRead, LongPollStore, ReadResult, StoredMessage } from './stores/types.js'
import type { ChannelEvent, LongPollNotifier } from './notifiers/types.js'
import { noMetrics, REJECT_REASONS, type Metrics } from './metrics.js'
import type { ClientLimit } from './client-limit.js'

/*
 * The life of a held poll, in the order of this file:
 *
 *   hold     a poll of k channels arrives; it is refused (closing, limit) or
 *   attach   registered on each of its channels (subscribing a channel on its first poll), with its timer;
 *            then every subscription is confirmed and every channel read: `reading`
 *   event    the notifier reports a message or a disconnect on one of its channels
 *   wake     the channel's polls are grouped by (cursor entry, limit): one store read per group
 *   deliver  the group's answer is encoded once and written to every poll of the group
 *   answer   200 with messages, `timeout` or `disconnected`; `fail` is the one error path (503, 400…)
 *   release  the poll leaves every channel, drops its timer and 'close' listener; a channel with no poll left
 *            is unsubscribed
 *
 * No lost wake-ups, for k channels: a poll is registered on *every* one of its channels, and every channel's
 * subscription is confirmed, *before* its first store read. A push on any of them that lands before that read
 * is seen by the read; one that lands after it notifies a poll that is already registered and subscribed. An
 * event that arrives while any of the poll's reads is in flight marks the poll dirty, and it reads again instead
 * of holding. So there is no moment at which a message can be stored on one of a poll's channels without the
 * poll either reading it or being woken for it.
 */

/**
 * `reading`: registered on its channels, its store reads in flight (or about to be);
 * `held`: every cursor entry concrete, waiting for a wake-up or the timeout;
 * `done`: answered or aborted; it owns nothing any more.
 */
export type PollPhase = 'reading' | 'held' | 'done'

/** Where one channel of a poll stands. */
class PollEntry {
  /** Concrete once a read of this channel answered (or given by the client as a cursor). */
  cursor: Cursor | null
  /** Messages of this channel were missed: say so in the answer. */
  gap = false
  /** The channel was disconnected while the poll was attached. */
  disconnected = false

  constructor (readonly poll: HeldPoll, readonly waiters: ChannelWaiters, readonly start: Position) {
    this.cursor = typeof start === 'object' ? start : null
  }
}

/** One poll: it owns its timer and its 'close' listener, and its entries on every channel; `release` frees all. */
class HeldPoll {
  phase: PollPhase = 'reading'
  /** An event arrived while a read was in flight: read again before holding. */
  dirty = false
  readonly entries: PollEntry[] = []
  timer: NodeJS.Timeout | null = null
  /** The key of the client-limit slot the poll holds, if there is a limit. */
  client: string | null = null
  readonly onClose: () => void

  constructor (readonly reply: FastifyReply, readonly limit: number, hub: Hub) {
    this.onClose = () => hub.abort(this)
  }
}

/** The poll entries on one channel, and the channel's subscription. */
class ChannelWaiters {
  readonly entries = new Set<PollEntry>()
  /** Resolves once the notifier delivers this channel's events. */
  ready: Promise<void> | void = undefined
  waking = false
  rewake = false
  /** A wake-up's store read failed: the channel is woken again after `retryDelay` (see retryWake). */
  readFailed = false
  retry: NodeJS.Timeout | null = null
  retryDelay = 0
  readonly channelJson: string
  constructor (readonly channel: string) {
    this.channelJson = JSON.stringify(channel)
  }
}

export interface HubOptions {
  store: LongPollStore
  notifier: LongPollNotifier
  maxHeldPolls: number
  retryAfter: number
  log: FastifyBaseLogger
  /** Prometheus counters; an object of empty functions when metrics are off. */
  metrics?: Metrics
  /** `maxHeldPollsPerClient`; null for no limit. */
  clientLimit?: ClientLimit | null
}

/** What the hub counts; `app.longpoll.stats()` is these and two gauges. */
export interface HubCounters {
  /** Messages stored through this instance. */
  pushed: number
  /** Messages written into poll answers (a message answered to 3 polls counts 3). */
  delivered: number
  /** Polls answered with 200, whatever their status. */
  answered: number
  /** Polls answered with status `timeout`. */
  timeouts: number
  /** Polls answered with status `disconnected`. */
  disconnected: number
  /** Polls whose client went away before the answer. */
  aborted: number
  /** Polls refused with 503 because `maxHeldPolls` was reached. */
  rejected: number
}

/** A failed wake-up read is retried after 50 ms, then 100, 200… up to 2 s between tries. */
const WAKE_RETRY_FIRST = 50
const WAKE_RETRY_MAX = 2_000

/**
 * Poll answers are JSON written as bytes: their content type is set with reply.type(), a plain store, rather than
 * with reply.headers(), whose loop over the names makes Fastify's header() lookups megamorphic.
 */
const JSON_TYPE = 'application/json; charset=utf-8'

/** Holds polls, wakes them and answers them. */
export class Hub {
  private readonly channels = new Map<string, ChannelWaiters>()
  private held = 0
  private closing = false
  private storeFailing = false
  readonly counters: HubCounters = { pushed: 0, delivered: 0, answered: 0, timeouts: 0, disconnected: 0, aborted: 0, rejected: 0 }
  /** Claims held by the queue side (lib/queues/claims.ts): polls and claims share `maxHeldPolls`. */
  heldElsewhere: () => number = () => 0
  private readonly metrics: Metrics
  private readonly clientLimit: ClientLimit | null

  constructor (private readonly options: HubOptions) {
    this.metrics = options.metrics ?? noMetrics
    this.clientLimit = options.clientLimit ?? null
  }

  /** Polls this instance holds now (including those whose first store reads are in flight). */
  get heldPolls (): number {
    return this.held
  }

  /** Channels with at least one held poll on this instance. */
  get channelCount (): number {
    return this.channels.size
  }

  /** Whether this instance holds a poll on the channel (presence when the notifier cannot count receivers). */
  holds (channel: string): boolean {
    return this.channels.has(channel)
  }

  /** Answers at once from the store: a `timeout=0` poll. Its channels' reads go out together. */
  async shortPoll (reply: FastifyReply, channels: string[], positions: Position[], limit: number): Promise<void> {
    if (this.closing) return this.fail(reply, new errors.Closing())
    let results: ReadResult[]
    try {
      results = channels.length === 1
        ? [await this.read(channels[0] as string, positions[0] as Position, limit)]
        : await this.readMany(channels.map((channel, i) => ({ channel, position: positions[i] as Position })), limit)
    } catch (err) {
      return this.fail(reply, err as Error)
    }
    const taken = roundRobin(results.map((result) => result.messages.length), limit)
    const parts = results.map((result, i): ChannelPart => {
      const part = takePart(JSON.stringify(channels[i]), result, taken[i] as number)
      part.gap = result.gap
      return part
    })
    const delivered = sum(taken)
    this.count(delivered > 0 ? 'ok' : 'timeout', delivered)
    reply.code(200).type(JSON_TYPE).header('cache-control', 'no-store').send(pollAnswerBody(delivered > 0 ? 'ok' : 'timeout', parts))
    if (delivered > 0) this.observe(parts)
  }

  // ——— hold ———

  /** Answers with messages as soon as any channel has some after its position, or at `timeout`. */
  async hold (reply: FastifyReply, channels: string[], positions: Position[], limit: number, timeout: number): Promise<void> {
    if (this.closing) return this.fail(reply, new errors.Closing())
    // The client left while an async authorize hook ran: its 'close' event has passed, so holding the poll would
    // keep a slot and a timer until the timeout for nobody.
    if (reply.raw.destroyed) {
      this.counters.aborted++
      return
    }
    if (this.held + this.heldElsewhere() >= this.options.maxHeldPolls) {
      this.counters.rejected++
      return this.fail(reply, new errors.TooManyPolls(this.options.maxHeldPolls))
    }
    let client: string | null = null
    if (this.clientLimit !== null) {
      try {
        client = this.clientLimit.take(reply.request)
      } catch (err) {
        return this.fail(reply, err as Error) // 429, or what the user's clientKey threw
      }
    }
    const poll = this.attach(reply, channels, positions, limit)
    poll.client = client
    poll.timer = setTimeout(() => this.expire(poll), timeout)
    try {
      const ready = subscribed(poll)
      if (ready !== undefined) await ready
      const { entries } = poll
      while (poll.phase === 'reading') {
        let results: ReadResult[]
        if (entries.length === 1) {
          // A one-channel poll (the common case) awaits the store itself: an async helper around the read would
          // cost one more promise and microtask turn per poll.
          const entry = entries[0] as PollEntry
          let result: ReadResult
          try {
            result = await this.options.store.read(entry.waiters.channel, entry.cursor ?? entry.start, poll.limit, Date.now())
          } catch (err) {
            throw this.readFailed(err)
          }
          if (this.storeFailing) this.storeAnswered()
          results = [result]
        } else {
          results = await this.readMany(entries.map((entry) => ({ channel: entry.waiters.channel, position: entry.cursor ?? entry.start })), poll.limit)
        }
        if (isDone(poll)) return // answered (close, disconnect) or aborted meanwhile
        if (this.settle(poll, results)) return
        if (poll.dirty) poll.dirty = false
        else poll.phase = 'held'
      }
    } catch (err) {
      if (poll.phase !== 'done') this.fail(poll, (err as { statusCode?: number }).statusCode === undefined ? new errors.NotifierUnavailable((err as Error).message, { cause: err }) : err as Error)
    }
  }

  // ——— attach ———

  private attach (reply: FastifyReply, channels: string[], positions: Position[], limit: number): HeldPoll {
    const poll = new HeldPoll(reply, limit, this)
    for (let i = 0; i < channels.length; i++) {
      const channel = channels[i] as string
      let waiters = this.channels.get(channel)
      if (waiters === undefined) {
        waiters = new ChannelWaiters(channel)
        this.channels.set(channel, waiters)
        waiters.ready = subscribeSafely(this.options.notifier, channel)
      }
      const entry = new PollEntry(poll, waiters, positions[i] as Position)
      poll.entries.push(entry)
      waiters.entries.add(entry)
    }
    this.held++
    reply.raw.on('close', poll.onClose)
    return poll
  }

  /**
   * Applies a poll's reads: every cursor entry becomes concrete. Answers (and returns true) when a channel was
   * disconnected meanwhile or some channel has messages, taking them round-robin under the poll's limit.
   */
  private settle (poll: HeldPoll, results: ReadResult[]): boolean {
    const { entries } = poll
    if (entries.length === 1) {
      // A one-channel poll with nothing to answer (a re-poll, the common case): its cursor entry, no parts.
      const entry = entries[0] as PollEntry
      const result = results[0] as ReadResult
      if (!entry.disconnected && result.messages.length === 0) {
        entry.cursor = { epoch: result.epoch, seq: result.seq }
        entry.gap ||= result.gap
        return false
      }
    }
    const pending = results.map((result, i) => (entries[i] as PollEntry).disconnected ? 0 : result.messages.length)
    const taken = roundRobin(pending, poll.limit)
    let disconnected = false
    const parts = results.map((result, i): ChannelPart => {
      const entry = entries[i] as PollEntry
      const part = takePart(entry.waiters.channelJson, result, taken[i] as number)
      entry.cursor = { epoch: part.epoch, seq: part.seq }
      entry.gap ||= result.gap
      part.gap = entry.gap
      part.disconnected = entry.disconnected
      disconnected ||= entry.disconnected
      return part
    })
    const delivered = sum(taken)
    if (disconnected) this.answer(poll, 'disconnected', pollAnswerBody('disconnected', parts), delivered)
    else if (delivered > 0) this.answer(poll, 'ok', pollAnswerBody('ok', parts), delivered)
    else return false
    if (delivered > 0) this.observe(parts)
    return true
  }

  // ——— event ———

  /** A notifier event for a channel this process may hold polls on. */
  event (channel: string, event: ChannelEvent): void {
    const waiters = this.channels.get(channel)
    if (waiters === undefined) return
    if (event.type === 'disconnect') {
      for (const entry of waiters.entries) {
        entry.disconnected = true
        const { poll } = entry
        // A poll whose reads are in flight with every cursor entry concrete can answer now; one still waiting
        // for a first read answers once that read made its cursor concrete (in `settle`).
        if (poll.phase === 'held' || (poll.phase === 'reading' && poll.entries.every((e) => e.cursor !== null))) {
          this.answer(poll, 'disconnected', pollAnswerBody('disconnected', parts(poll)), 0)
        }
      }
      return
    }
    void this.wake(waiters)
  }

  /** Events may have been lost (the notifier reconnected): every held poll re-checks the store. */
  resync (): void {
    for (const waiters of this.channels.values()) void this.wake(waiters)
  }

  // ——— wake ———

  /**
   * Reads once per distinct (cursor entry, limit) among the held polls on a channel, and answers every poll of
   * that group from the one read. Wake-ups that arrive while reads are in flight are coalesced into one more
   * round, so a burst of pushes costs a few reads, not one per push per poll.
   *
   * A woken poll of several channels answers with the woken channel's messages only: its other channels had
   * nothing after their cursor entries when it was last read (or it would have answered), and anything pushed
   * there since has woken (or will wake) the poll through that channel's own event.
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
        waiters.readFailed = false // each round re-reads every group: only the last round's failures count
        if (waiters.entries.size === 1) {
          // One poll on the channel (per-user channels, the common case): no key, no Map, no Promise.all.
          const entry = waiters.entries.values().next().value as PollEntry
          if (entry.poll.phase === 'reading') entry.poll.dirty = true
          else await this.deliver(waiters, [entry])
          continue
        }
        const groups = new Map<string, PollEntry[]>()
        for (const entry of waiters.entries) {
          if (entry.poll.phase === 'reading') {
            entry.poll.dirty = true
            continue
          }
          const cursor = entry.cursor as Cursor
          const key = `${cursor.epoch}.${cursor.seq}/${entry.poll.limit}`
          const group = groups.get(key)
          if (group === undefined) groups.set(key, [entry])
          else group.push(entry)
        }
        await Promise.all(Array.from(groups.values(), (group) => this.deliver(waiters, group)))
      } while (waiters.rewake && waiters.entries.size > 0)
    } finally {
      waiters.waking = false
    }
    if (waiters.readFailed) this.retryWake(waiters)
    else waiters.retryDelay = 0
  }

  /**
   * A read of this wake-up failed (the store is down or timed out; logged once per incident by readFailed): its
   * polls stay held, and rather than wait for the next event or their timeout, the whole channel is woken
   * again — every group re-read — after a back-off of 50 ms doubling to 2 s, until a wake-up reads without a
   * failure. Each poll still ends at its timeout, on abort or on close; the channel's one retry timer is owned by
   * its ChannelWaiters and cleared in release() when the channel's last poll leaves.
   */
  private retryWake (waiters: ChannelWaiters): void {
    if (waiters.retry !== null || this.closing || this.channels.get(waiters.channel) !== waiters) return
    waiters.retryDelay = waiters.retryDelay === 0 ? WAKE_RETRY_FIRST : Math.min(waiters.retryDelay * 2, WAKE_RETRY_MAX)
    waiters.retry = setTimeout(() => {
      waiters.retry = null
      void this.wake(waiters)
    }, waiters.retryDelay)
  }

  // ——— deliver ———

  /**
   * One read for a group of entries with the same cursor and limit; the answer is encoded once per distinct
   * body (a one-channel poll's depends only on its gap flag, a many-channel poll's on its other entries too).
   */
  private async deliver (waiters: ChannelWaiters, group: PollEntry[]): Promise<void> {
    const first = group[0] as PollEntry
    let result: ReadResult
    try {
      // The store's read awaited here, not through read(): one promise less per wake-up.
      result = await this.options.store.read(waiters.channel, first.cursor as Cursor, first.poll.limit, Date.now())
    } catch (err) {
      // Logged by readFailed; retried by wake (see retryWake). Not a 400: a re-read would get the same verdict on
      // the cursor, so those polls stay held for the next event or their timeout, as before.
      if (this.readFailed(err).statusCode !== 400) waiters.readFailed = true
      return
    }
    if (this.storeFailing) this.storeAnswered()
    const n = result.messages.length
    if (n === 0) return
    let bodies: Map<string, Buffer> | undefined
    let answered = 0
    for (const entry of group) {
      const { poll } = entry
      if (poll.phase !== 'held') continue
      answered++
      const signature = bodySignature(entry, result.gap)
      let body = bodies?.get(signature)
      if (body === undefined) {
        body = pollAnswerBody('ok', parts(poll, entry, result))
        if (group.length > 1) (bodies ??= new Map()).set(signature, body)
      }
      this.answer(poll, 'ok', body, n)
    }
    // Without metrics, no clock read either (Date.now() is a runtime call).
    if (this.metrics.enabled) this.metrics.delivered(result.messages, answered, Date.now())
  }

  /** One store read, its failure logged once per incident (readFailed). The hot paths (hold, deliver) inline it. */
  private async read (channel: string, position: Position, limit: number): Promise<ReadResult> {
    let result: ReadResult
    try {
      result = await this.options.store.read(channel, position, limit, Date.now())
    } catch (err) {
      throw this.readFailed(err)
    }
    if (this.storeFailing) this.storeAnswered()
    return result
  }

  /** The reads of several channels, together: one `readMany` where the store has it. */
  private async readMany (reads: ChannelRead[], limit: number): Promise<ReadResult[]> {
    const { store } = this.options
    const now = Date.now()
    let results: ReadResult[]
    try {
      results = store.readMany !== undefined
        ? await store.readMany(reads, limit, now)
        : await Promise.all(reads.map(({ channel, position }) => store.read(channel, position, limit, now)))
    } catch (err) {
      throw this.readFailed(err)
    }
    if (this.storeFailing) this.storeAnswered()
    return results
  }

  /** A failed store read: a 400 (bad cursor) as it is; anything else a 503, logged once per incident (storeFailed). */
  private readFailed (err: unknown): Error & { statusCode?: number } {
    if ((err as { statusCode?: number }).statusCode === 400) return err as Error
    this.storeFailed(err, 'read', 'fastify-longpoll: the store failed a read')
    return new errors.StoreUnavailable((err as Error).message, { cause: err })
  }

  /**
   * A store operation failed (a read here; an append or a delete in LongPoll): counted, and logged once per
   * incident, not once per poll or push. Reads, appends and deletes share the incident: one store, one outage.
   */
  storeFailed (err: unknown, operation: 'read' | 'append' | 'delete', message: string, fields: object = {}): void {
    this.metrics.storeError(operation)
    if (this.storeFailing) return
    this.storeFailing = true
    this.options.log.error({ err, ...fields }, message)
  }

  /** The store answered an operation: ends the incident, if there is one, with one line. */
  storeAnswered (): void {
    if (!this.storeFailing) return
    this.storeFailing = false
    this.options.log.info('fastify-longpoll: the store answers again')
  }

  // ——— answer ———

  private expire (poll: HeldPoll): void {
    poll.timer = null
    if (poll.entries.some((entry) => entry.cursor === null)) {
      // The store never answered, so there is no concrete cursor to hand back: a timeout answer would lose the
      // client's place. Tell it to retry instead.
      this.fail(poll, new errors.StoreUnavailable('no answer before the poll timed out'))
      return
    }
    this.answer(poll, 'timeout', pollAnswerBody('timeout', parts(poll)), 0)
  }

  private answer (poll: HeldPoll, status: PollStatus, body: Buffer, delivered: number): void {
    this.release(poll)
    this.count(status, delivered)
    poll.reply.code(200).type(JSON_TYPE).header('cache-control', 'no-store').send(body)
  }

  /** Delivery latency of the messages of one answer just written (store time to now). */
  private observe (parts: ChannelPart[]): void {
    if (!this.metrics.enabled) return
    const now = Date.now()
    for (const part of parts) this.metrics.delivered(part.messages, 1, now)
  }

  private count (status: PollStatus, delivered: number): void {
    this.metrics.answered(status)
    const { counters } = this
    counters.answered++
    counters.delivered += delivered
    if (status === 'timeout') counters.timeouts++
    else if (status === 'disconnected') counters.disconnected++
  }

  /** The one error path: a held poll is released first; a 503 says when to retry. */
  fail (target: HeldPoll | FastifyReply, err: Error): void {
    let reply: FastifyReply
    if (target instanceof HeldPoll) {
      this.release(target)
      reply = target.reply
    } else {
      reply = target
    }
    const reason = REJECT_REASONS[(err as { code?: string }).code ?? '']
    if (reason !== undefined) this.metrics.rejected(reason)
    reply.send(withRetryAfter(reply, err, this.options.retryAfter))
  }

  /** First phase of shutdown: every poll, held or arriving, answers 503 so that clients reconnect elsewhere. */
  close (): void {
    this.closing = true
    const polls = new Set<HeldPoll>()
    for (const waiters of this.channels.values()) {
      for (const entry of waiters.entries) polls.add(entry.poll)
    }
    for (const poll of polls) this.fail(poll, new errors.Closing())
  }

  /** The client went away mid-hold: release everything the poll owns, answer nothing. */
  abort (poll: HeldPoll): void {
    if (poll.phase === 'done' || poll.reply.raw.writableFinished) return
    this.counters.aborted++
    this.release(poll)
  }

  // ——— release ———

  private release (poll: HeldPoll): void {
    poll.phase = 'done'
    if (poll.timer !== null) clearTimeout(poll.timer)
    poll.timer = null
    poll.reply.raw.removeListener('close', poll.onClose)
    this.held--
    if (poll.client !== null) this.clientLimit?.release(poll.client)
    for (const entry of poll.entries) {
      const { waiters } = entry
      waiters.entries.delete(entry)
      if (waiters.entries.size > 0 || this.channels.get(waiters.channel) !== waiters) continue
      this.channels.delete(waiters.channel)
      if (waiters.retry !== null) clearTimeout(waiters.retry)
      waiters.retry = null
      this.unsubscribe(waiters.channel)
    }
  }

  /** A notifier may throw instead of rejecting: the poll is released either way, and still answered. */
  private unsubscribe (channel: string): void {
    try {
      const done = this.options.notifier.unsubscribe(channel)
      // The memory notifier answers synchronously: no promise (and no closure) per released channel.
      if (done !== undefined) done.catch((err: unknown) => this.unsubscribeFailed(err, channel))
    } catch (err) {
      this.unsubscribeFailed(err, channel)
    }
  }

  private unsubscribeFailed (err: unknown, channel: string): void {
    this.options.log.warn({ err, channel }, 'fastify-longpoll: unsubscribe failed')
  }
}

/**
 * What to wait for until every channel of the poll is subscribed; undefined when nothing is pending (the memory
 * notifier subscribes synchronously, and awaiting even `undefined` costs a microtask turn).
 */
function subscribed (poll: HeldPoll): Promise<unknown> | undefined {
  const { entries } = poll
  if (entries.length === 1) return (entries[0] as PollEntry).waiters.ready ?? undefined
  let pending: Array<Promise<void>> | undefined
  for (const entry of entries) if (entry.waiters.ready !== undefined) (pending ??= []).push(entry.waiters.ready)
  return pending === undefined ? undefined : Promise.all(pending)
}

/** Read through a function so that the compiler does not keep a narrowing of `phase` across an await. */
function isDone (poll: HeldPoll): boolean {
  return poll.phase !== 'reading'
}

/** The first `n` messages of a read, with the cursor entry just after them. */
function takePart (channelJson: string, result: ReadResult, n: number): ChannelPart {
  const { messages } = result
  let seq = result.seq
  let taken: StoredMessage[] = messages
  if (n < messages.length) {
    taken = messages.slice(0, n)
    // Seqs are consecutive within a life, so the entry just before the first message left is computable.
    seq = n > 0 ? (taken[n - 1] as StoredMessage).seq : (messages[0] as StoredMessage).seq - 1
  }
  return { channelJson, epoch: result.epoch, seq, messages: taken, gap: false, disconnected: false }
}

/** A poll's answer parts from its entries; `woken` (an entry of it) contributes the messages of `result`. */
function parts (poll: HeldPoll, woken?: PollEntry, result?: ReadResult): ChannelPart[] {
  return poll.entries.map((entry): ChannelPart => {
    if (entry === woken && result !== undefined) {
      return { channelJson: entry.waiters.channelJson, epoch: result.epoch, seq: result.seq, messages: result.messages, gap: entry.gap || result.gap, disconnected: false }
    }
    const cursor = entry.cursor as Cursor
    return { channelJson: entry.waiters.channelJson, epoch: cursor.epoch, seq: cursor.seq, messages: [], gap: entry.gap, disconnected: entry.disconnected }
  })
}

/** What a woken poll's answer depends on, besides the shared read: its gap flag, and its other entries. */
function bodySignature (woken: PollEntry, readGap: boolean): string {
  const { entries } = woken.poll
  if (entries.length === 1) return woken.gap || readGap ? 'g' : ''
  let signature = ''
  for (const entry of entries) {
    if (entry === woken) {
      signature += `*${entry.gap || readGap ? 'g' : ''}|`
      continue
    }
    const cursor = entry.cursor as Cursor
    signature += `${entry.waiters.channel}\u0000${cursor.epoch}.${cursor.seq}${entry.gap ? 'g' : ''}|`
  }
  return signature
}

function sum (values: number[]): number {
  let total = 0
  for (const value of values) total += value
  return total
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
