// The poll loop: one held poll for the union of what its followers want. A LongPollClient of its own runs one
// for itself; with `share`, the leading tab runs one for every tab. No Node-only import may appear here.
import { backoffDelay, sleep } from './backoff.js'
import { earliest, LongPollClientError, pollOnce, type Delivery, type PollSettings, type RetryableError } from './poll.js'

export type LongPollClientState = 'connecting' | 'live' | 'reconnecting' | 'stopped'

export interface StateDetail { delay?: number, error?: unknown }

/** Where a follower wants each of its channels from: a cursor, `latest`, or `null` (the oldest retained). */
export type Wants = Record<string, string | null>

export interface LeaderSettings extends PollSettings {
  minDelay?: number | undefined
  maxDelay?: number | undefined
}

export interface LeaderEvents {
  /** An answer, for every follower to take what it needs from (see `Follower.receive` in index.ts). */
  deliver: (delivery: Delivery) => void
  state: (state: LongPollClientState, detail?: StateDetail) => void
  /** A poll failed in a way retrying will not cure; `followers` are those whose newest channels it named. */
  fail: (error: LongPollClientError, followers: string[]) => void
  /** Resolves when the next poll may start (a client of its own waits until its messages are taken). */
  ready?: () => Promise<void>
}

/** A channel of the poll: where the next poll starts. A new object whenever a follower moved it back. */
interface Entry { from: string | null }

const CHANGED = Symbol('the channels or cursors changed')

/**
 * Polls the union of its followers' channels. For each channel it keeps one position, `from`: the answer's
 * cursor entry after each answer, or the earliest position a follower asks for, whichever is earlier. Followers
 * each keep their own cursor and take from an answer only what comes after it (index.ts), so starting earlier
 * than some follower needs costs bandwidth, never a duplicate; starting later than one needs would lose
 * messages, which is why a new want can only move a position back. Any change of channels or positions aborts
 * the held poll and polls again at once.
 */
export class Leader {
  private readonly wants = new Map<string, Wants>()
  private readonly entries = new Map<string, Entry>()
  /** Channels added since the last answer: a 400 or 403 is blamed on the followers who asked for them. */
  private readonly added = new Set<string>()
  private readonly stopper = new AbortController()
  private current: AbortController | undefined
  private wake: (() => void) | undefined
  private running = false
  private state: LongPollClientState = 'connecting'

  constructor (private readonly settings: LeaderSettings, private readonly events: LeaderEvents) {}

  /** Replaces what `follower` wants. */
  want (follower: string, wants: Wants): void {
    this.wants.set(follower, wants)
    this.update()
  }

  leave (follower: string): void {
    if (this.wants.delete(follower)) this.update()
  }

  get followers (): string[] {
    return [...this.wants.keys()]
  }

  start (): void {
    if (this.running || this.stopper.signal.aborted) return
    this.running = true
    void this.run()
  }

  stop (): void {
    this.stopper.abort()
    this.wake?.()
  }

  private update (): void {
    let changed = false
    const union = new Map<string, string | null>()
    for (const wants of this.wants.values()) {
      for (const [channel, position] of Object.entries(wants)) {
        union.set(channel, union.has(channel) ? earliest(union.get(channel) as string | null, position) : position)
      }
    }
    for (const channel of this.entries.keys()) {
      if (!union.has(channel)) {
        this.entries.delete(channel)
        this.added.delete(channel)
        changed = true
      }
    }
    for (const [channel, position] of union) {
      const entry = this.entries.get(channel)
      if (entry === undefined) {
        this.entries.set(channel, { from: position })
        this.added.add(channel)
        changed = true
      } else {
        const from = earliest(entry.from, position)
        if (from !== entry.from) {
          this.entries.set(channel, { from })
          changed = true
        }
      }
    }
    if (changed) {
      this.current?.abort(CHANGED)
      this.wake?.()
    }
  }

  private async run (): Promise<void> {
    const { signal } = this.stopper
    let failures = 0
    // Until the server has answered since the last failure (or ever), poll with timeout 0: that answer comes at
    // once, so `live` means "reachable", not "a message happened to arrive". One short request per (re)connect.
    let confirmed = false
    while (!signal.aborted) {
      await this.events.ready?.()
      if (signal.aborted) break
      if (this.entries.size === 0) {
        await new Promise<void>((resolve) => { this.wake = resolve })
        this.wake = undefined
        continue
      }
      const channels = [...this.entries.keys()]
      const polled = channels.map((channel) => this.entries.get(channel) as Entry)
      const controller = new AbortController()
      const stop = (): void => controller.abort(signal.reason)
      signal.addEventListener('abort', stop)
      this.current = controller
      let delivery: Delivery
      try {
        // A `latest` entry is made concrete at once too: a held poll aborted by a change before it answered would
        // otherwise start its `latest` over, at a later "now".
        const quick = !confirmed || polled.some((entry) => entry.from === 'latest')
        delivery = await pollOnce(this.settings, channels, polled.map((entry) => entry.from), quick ? 0 : this.settings.timeout, controller.signal)
      } catch (err) {
        if (signal.aborted) break
        if (controller.signal.reason === CHANGED) continue // re-poll at once with the new channels
        confirmed = false
        if (err instanceof LongPollClientError && (err as RetryableError).retryAfter === undefined) {
          this.blame(err)
          continue
        }
        const delay = backoffDelay(failures++, (err as RetryableError).retryAfter, this.settings.minDelay, this.settings.maxDelay)
        this.setState('reconnecting', { delay, error: err })
        await sleep(delay, signal)
        continue
      } finally {
        signal.removeEventListener('abort', stop)
        this.current = undefined
      }
      failures = 0
      confirmed = true
      this.added.clear()
      this.setState('live')
      // Advance each position the answer covered, unless a follower moved it back while the poll was out: that
      // follower needs the earlier start, and the next poll makes it.
      channels.forEach((channel, i) => {
        if (this.entries.get(channel) === polled[i]) this.entries.set(channel, { from: delivery.to[i] as string })
      })
      // A disconnected channel ended for every follower (each drops it on this delivery): stop polling it.
      for (const channel of delivery.disconnected) {
        this.entries.delete(channel)
        for (const wants of this.wants.values()) delete wants[channel]
      }
      this.events.deliver(delivery)
    }
    this.running = false
  }

  private setState (state: LongPollClientState, detail?: StateDetail): void {
    if (state === this.state && state !== 'reconnecting') return
    this.state = state
    this.events.state(state, detail)
  }

  /** A 4xx: the followers who asked for the channels added since the last answer end; if none, all do. */
  private blame (error: LongPollClientError): void {
    const suspects = [...this.wants].filter(([, wants]) => Object.keys(wants).some((channel) => this.added.has(channel)))
    const followers = (suspects.length > 0 ? suspects : [...this.wants]).map(([follower]) => follower)
    for (const follower of followers) this.wants.delete(follower)
    this.added.clear()
    this.update()
    this.events.fail(error, followers)
  }
}
