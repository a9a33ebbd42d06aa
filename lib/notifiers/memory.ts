import type { ChannelEvent, LongPollNotifier, NotifierHandlers } from './types.js'

/** What a bus knows of each notifier on it: where its events go, and which channels it is subscribed to. */
interface BusMember {
  handlers: NotifierHandlers
  subscribed (channel: string): boolean
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

  /** Delivers the event to every notifier on the bus; returns how many are subscribed to the channel. */
  emit (channel: string, event: ChannelEvent): number {
    let receivers = 0
    for (const member of this.members) {
      if (member.subscribed(channel)) receivers++
      member.handlers.event(channel, event)
    }
    return receivers
  }

  /** How many notifiers on the bus are subscribed to the channel. */
  receivers (channel: string): number {
    let receivers = 0
    for (const member of this.members) if (member.subscribed(channel)) receivers++
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
  /** Subscribed channels: null while subscribed, a timer while lingering for presenceWindow after unsubscribe. */
  private readonly channels = new Map<string, NodeJS.Timeout | null>()
  private presenceWindow = 2_000

  constructor (options: MemoryNotifierOptions = {}) {
    this.bus = options.bus ?? new MemoryBus()
  }

  start (handlers: NotifierHandlers): void {
    this.presenceWindow = handlers.presenceWindow ?? 2_000
    this.member = { handlers, subscribed: (channel) => this.channels.has(channel) }
    this.bus.add(this.member)
  }

  // Every event reaches every notifier on the bus, which ignores channels it holds no poll on (one Map lookup);
  // subscriptions only count receivers, for presence.
  subscribe (channel: string): void {
    const linger = this.channels.get(channel)
    if (linger != null) clearTimeout(linger)
    this.channels.set(channel, null)
  }

  unsubscribe (channel: string): void {
    if (this.channels.get(channel) !== null) return // not subscribed, or already lingering
    if (this.presenceWindow === 0) {
      this.channels.delete(channel)
      return
    }
    this.channels.set(channel, setTimeout(() => this.channels.delete(channel), this.presenceWindow).unref())
  }

  async publish (channel: string, event: ChannelEvent): Promise<number> {
    return this.bus.emit(channel, event)
  }

  async online (channel: string): Promise<boolean> {
    return this.bus.receivers(channel) > 0
  }

  async close (): Promise<void> {
    if (this.member !== null) this.bus.remove(this.member)
    this.member = null
    for (const linger of this.channels.values()) if (linger !== null) clearTimeout(linger)
    this.channels.clear()
  }
}
