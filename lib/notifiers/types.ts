/** What a notifier carries: a message was appended to a channel, or the channel was disconnected. */
export type ChannelEvent =
  | { type: 'message', epoch: string, seq: number }
  | { type: 'disconnect' }

export interface NotifierHandlers {
  /** An event on a channel this process subscribed to. Called once per event per process, never per poll. */
  event (channel: string, event: ChannelEvent): void
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
 * What wakes held polls. The plugin subscribes a channel when its first poll is held and unsubscribes it after
 * the last one leaves; events reach `handlers.event` once per process however many polls it holds.
 *
 * Presence (`online` in push answers, `app.longpoll.online`): a notifier that knows how many instances are
 * subscribed to a channel — a broker's own subscriber count — resolves `publish` with it and may implement
 * `online`. A subscription counts from the moment `subscribe` resolved until `presenceWindow` ms after
 * `unsubscribe`. A notifier that resolves `publish` with nothing gets presence from this instance alone.
 */
export interface LongPollNotifier {
  /** Called once, at registration, before any other method. */
  start (handlers: NotifierHandlers): Promise<void> | void
  /** Resolves once events published after this point are certain to be delivered. */
  subscribe (channel: string): Promise<void> | void
  unsubscribe (channel: string): Promise<void> | void
  /** Resolves once sent: with the number of instances subscribed to the channel that receive it, if known. */
  publish (channel: string, event: ChannelEvent): Promise<number | void>
  /** Whether some instance is subscribed to the channel now (held polls, or within `presenceWindow`). Optional. */
  online? (channel: string): Promise<boolean>
  /** Releases what the notifier owns. Called by the plugin on `app.close()`. */
  close (): Promise<void>
}
