import type { LongPollNotifier, NotifierEvent, NotifierHandlers, NotifierNamespace } from './types.js'

/** An in-process event bus that several MemoryNotifiers (one per Fastify instance) can share. */
export class MemoryBus {
  private readonly listeners = new Set<NotifierHandlers>()

  add (handlers: NotifierHandlers): void {
    this.listeners.add(handlers)
  }

  remove (handlers: NotifierHandlers): void {
    this.listeners.delete(handlers)
  }

  emit (name: string, event: NotifierEvent, namespace: NotifierNamespace = 'channel'): void {
    for (const listener of this.listeners) listener.event(name, event, namespace)
  }
}

export interface MemoryNotifierOptions {
  /** Share one bus between the notifiers of several Fastify instances in one process. Default: a bus of its own. */
  bus?: MemoryBus
}

/** The default notifier: in-process, synchronous, nothing to install. */
export class MemoryNotifier implements LongPollNotifier {
  private readonly bus: MemoryBus
  private handlers: NotifierHandlers | null = null

  constructor (options: MemoryNotifierOptions = {}) {
    this.bus = options.bus ?? new MemoryBus()
  }

  start (handlers: NotifierHandlers): void {
    this.handlers = handlers
    this.bus.add(handlers)
  }

  // Every event reaches every listener on the bus, which ignores channels it holds no poll on (one Map
  // lookup), so there is nothing to subscribe.
  subscribe (): void {}
  unsubscribe (): void {}

  async publish (name: string, event: NotifierEvent, namespace: NotifierNamespace = 'channel'): Promise<void> {
    this.bus.emit(name, event, namespace)
  }

  async close (): Promise<void> {
    if (this.handlers !== null) this.bus.remove(this.handlers)
    this.handlers = null
  }
}
