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
  /** Subscribed topics: null while subscribed, a timer while lingering for presenceWindow after unsubscribe. */
  private readonly topics = new Map<string, NodeJS.Timeout | null>()
  private presenceWindow = 2_000

  constructor (options: MemoryNotifierOptions = {}) {
    this.bus = options.bus ?? new MemoryBus()
  }

  start (handlers: NotifierHandlers): void {
    this.presenceWindow = handlers.presenceWindow ?? 2_000
    this.member = { handlers, subscribed: (key) => this.topics.has(key) }
    this.bus.add(this.member)
  }

  // Every event reaches every notifier on the bus, which ignores topics it holds nothing on (one Map lookup);
  // subscriptions only count receivers, for presence.
  subscribe (name: string, namespace: NotifierNamespace = 'channel'): void {
    const key = topic(name, namespace)
    const linger = this.topics.get(key)
    if (linger != null) clearTimeout(linger)
    this.topics.set(key, null)
  }

  unsubscribe (name: string, namespace: NotifierNamespace = 'channel'): void {
    const key = topic(name, namespace)
    if (this.topics.get(key) !== null) return // not subscribed, or already lingering
    if (this.presenceWindow === 0) {
      this.topics.delete(key)
      return
    }
    this.topics.set(key, setTimeout(() => this.topics.delete(key), this.presenceWindow).unref())
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
    for (const linger of this.topics.values()) if (linger !== null) clearTimeout(linger)
    this.topics.clear()
  }
}
