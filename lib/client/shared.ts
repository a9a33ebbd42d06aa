// `share: true`: every tab of an origin that follows channels of one server through a shared client holds one
// poll between them. No Node-only import may appear here, and no dependency: Web Locks and BroadcastChannel.
//
// How it works
// - Each shared client (a "follower") opens a BroadcastChannel named after the poll URL and asks for a Web
//   Lock of the same name. The lock holder leads: it runs the Leader (leader.ts) over the union of what every
//   follower wants, and posts every answer, as it came, to the others. When it closes, navigates away, stops or
//   is frozen, the lock passes to the next tab in the lock's queue, which leads from then on.
// - A follower announces its channels and, for each, its own cursor (`want`): when it starts, when it
//   subscribes or unsubscribes, and whenever a new leader announces itself. A new leader therefore starts each
//   channel from the earliest cursor any follower holds; it never needs what the previous leader knew.
// - Every follower keeps its own cursor per channel and takes from an answer only what it needs (index.ts):
//   for a channel, an answer polled `from` holds every message after `from`, so it serves a follower at or after
//   `from` — the follower takes the messages after its own cursor and moves its cursor on — and is skipped by a
//   follower before `from` (that follower's `want` moves the leader's position back, and a later answer serves
//   it). Why nothing is lost: a follower's cursor only moves over messages it took, or to the end of an answer
//   that held every message after it. Why nothing is taken twice: it takes only messages after its cursor, and
//   ids order by seq within a life. So answers may arrive late, twice, from a stale leader that was frozen, or
//   start earlier than a follower needs: each follower still takes each message once, in order.
// - A backlog asked for at runtime (`subscribe(channel, { cursor })`) is the same case: the follower's `want`
//   moves the leader's position for that channel back to that cursor, the held poll is aborted and made again,
//   and the followers already past it skip what they have.
// - `latest` is made concrete by the follower itself with one short poll (timeout 0) before it announces it:
//   a leader already polling that channel could not tell "after now" from the position it is at.
import { Leader, type LeaderSettings, type LongPollClientState, type StateDetail, type Wants } from './leader.js'
import { LongPollClientError, pollUrl, type Delivery } from './poll.js'

/** What a shared link tells the client it serves. */
export interface FollowerEvents {
  receive: (delivery: Delivery) => void
  state: (state: LongPollClientState, detail?: StateDetail) => void
  fail: (error: LongPollClientError) => void
}

/** How a client reaches a poll: a Leader of its own, or the one of the leading tab. */
export interface Link {
  /** True when the client must make `latest` concrete before it announces it. */
  readonly resolvesLatest: boolean
  start: (wants: Wants) => void
  want: (wants: Wants) => void
  stop: () => void
}

type Note =
  | { type: 'want', from: string, wants: Wants }
  | { type: 'leave', from: string }
  | { type: 'leader', from: string }
  | { type: 'deliver', delivery: Delivery }
  | { type: 'state', state: LongPollClientState, delay?: number | undefined }
  | { type: 'fail', followers: string[], status: number, code: string | undefined, message: string }

/** A new leader waits this long for the followers' wants before its first poll, so that it polls once, not k times. */
const SETTLE_MS = 30

interface Locks {
  request: (name: string, options: { signal?: AbortSignal }, callback: () => Promise<void>) => Promise<void>
}

function locks (): Locks | undefined {
  const found = (globalThis as { navigator?: { locks?: Locks } }).navigator?.locks
  return typeof found?.request === 'function' ? found : undefined
}

/** True where tabs can share a poll (Web Locks and BroadcastChannel); elsewhere `share` polls on its own. */
export function canShare (): boolean {
  return typeof BroadcastChannel === 'function' && locks() !== undefined
}

/** A Leader of the client's own. */
export class OwnLink implements Link {
  readonly resolvesLatest = false
  private readonly leader: Leader

  constructor (settings: LeaderSettings, follower: FollowerEvents, ready: () => Promise<void>) {
    this.leader = new Leader(settings, {
      deliver: (delivery) => follower.receive(delivery),
      state: (state, detail) => follower.state(state, detail),
      fail: (error) => follower.fail(error),
      ready
    })
  }

  start (wants: Wants): void {
    this.leader.want('own', wants)
    this.leader.start()
  }

  want (wants: Wants): void {
    this.leader.want('own', wants)
  }

  stop (): void {
    this.leader.stop()
  }
}

/** One follower of the tabs sharing a poll; it leads while it holds the lock. */
export class SharedLink implements Link {
  readonly resolvesLatest = true
  private readonly name: string
  private readonly id = Math.random().toString(36).slice(2) + Date.now().toString(36)
  private bus: BroadcastChannel | undefined
  private leader: Leader | undefined
  private leaderState: { state: LongPollClientState, delay?: number | undefined } | undefined
  private resign: (() => void) | undefined
  private lockRequest: AbortController | undefined
  private wants: Wants = {}
  private stopped = false
  private readonly listeners: Array<[EventTarget, string, () => void]> = []

  constructor (private readonly settings: LeaderSettings, private readonly follower: FollowerEvents) {
    this.name = `fastify-longpoll ${pollUrl(settings.url)}`
  }

  start (wants: Wants): void {
    this.wants = wants
    this.bus = new BroadcastChannel(this.name)
    this.bus.onmessage = (event: MessageEvent<Note>) => this.hear(event.data)
    this.post({ type: 'want', from: this.id, wants })
    this.requestLock()
    // A frozen tab runs nothing: it must not keep the lead, nor hold up the queue for it. A page kept in the
    // back/forward cache is the same. Both come back as followers and announce where they are.
    const doc = (globalThis as { document?: EventTarget }).document
    if (doc !== undefined) {
      this.listen(doc, 'freeze', () => this.pause())
      this.listen(doc, 'resume', () => this.resume())
    }
    if (typeof globalThis.addEventListener === 'function') {
      this.listen(globalThis, 'pagehide', () => this.pause(true))
      this.listen(globalThis, 'pageshow', () => this.resume())
    }
  }

  want (wants: Wants): void {
    this.wants = wants
    if (this.leader !== undefined) this.leader.want(this.id, wants)
    else this.post({ type: 'want', from: this.id, wants })
  }

  stop (): void {
    if (this.stopped) return
    this.stopped = true
    this.pause(true)
    for (const [target, type, listener] of this.listeners) target.removeEventListener(type, listener)
    this.bus?.close()
  }

  private listen (target: EventTarget, type: string, listener: () => void): void {
    target.addEventListener(type, listener)
    this.listeners.push([target, type, listener])
  }

  private pause (leaving = false): void {
    if (leaving) this.post({ type: 'leave', from: this.id })
    this.resign?.()
    this.lockRequest?.abort()
    this.lockRequest = undefined
  }

  private resume (): void {
    if (this.stopped || this.lockRequest !== undefined) return
    this.post({ type: 'want', from: this.id, wants: this.wants })
    this.requestLock()
  }

  private requestLock (): void {
    const request = new AbortController()
    this.lockRequest = request
    // Rejects with an AbortError when withdrawn (pause) before it was granted: nothing to do then.
    locks()?.request(this.name, { signal: request.signal }, () => this.lead()).catch(() => {})
  }

  /** Runs while this follower holds the lock; resolving releases it. */
  private async lead (): Promise<void> {
    if (this.stopped) return
    const resigned = new Promise<void>((resolve) => { this.resign = resolve })
    const leader = new Leader(this.settings, {
      deliver: (delivery) => {
        this.post({ type: 'deliver', delivery })
        this.follower.receive(delivery)
      },
      state: (state, detail) => {
        this.leaderState = { state, delay: detail?.delay }
        this.post({ type: 'state', ...this.leaderState })
        this.follower.state(state, detail)
      },
      fail: (error, followers) => {
        this.post({ type: 'fail', followers, status: error.status, code: error.code, message: error.message })
        if (followers.includes(this.id)) this.follower.fail(error)
      }
    })
    this.leader = leader
    leader.want(this.id, this.wants)
    this.post({ type: 'leader', from: this.id })
    let settled: ReturnType<typeof setTimeout> | undefined
    await Promise.race([resigned, new Promise((resolve) => { settled = setTimeout(resolve, SETTLE_MS) })])
    clearTimeout(settled)
    leader.start()
    await resigned
    leader.stop()
    this.leader = undefined
    this.leaderState = undefined
    this.resign = undefined
    // The lock is released now. Only pause() and stop() resign: pause's resume() asks for the lock again.
  }

  private hear (note: Note): void {
    if (this.stopped) return
    switch (note.type) {
      case 'want':
        if (this.leader !== undefined) {
          this.leader.want(note.from, note.wants)
          if (this.leaderState !== undefined) this.post({ type: 'state', ...this.leaderState })
        }
        break
      case 'leave':
        this.leader?.leave(note.from)
        break
      case 'leader':
        if (note.from !== this.id) this.post({ type: 'want', from: this.id, wants: this.wants })
        break
      case 'deliver':
        this.follower.receive(note.delivery)
        break
      case 'state':
        if (this.leader === undefined) this.follower.state(note.state, note.delay === undefined ? undefined : { delay: note.delay })
        break
      case 'fail':
        if (note.followers.includes(this.id)) this.follower.fail(new LongPollClientError(note.status, note.code, note.message))
        break
    }
  }

  private post (note: Note): void {
    this.bus?.postMessage(note)
  }
}
