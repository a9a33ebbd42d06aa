import type { LongPollNotifier, NotifierEvent, NotifierHandlers, NotifierNamespace } from './types.js'

/** What a bus knows of each notifier on it: where its events go, and which topics it is subscribed to. */
interface BusMember {
  handlers: NotifierHandlers
  subscribed (topic: string): boolean
}

/** One key per (namespace, name): a channel "x" and a queue "x" are two topics. */
function topic (name: string, namespace: NotifierNamespace): string {
  return namespace === 'queue' ? `q:${name}` : name
}

/** An in-process event bus that several MemoryNotifiers (one per Fastify instance) can share. */
export class MemoryBus {
  private readonly members = new Set<BusMember>()

  add (member: BusMember): void {
    this.members.add(member)
  }

  remove (member: BusMember): void {
    this.members.delete(member)
  }

  /** Delivers the event to every notifier on the bus; returns how many are subscribed to the topic. */
  emit (name: string, event: NotifierEvent, namespace: NotifierNamespace = 'channel'): number {
    const key = topic(name, namespace)
    let receivers = 0
    for (const member of this.members) {
      if (member.subscribed(key)) receivers++
      member.handlers.event(name, event, namespace)
    }
    return receivers
  }

  /** How many notifiers on the bus are subscribed to the topic. */
  receivers (name: string, namespace: NotifierNamespace = 'channel'): number {
    const key = topic(name, namespace)
    let receivers = 0
    for (const member of this.members) if (member.subscribed(key)) receivers++
    return receivers
  }
}

export interface MemoryNotifierOptions {
  /** Share one bus between the notifiers of several Fastify instances in one process. Default: a bus of its own. */
  bus?: MemoryBus
}

/** The default notifier: in-process, synchronous, nothing to install. */
export class MemoryNotifier implements LongPollNotifier {
  private readonly bus: MemoryBus
  private member: BusMember | null = null
  /** Topics subscribed now. */
  private readonly topics = new Set<string>()
  /**
   * Topics unsubscribed less than presenceWindow ago → when their window ends. In insertion order, which is expiry
   * order (the window is one length): one sweeper timer drops them from the head, instead of a timer per
   * unsubscribe — a client that re-polls after every answer unsubscribes and resubscribes once per message.
   */
  private readonly lingering = new Map<string, number>()
  private sweeper: NodeJS.Timeout | null = null
  private presenceWindow = 2_000

  constructor (options: MemoryNotifierOptions = {}) {
    this.bus = options.bus ?? new MemoryBus()
  }

  start (handlers: NotifierHandlers): void {
    this.presenceWindow = handlers.presenceWindow ?? 2_000
    this.member = { handlers, subscribed: (key) => this.subscribed(key) }
    this.bus.add(this.member)
  }

  /** A lingering topic counts until the sweeper drops it, never before its window ended (as a timer would). */
  private subscribed (key: string): boolean {
    return this.topics.has(key) || this.lingering.has(key)
  }

  // Every event reaches every notifier on the bus, which ignores topics it holds nothing on (one Map lookup);
  // subscriptions only count receivers, for presence.
  subscribe (name: string, namespace: NotifierNamespace = 'channel'): void {
    const key = topic(name, namespace)
    this.lingering.delete(key)
    this.topics.add(key)
  }

  unsubscribe (name: string, namespace: NotifierNamespace = 'channel'): void {
    const key = topic(name, namespace)
    if (!this.topics.delete(key) || this.presenceWindow === 0) return // not subscribed (or already lingering)
    this.lingering.set(key, Date.now() + this.presenceWindow)
    this.sweeper ??= setTimeout(() => this.sweep(), this.presenceWindow).unref()
  }

  /** Drops the topics whose window has ended; runs again while some still linger. */
  private sweep (): void {
    const now = Date.now()
    for (const [key, until] of this.lingering) {
      if (until > now) break
      this.lingering.delete(key)
    }
    const next = this.lingering.values().next()
    if (next.done === true) this.sweeper = null
    else this.sweeper = setTimeout(() => this.sweep(), Math.max(1, next.value - now)).unref()
  }

  async publish (name: string, event: NotifierEvent, namespace: NotifierNamespace = 'channel'): Promise<number> {
    return this.bus.emit(name, event, namespace)
  }

  async online (channel: string): Promise<boolean> {
    return this.bus.receivers(channel) > 0
  }

  async close (): Promise<void> {
    if (this.member !== null) this.bus.remove(this.member)
    this.member = null
    if (this.sweeper !== null) clearTimeout(this.sweeper)
    this.sweeper = null
    this.topics.clear()
    this.lingering.clear()
  }
}
