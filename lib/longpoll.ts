import type { FastifyBaseLogger } from 'fastify'
import { formatCursor } from './cursor.js'
import { encodeData, IDEMPOTENCY_KEY_PATTERN } from './data.js'
import { errors } from './errors.js'
import { Hub, type HubCounters } from './hub.js'
import { noMetrics, type Metrics } from './metrics.js'
import type { NormalizedOptions } from './options.js'
import type { AppendItem, AppendResult, LongPollStore, Retention } from './stores/types.js'

export interface PushResult {
  /** The message id; also a valid cursor. For a duplicate, the id of the message the key's first push stored. */
  id: string
  /**
   * As the message was announced, some instance held a poll on the channel or answered one within
   * `presenceWindow` (contract §1.5). With a notifier that cannot count receivers: this instance only.
   */
  online: boolean
  /** Present when the push repeated an idempotency key within `idempotencyTtl`: nothing new was stored. */
  duplicate?: true
}

export interface PushOptions {
  /**
   * Idempotency key, 1–200 visible ASCII characters (%x21–7E), shared with the `Idempotency-Key` header of
   * `POST /push`: a repeat on the same channel within `idempotencyTtl` stores nothing and answers the first id.
   */
  key?: string
}

/** One message of `app.longpoll.pushMany`: what `push(channel, data, { key })` takes. */
export interface PushManyMessage {
  channel: string
  data: unknown
  /** Idempotency key, as `push`'s `{ key }`. */
  key?: string
}

/** `app.longpoll.stats()`: the hub's counters and three gauges, for this instance. */
export type LongPollStats = Readonly<HubCounters> & {
  /** Polls this instance holds now (including those whose first store reads are in flight). */
  readonly heldPolls: number
  /** Channels with at least one held poll on this instance. */
  readonly channels: number
  /** Queue claims this instance holds now (they share `maxHeldPolls` with polls). */
  readonly heldClaims: number
}

/** The decorator: `app.longpoll`. */
export interface LongPollApi {
  /** Stores a message on a channel and wakes its polls, on every instance. Same path as `POST /push`. */
  push (channel: string, data: unknown, options?: PushOptions): Promise<PushResult>
  /**
   * Stores many messages, on any channels, in one store round trip per Redis node, and announces them with one
   * event per channel; answers one `push` result per message, in order. The messages of one channel are stored
   * in batch order, with consecutive ids. The whole batch is checked first: one invalid message (the error
   * `push` would throw, its message naming the item) or more than `maxPushMany` (FST_LONGPOLL_BAD_BATCH) throws
   * with nothing stored.
   */
  pushMany (messages: readonly PushManyMessage[]): Promise<PushResult[]>
  /** Whether some instance holds a poll on the channel, or answered one within `presenceWindow`. */
  online (channel: string): Promise<boolean>
  /** Answers every poll held on the channel, on every instance, with `disconnected`, and deletes its messages. */
  disconnect (channel: string): Promise<void>
  stats (): LongPollStats
}

/** Push, disconnect and stats, shared by the routes and the decorator so both take one code path. */
export class LongPoll implements LongPollApi {
  readonly hub: Hub

  constructor (readonly options: NormalizedOptions, private readonly log: FastifyBaseLogger, readonly metrics: Metrics = noMetrics) {
    this.hub = new Hub({ ...options, log, metrics })
  }

  checkChannel (channel: unknown): string {
    if (typeof channel !== 'string' || !this.options.channelPattern.test(channel)) {
      throw new errors.BadChannel(String(channel).slice(0, 200), this.options.channelPattern.source)
    }
    return channel
  }

  async push (channel: string, data: unknown, options?: PushOptions): Promise<PushResult> {
    this.checkChannel(channel)
    const key = idempotencyKey(options?.key)
    const json = encodeData(data, this.options.maxMessageBytes)
    const { store, maxMessages, messageTtl } = this.options
    let stored
    try {
      stored = await store.append(channel, json, Date.now(), { maxMessages, messageTtl },
        key === undefined ? undefined : { key, ttl: this.options.idempotencyTtl })
    } catch (err) {
      this.hub.storeFailed(err, 'append', 'fastify-longpoll: the store failed to append; nothing was stored', { channel })
      throw new errors.StoreUnavailable((err as Error).message, { cause: err })
    }
    this.hub.storeAnswered()
    // A repeat: the first push stored the message and announced it; nothing more to do.
    if (stored.duplicate === true) return { id: formatCursor(stored.epoch, stored.seq), online: await this.presence(channel), duplicate: true }
    this.hub.counters.pushed++
    this.metrics.pushed()
    // The message is stored, so the push succeeded whatever happens next. The answer waits for the publish
    // (bounded by the notifier's own timeout) because its receiver count is the presence. `announce` inlined:
    // one async layer (a promise and a microtask turn) less per push.
    const id = formatCursor(stored.epoch, stored.seq)
    const heldHere = this.hub.holds(channel) // before the event goes out, which may answer the polls here
    let receivers: number | void
    try {
      receivers = await this.options.notifier.publish(channel, { type: 'message', epoch: stored.epoch, seq: stored.seq })
    } catch (err) {
      this.publishFailed(err, channel)
      return { id, online: heldHere }
    }
    return { id, online: typeof receivers === 'number' ? receivers > 0 : heldHere }
  }

  async pushMany (messages: readonly PushManyMessage[]): Promise<PushResult[]> {
    const items = this.checkBatch(messages)
    if (items.length === 0) return []
    const { store, maxMessages, messageTtl } = this.options
    let stored: AppendResult[]
    try {
      stored = store.appendMany !== undefined
        ? await store.appendMany(items, Date.now(), { maxMessages, messageTtl })
        : await appendEach(store, items, Date.now(), { maxMessages, messageTtl })
    } catch (err) {
      this.metrics.storeError('append')
      this.log.error({ err, messages: items.length }, 'fastify-longpoll: the store failed to append a batch (on a single server nothing of it is stored; on a Cluster, other nodes may have stored theirs)')
      throw new errors.StoreUnavailable((err as Error).message, { cause: err })
    }
    // One event per channel, for its newest message: a wake-up reads everything after each poll's cursor.
    const newest = new Map<string, AppendResult>()
    for (let i = 0; i < items.length; i++) {
      const result = stored[i] as AppendResult
      if (result.duplicate === true) continue
      newest.set((items[i] as AppendItem).channel, result)
      this.hub.counters.pushed++
      this.metrics.pushed()
    }
    const online = new Map<string, boolean>()
    await Promise.all(Array.from(newest, async ([channel, { epoch, seq }]) => {
      online.set(channel, await this.announce(channel, epoch, seq))
    }))
    // Channels with only repeats in the batch announced nothing: ask for their presence, as `push` does.
    const repeatsOnly = new Set(items.map(({ channel }) => channel).filter((channel) => !online.has(channel)))
    await Promise.all(Array.from(repeatsOnly, async (channel) => { online.set(channel, await this.presence(channel)) }))
    return stored.map((result, i): PushResult => {
      const id = formatCursor(result.epoch, result.seq)
      const here = online.get((items[i] as AppendItem).channel) as boolean
      return result.duplicate === true ? { id, online: here, duplicate: true } : { id, online: here }
    })
  }

  /** The whole batch checked before anything is stored: the error `push` would throw, naming the item. */
  private checkBatch (messages: readonly PushManyMessage[]): AppendItem[] {
    if (!Array.isArray(messages)) throw new errors.BadBatch(`expected an array of { channel, data, key? }, got ${messages === null ? 'null' : typeof messages}`)
    const { maxPushMany, maxMessageBytes, idempotencyTtl } = this.options
    if (messages.length > maxPushMany) throw new errors.BadBatch(`${messages.length} messages; the limit is ${maxPushMany} (option maxPushMany)`)
    return messages.map((message: PushManyMessage, i): AppendItem => {
      if (message === null || typeof message !== 'object') throw new errors.BadBatch(`messages[${i}] is not an object { channel, data, key? }`)
      try {
        const channel = this.checkChannel(message.channel)
        const key = idempotencyKey(message.key)
        const json = encodeData(message.data, maxMessageBytes)
        return key === undefined ? { channel, json } : { channel, json, idempotency: { key, ttl: idempotencyTtl } }
      } catch (err) {
        (err as Error).message = `messages[${i}]: ${(err as Error).message}`
        throw err
      }
    })
  }

  /**
   * Publishes a stored message's event; resolves with the channel's presence. A failed publish never fails the
   * push: the message is stored, and held polls see it on their next wake-up or resync (late, never lost).
   * `push` does the same inline.
   */
  private async announce (channel: string, epoch: string, seq: number): Promise<boolean> {
    // Local presence is taken before the event goes out: the event may answer (and release) the polls here.
    const heldHere = this.hub.holds(channel)
    let receivers: number | void
    try {
      receivers = await this.options.notifier.publish(channel, { type: 'message', epoch, seq })
    } catch (err) {
      this.publishFailed(err, channel)
      return heldHere
    }
    return typeof receivers === 'number' ? receivers > 0 : heldHere
  }

  /** Also a notifier that throws instead of rejecting: still a stored message, still a 200. */
  private publishFailed (err: unknown, channel: string): void {
    this.log.warn({ err, channel }, 'fastify-longpoll: the notifier failed to publish a message')
  }

  /** Presence from the notifier's subscriber count, or, for a notifier without one, this instance's polls. */
  async online (channel: string): Promise<boolean> {
    this.checkChannel(channel)
    const { notifier } = this.options
    if (typeof notifier.online !== 'function') return this.hub.holds(channel)
    try {
      return await notifier.online(channel)
    } catch (err) {
      throw new errors.NotifierUnavailable((err as Error).message, { cause: err })
    }
  }

  /** Presence for a duplicate push (nothing was announced): asked, and never failing the push. */
  private async presence (channel: string): Promise<boolean> {
    try {
      return await this.online(channel)
    } catch (err) {
      this.log.warn({ err, channel }, 'fastify-longpoll: the notifier failed to tell presence')
      return this.hub.holds(channel)
    }
  }

  async disconnect (channel: string): Promise<void> {
    this.checkChannel(channel)
    try {
      await this.options.store.delete(channel)
    } catch (err) {
      this.hub.storeFailed(err, 'delete', 'fastify-longpoll: the store failed to delete a channel', { channel })
      throw new errors.StoreUnavailable((err as Error).message, { cause: err })
    }
    this.hub.storeAnswered()
    // Deleted first, then announced: a client that re-polls on `disconnected` finds the channel's new life.
    // If the announcement fails, held polls are not released: say so (503), and a retry is harmless because
    // deleting an already deleted channel is a no-op.
    try {
      await this.options.notifier.publish(channel, { type: 'disconnect' })
    } catch (err) {
      this.log.error({ err, channel }, 'fastify-longpoll: the notifier failed to announce a disconnect')
      throw new errors.NotifierUnavailable((err as Error).message, { cause: err })
    }
  }

  stats (): LongPollStats {
    return { heldPolls: this.hub.heldPolls, channels: this.hub.channelCount, ...this.hub.counters, heldClaims: this.hub.heldElsewhere() }
  }
}

/**
 * `appendMany` for a store without it: the messages of one channel one after another (so they keep batch order),
 * the channels together.
 */
async function appendEach (store: LongPollStore, items: AppendItem[], time: number, retention: Retention): Promise<AppendResult[]> {
  const byChannel = new Map<string, number[]>()
  items.forEach(({ channel }, i) => {
    const indices = byChannel.get(channel)
    if (indices === undefined) byChannel.set(channel, [i])
    else indices.push(i)
  })
  const results = new Array<AppendResult>(items.length)
  await Promise.all(Array.from(byChannel.values(), async (indices) => {
    for (const i of indices) {
      const { channel, json, idempotency } = items[i] as AppendItem
      results[i] = await store.append(channel, json, time, retention, idempotency)
    }
  }))
  return results
}

function idempotencyKey (key: unknown): string | undefined {
  if (key === undefined) return undefined
  if (typeof key !== 'string' || !IDEMPOTENCY_KEY_PATTERN.test(key)) {
    const shown = typeof key === 'string' ? JSON.stringify(key.slice(0, 40)) + (key.length > 40 ? '…' : '') : typeof key
    throw new errors.BadIdempotencyKey(`${shown}: it must be 1-200 visible ASCII characters (%x21-7E)`)
  }
  return key
}
