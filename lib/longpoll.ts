import type { FastifyBaseLogger } from 'fastify'
import { formatCursor } from './cursor.js'
import { errors } from './errors.js'
import { Hub } from './hub.js'
import type { NormalizedOptions } from './options.js'

export interface PushResult {
  /** The message id; also a valid cursor. */
  id: string
}

export interface LongPollStats {
  /** Polls this instance holds now (including those whose first store read is in flight). */
  heldPolls: number
  /** Channels with at least one held poll on this instance. */
  channels: number
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
  /** Queue claims this instance holds now (they share `maxHeldPolls` with polls). */
  heldClaims: number
}

/** The decorator: `app.longpoll`. */
export interface LongPollApi {
  /** Stores a message on a channel and wakes its polls, on every instance. Same path as `POST /push`. */
  push (channel: string, data: unknown): Promise<PushResult>
  /** Answers every poll held on the channel, on every instance, with `disconnected`, and deletes its messages. */
  disconnect (channel: string): Promise<void>
  stats (): LongPollStats
}

/** Push, disconnect and stats, shared by the routes and the decorator so both take one code path. */
export class LongPoll implements LongPollApi {
  readonly hub: Hub
  private pushed = 0

  constructor (readonly options: NormalizedOptions, private readonly log: FastifyBaseLogger) {
    this.hub = new Hub({ ...options, log })
  }

  checkChannel (channel: unknown): string {
    if (typeof channel !== 'string' || !this.options.channelPattern.test(channel)) {
      throw new errors.BadChannel(String(channel).slice(0, 200), this.options.channelPattern.source)
    }
    return channel
  }

  async push (channel: string, data: unknown): Promise<PushResult> {
    this.checkChannel(channel)
    let json: string | undefined
    try {
      json = JSON.stringify(data)
    } catch (err) {
      throw new errors.BadData((err as Error).message)
    }
    if (json === undefined) throw new errors.MissingData()
    const bytes = Buffer.byteLength(json)
    if (bytes > this.options.maxMessageBytes) throw new errors.MessageTooLarge(bytes, this.options.maxMessageBytes)
    const { store, notifier, maxMessages, messageTtl } = this.options
    let stored
    try {
      stored = await store.append(channel, json, Date.now(), { maxMessages, messageTtl })
    } catch (err) {
      this.log.error({ err, channel }, 'fastify-longpoll: the store failed to append; nothing was stored')
      throw new errors.StoreUnavailable((err as Error).message, { cause: err })
    }
    this.pushed++
    // The message is stored, so the push succeeded whatever happens next. If the notifier fails, held polls
    // still see the message on their next wake-up or resync; it is never lost, only late.
    const failed = (err: unknown): void => {
      this.log.warn({ err, channel }, 'fastify-longpoll: the notifier failed to publish a message')
    }
    try {
      notifier.publish(channel, { type: 'message', epoch: stored.epoch, seq: stored.seq }).catch(failed)
    } catch (err) {
      failed(err) // a notifier that throws instead of rejecting: still a stored message, still a 200
    }
    return { id: formatCursor(stored.epoch, stored.seq) }
  }

  async disconnect (channel: string): Promise<void> {
    this.checkChannel(channel)
    try {
      await this.options.store.delete(channel)
    } catch (err) {
      throw new errors.StoreUnavailable((err as Error).message, { cause: err })
    }
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
    return { heldPolls: this.hub.heldPolls, channels: this.hub.channelCount, pushed: this.pushed, ...this.hub.counters, heldClaims: this.hub.heldElsewhere() }
  }
}
