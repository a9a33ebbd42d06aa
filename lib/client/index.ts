// fastify-longpoll/client — for browsers and Node (global fetch). No Node-only import may appear here.
import type { LongPollClientState, StateDetail, Wants } from './leader.js'
import { backoffDelay, sleep } from './backoff.js'
import {
  advance, covers, epochOf, isAfter, isEmptyChannel, LongPollClientError, pollOnce,
  type Delivery, type LongPollMessage, type RetryableError
} from './poll.js'
import { canShare, OwnLink, SharedLink, type Link } from './shared.js'

export { LongPollClientError, parseRetryAfter, type LongPollMessage } from './poll.js'
export type { LongPollClientState } from './leader.js'
export type { LongPollErrorCode } from './codes.js'

interface CommonOptions {
  /** Where the plugin's routes are, e.g. `https://example.com/lp`, or `/lp` in a page (its `/poll` is appended). */
  url: string | URL
  /** Milliseconds the server holds each poll (the server clamps it). Default: the server's default. */
  timeout?: number
  /** Most messages per answer. Default: the server's maximum. */
  limit?: number
  /** First retry delay, in milliseconds; it doubles per failure. Default 500. */
  minDelay?: number
  /** Longest retry delay, in milliseconds. Default 30000. */
  maxDelay?: number
  /** Extra request headers (e.g. authorization); a function is called before every poll. */
  headers?: Record<string, string> | (() => Record<string, string>)
  /** The fetch to use. Default: the global fetch. */
  fetch?: typeof fetch
  /**
   * In a browser, hold one poll for every tab of this origin that follows channels of this `url` with `share`:
   * one tab leads and relays to the others (Web Locks and BroadcastChannel). Where those are missing (Node,
   * old browsers) the client polls on its own. The leading tab's options (`headers`, `timeout`, …) are used.
   */
  share?: boolean
  /** Called when the connection state changes. */
  onState?: (state: LongPollClientState, detail?: { delay?: number, error?: unknown }) => void
  /** Called when messages of `channel` were missed (expired, trimmed, or the channel began a new life). */
  onGap?: (channel: string) => void
  /** Called when the server disconnected `channel`: the client follows it no more. */
  onDisconnect?: (channel: string) => void
}

export interface OneChannelOptions extends CommonOptions {
  channel: string
  channels?: never
  /** Where to start: a cursor or message id from earlier, or `latest`. Default: the oldest retained message. */
  cursor?: string
}

export interface ManyChannelsOptions extends CommonOptions {
  channels: string[]
  channel?: never
  /**
   * Where to start, per channel: `{ [channel]: cursor | 'latest' }`, or the aligned comma-separated form the
   * server and `client.cursor` use. A channel without one starts at its oldest retained message.
   */
  cursor?: string | Record<string, string>
}

/** `channel` for one channel, or `channels` for several — not both. */
export type LongPollClientOptions = OneChannelOptions | ManyChannelsOptions

/** One followed channel. A new object per subscription, so that what was queued for an old one is dropped. */
interface Subscription {
  channel: string
  /** After the last message queued for the consumer: what this client asks polls for. `null`: the oldest. */
  taken: string | null
  /** After the last message handed to the consumer: what `client.cursor` reports. */
  handed: string | null
  /** `resolving`: waiting for `latest` to be made concrete (shared); `disconnected` still hands out its queue. */
  state: 'active' | 'resolving' | 'disconnected' | 'unsubscribed'
}

type Item =
  | { kind: 'message', sub: Subscription, message: LongPollMessage }
  | { kind: 'gap', sub: Subscription }
  | { kind: 'cursor', sub: Subscription, to: string }
  | { kind: 'disconnected', sub: Subscription }

/**
 * Follows one channel or many: `for await (const message of client)`. Keeps a cursor per channel, so every
 * retained message is delivered once, in order per channel, across reconnects; retries with exponential backoff
 * and jitter, honouring `Retry-After`. `subscribe()` and `unsubscribe()` change the channels while iterating.
 * Iteration ends on `stop()`, or when the server has disconnected every channel followed.
 */
export class LongPollClient<T = unknown> implements AsyncIterable<LongPollMessage<T>> {
  state: LongPollClientState = 'connecting'
  /** Why iteration ended: `stopped` (by `stop()`) or `disconnected` (by the server, every channel). */
  endReason: 'stopped' | 'disconnected' | undefined
  private readonly options: LongPollClientOptions
  private readonly subs = new Map<string, Subscription>()
  private readonly stopper = new AbortController()
  private queue: Item[] = []
  private link: Link | undefined
  /** Aborted when the iteration ends: short polls made for `latest` stop with it. */
  private run: AbortController | undefined
  private error: unknown
  /** Set while the consumer waits for an item. */
  private pulling: (() => void) | undefined
  /** A poll loop of its own waits here until the consumer took everything (no unbounded queue). */
  private drained: Array<() => void> = []

  constructor (options: LongPollClientOptions) {
    if (options === null || typeof options !== 'object') throw new TypeError('LongPollClient needs options { url, channel } or { url, channels }')
    if (typeof options.url !== 'string' && !(options.url instanceof URL)) throw new TypeError('LongPollClient: "url" must be a string or URL')
    const { channel, channels } = options as { channel?: unknown, channels?: unknown }
    if (channel !== undefined && channels !== undefined) throw new TypeError('LongPollClient: give "channel" or "channels", not both')
    let list: string[]
    if (channels !== undefined) {
      if (!Array.isArray(channels)) throw new TypeError('LongPollClient: "channels" must be an array of channel names')
      list = channels
    } else {
      list = [channel as string]
    }
    for (const name of list) checkChannel(name)
    if (new Set(list).size !== list.length) throw new TypeError('LongPollClient: a channel is listed twice')
    const cursors = startCursors(list, options.cursor)
    this.options = options
    for (const name of list) this.subs.set(name, newSubscription(name, cursors[name] ?? null))
  }

  /** The channels followed, in the order they were added. */
  get channels (): string[] {
    return [...this.subs.keys()]
  }

  /**
   * Where the next poll starts, in the server's form: for one channel its cursor (the id of the last message
   * handed out, or the server's cursor); for several, the aligned comma-separated entries of `channels`.
   */
  get cursor (): string | undefined {
    const entries = [...this.subs.values()].map((sub) => sub.handed)
    if (entries.every((entry) => entry === null)) return undefined
    return entries.map((entry) => entry ?? '').join(',')
  }

  /** Each channel's cursor (channels still at their oldest message have none): to resume with `{ cursor }`. */
  get cursors (): Record<string, string> {
    const out: Record<string, string> = {}
    for (const sub of this.subs.values()) if (sub.handed !== null) out[sub.channel] = sub.handed
    return out
  }

  get stopped (): boolean {
    return this.stopper.signal.aborted
  }

  /**
   * Follows `channel` too, from `cursor` (default: its oldest retained message). While iterating, the held poll
   * is aborted and made again with it at once; the other channels lose and repeat nothing. No-op if followed.
   */
  subscribe (channel: string, { cursor }: { cursor?: string } = {}): void {
    checkChannel(channel)
    if (cursor !== undefined && (typeof cursor !== 'string' || cursor === '' || cursor.includes(','))) {
      throw new TypeError('LongPollClient: "cursor" must be a cursor, a message id or "latest"')
    }
    if (this.subs.has(channel)) return
    const sub = newSubscription(channel, cursor ?? null)
    this.subs.set(channel, sub)
    if (this.link !== undefined) this.follow(sub)
  }

  /** Stops following `channel`: nothing more of it is handed out, not even what was already received. */
  unsubscribe (channel: string): void {
    const sub = this.subs.get(channel)
    if (sub === undefined) return
    sub.state = 'unsubscribed'
    this.subs.delete(channel)
    this.announce()
  }

  /** Ends iteration at once; an in-flight poll is aborted. */
  stop (): void {
    this.endReason ??= 'stopped'
    this.stopper.abort()
    this.link?.stop()
    this.wakeConsumer()
    this.releaseDrained()
    this.setState('stopped')
  }

  async * [Symbol.asyncIterator] (): AsyncGenerator<LongPollMessage<T>, void, undefined> {
    if (this.run !== undefined) throw new Error('LongPollClient: only one iteration at a time')
    if (this.stopped) return
    const run = new AbortController()
    this.run = run
    this.error = undefined
    this.options.onState?.(this.state)
    const settings = { ...this.options }
    const events = {
      receive: (delivery: Delivery) => this.receive(delivery),
      state: (state: LongPollClientState, detail?: StateDetail) => { if (!this.stopped) this.setState(state, detail) },
      fail: (error: LongPollClientError) => this.fail(error)
    }
    this.link = this.options.share === true && canShare()
      ? new SharedLink(settings, events)
      : new OwnLink(settings, events, () => this.whenDrained())
    this.link.start({})
    for (const sub of this.subs.values()) this.follow(sub, false)
    this.announce()
    try {
      while (!this.stopped) {
        if (this.error !== undefined) throw this.error
        const item = this.queue.shift()
        if (item === undefined) {
          await new Promise<void>((resolve) => {
            this.pulling = resolve
            this.releaseDrained()
          })
          continue
        }
        const { sub } = item
        if (sub.state === 'unsubscribed') continue
        switch (item.kind) {
          case 'gap':
            this.options.onGap?.(sub.channel)
            break
          case 'message':
            sub.handed = item.message.id
            yield item.message as LongPollMessage<T>
            break
          case 'cursor':
            sub.handed = advance(sub.handed, item.to)
            break
          case 'disconnected':
            this.options.onDisconnect?.(sub.channel)
            if (this.subs.size === 0) {
              this.endReason = 'disconnected'
              this.stop()
            }
            break
        }
      }
    } finally {
      run.abort()
      this.link.stop()
      this.link = undefined
      this.run = undefined
      this.pulling = undefined
      this.releaseDrained()
      // What was received but not handed out is dropped: a new iteration asks for it again.
      this.queue = []
      for (const sub of this.subs.values()) {
        sub.taken = sub.handed
        if (sub.state === 'resolving') sub.state = 'active'
      }
    }
  }

  /** Starts following `sub` on the link: at once, or once `latest` was made concrete (shared). */
  private follow (sub: Subscription, announce = true): void {
    if (this.link?.resolvesLatest === true && sub.taken === 'latest') {
      sub.state = 'resolving'
      void this.resolveLatest(sub)
    } else if (announce) {
      this.announce()
    }
  }

  private announce (): void {
    if (this.link === undefined) return
    const wants: Wants = {}
    for (const sub of this.subs.values()) if (sub.state === 'active') wants[sub.channel] = sub.taken
    this.link.want(wants)
  }

  /** One short poll `cursor=latest&timeout=0` for `sub`'s channel, retried like any poll. */
  private async resolveLatest (sub: Subscription): Promise<void> {
    const signal = (this.run as AbortController).signal
    for (let failures = 0; !signal.aborted && sub.state === 'resolving'; failures++) {
      try {
        const delivery = await pollOnce(this.options, [sub.channel], ['latest'], 0, signal)
        if (sub.state !== 'resolving') return
        sub.state = 'active'
        this.receive(delivery)
        this.announce()
        return
      } catch (err) {
        if (signal.aborted) return
        if (err instanceof LongPollClientError && (err as RetryableError).retryAfter === undefined) return this.fail(err)
        await sleep(backoffDelay(failures, (err as RetryableError).retryAfter, this.options.minDelay, this.options.maxDelay), signal)
      }
    }
  }

  /**
   * Takes from an answer what this client needs: for each channel it follows, when the answer holds every
   * message after its own cursor (`covers`), the messages after that cursor, in the answer's order; then its
   * cursor moves to the end of the answer. An answer that started later than its cursor is skipped (its poll
   * was made before this client asked for the earlier start; a later one serves it). See shared.ts for why this
   * loses and repeats nothing, whatever order, number or origin the answers have.
   */
  private receive (delivery: Delivery): void {
    if (this.run === undefined) return
    const taking = new Map<string, Subscription>()
    const items: Item[] = []
    const ends: Item[] = []
    let reannounce = false
    delivery.channels.forEach((channel, i) => {
      const sub = this.subs.get(channel)
      if (sub === undefined || sub.state !== 'active') return
      const from = delivery.from[i] as string | null
      const to = delivery.to[i] as string
      const covered = covers(from, sub.taken, to)
      if (covered) {
        taking.set(channel, sub)
        if (this.isGap(sub.taken, from, to, delivery.gaps.includes(channel), delivery.messages.find((m) => m.channel === channel))) {
          items.push({ kind: 'gap', sub })
        }
        ends.push({ kind: 'cursor', sub, to })
      }
      if (delivery.disconnected.includes(channel)) {
        // The life that ended is the one of `to`; a notice about an earlier life (from a stale leader) is not ours.
        if (covered || sub.taken === null || epochOf(sub.taken) === epochOf(to)) {
          sub.state = 'disconnected'
          this.subs.delete(channel)
          ends.push({ kind: 'disconnected', sub })
        } else {
          reannounce = true // the leader dropped the channel for everyone: ask for it again
        }
      }
    })
    for (const message of delivery.messages) {
      const sub = taking.get(message.channel)
      if (sub === undefined || !isAfter(message.id, sub.taken)) continue
      sub.taken = message.id
      items.push({ kind: 'message', sub, message })
    }
    for (const end of ends) if (end.kind === 'cursor') end.sub.taken = advance(end.sub.taken, end.to)
    if (reannounce) this.announce()
    if (items.length + ends.length === 0) return
    this.queue.push(...items, ...ends)
    this.wakeConsumer()
  }

  /**
   * A gap for this client. Where the poll started from this client's own position (or, for a channel that had
   * no message yet, from before its first one), the server's word: it knows the channel's lives (a first
   * message, or a fork after its store lost writes, changes the epoch without a gap). Otherwise (a shared poll
   * that started elsewhere): its cursor is in a life that ended, or the server found messages missing after the
   * poll's start and this client had not got past them (with its cursor before the answer's first message).
   */
  private isGap (taken: string | null, from: string | null, to: string, serverGap: boolean, first: LongPollMessage | undefined): boolean {
    if (taken === null || taken === 'latest') return false
    const beforeFirst = isEmptyChannel(taken) && (from === null || isEmptyChannel(from))
    if (from === taken || beforeFirst) return serverGap
    if (epochOf(taken) !== epochOf(to)) return true
    return serverGap && (first === undefined || isAfter(first.id, taken))
  }

  private fail (error: LongPollClientError): void {
    this.error ??= error
    this.link?.stop()
    this.wakeConsumer()
  }

  private whenDrained (): Promise<void> {
    if ((this.queue.length === 0 && this.pulling !== undefined) || this.stopped || this.run === undefined) return Promise.resolve()
    return new Promise((resolve) => this.drained.push(resolve))
  }

  private releaseDrained (): void {
    const waiting = this.drained
    this.drained = []
    for (const resolve of waiting) resolve()
  }

  private wakeConsumer (): void {
    const pulling = this.pulling
    this.pulling = undefined
    pulling?.()
  }

  private setState (state: LongPollClientState, detail?: StateDetail): void {
    if (this.state === state && state !== 'reconnecting') return
    this.state = state
    this.options.onState?.(state, detail)
  }
}

function newSubscription (channel: string, cursor: string | null): Subscription {
  return { channel, taken: cursor, handed: cursor, state: 'active' }
}

function checkChannel (channel: unknown): asserts channel is string {
  if (typeof channel !== 'string' || channel === '') throw new TypeError('LongPollClient: a channel must be a non-empty string')
}

/** The constructor's `cursor`, per channel. */
function startCursors (channels: string[], cursor: unknown): Record<string, string> {
  if (cursor === undefined) return {}
  const out: Record<string, string> = {}
  if (typeof cursor === 'string') {
    const entries = channels.length === 1 ? [cursor] : cursor.split(',')
    if (entries.length !== channels.length) throw new TypeError(`LongPollClient: "cursor" has ${entries.length} entries for ${channels.length} channels`)
    channels.forEach((channel, i) => { if (entries[i] !== '') out[channel] = entries[i] as string })
    return out
  }
  if (cursor === null || typeof cursor !== 'object') throw new TypeError('LongPollClient: "cursor" must be a string or { [channel]: cursor }')
  for (const [channel, value] of Object.entries(cursor)) {
    if (!channels.includes(channel)) throw new TypeError(`LongPollClient: "cursor" names ${channel}, which is not in "channels"`)
    if (typeof value !== 'string' || value === '') throw new TypeError(`LongPollClient: the cursor of ${channel} must be a non-empty string`)
    out[channel] = value
  }
  return out
}
export { LongPollWorker, type LongPollJob, type LongPollJobContext, type LongPollWorkerOperation, type LongPollWorkerOptions } from './worker.js'
