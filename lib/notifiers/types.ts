/** What a notifier carries: a message was appended to a channel, or the channel was disconnected. */
export type ChannelEvent =
  | { type: 'message', epoch: string, seq: number }
  | { type: 'disconnect' }

/**
 * What a notifier carries for a queue: `count` jobs became available now (enqueued, nacked, dead letters
 * retried), or a job becomes available in `in` ms (enqueued or nacked with a delay).
 */
export type QueueEvent =
  | { type: 'jobs', count: number }
  | { type: 'due', in: number }

/**
 * Topics live in namespaces: `'channel'` (the default, for channel events) and `'queue'` (queue wake-ups).
 * The same name in two namespaces is two independent topics — a channel "x" and a queue "x" never share a
 * subscription, and unsubscribing one leaves the other subscribed. A notifier keeps them apart however it
 * likes (RedisNotifier: `<prefix>{x}` and `<prefix>q:{x}`), and hands every event back with its namespace.
 */
export type NotifierNamespace = 'channel' | 'queue'

export type NotifierEvent = ChannelEvent | QueueEvent

export interface NotifierHandlers {
  /**
   * An event on a topic this process subscribed to. Called once per event per process, never per poll.
   * `namespace` is the one it was published under; notifiers written before queues existed omit it, which
   * means `'channel'`.
   */
  event (name: string, event: NotifierEvent, namespace?: NotifierNamespace): void
  /**
   * Events may have been missed (the connection to the broker was lost and is back): every held poll must
   * re-check the store.
   */
  resync (): void
  /** The app's logger (`app.log`), for notifiers that report broker trouble. */
  log?: NotifierLogger
  /**
   * The plugin's `presenceWindow` (ms): keep a channel subscribed this long after `unsubscribe`, so that a client
   * between two polls still counts as a receiver (and re-polling costs no SUBSCRIBE/UNSUBSCRIBE). Default 2000.
   */
  presenceWindow?: number
}

/** The subset of a pino logger a notifier may use. */
export interface NotifierLogger {
  info (obj: object, msg: string): void
  warn (obj: object, msg: string): void
  error (obj: object, msg: string): void
}

/**
 * What wakes held polls and held claims. The plugin subscribes a channel when its first poll is held and
 * unsubscribes it after the last one leaves (and a queue likewise for claims); events reach `handlers.event`
 * once per process however many polls or claims it holds. Names are namespaced (see NotifierNamespace).
 *
 * Presence (`online` in push answers, `app.longpoll.online`): a notifier that knows how many instances are
 * subscribed to a channel — a broker's own subscriber count — resolves `publish` with it and may implement
 * `online`. A subscription counts from the moment `subscribe` resolved until `presenceWindow` ms after
 * `unsubscribe`. A notifier that resolves `publish` with nothing gets presence from this instance alone.
 */
export interface LongPollNotifier {
  /** Called once, at registration, before any other method. */
  start (handlers: NotifierHandlers): Promise<void> | void
  /**
   * Resolves once events published after this point are certain to be delivered. `namespace` defaults to
   * `'channel'`; the plugin subscribes a queue (`'queue'`) while it holds claims on it.
   */
  subscribe (name: string, namespace?: NotifierNamespace): Promise<void> | void
  unsubscribe (name: string, namespace?: NotifierNamespace): Promise<void> | void
  /**
   * Channel events are published in `'channel'` (the default), queue events in `'queue'`. Resolves once sent:
   * with the number of instances subscribed to the topic that receive it, if the notifier knows (presence).
   */
  publish (name: string, event: NotifierEvent, namespace?: NotifierNamespace): Promise<number | void>
  /** Whether some instance is subscribed to the channel now (held polls, or within `presenceWindow`). Optional. */
  online? (channel: string): Promise<boolean>
  /** Releases what the notifier owns. Called by the plugin on `app.close()`. */
  close (): Promise<void>
}
