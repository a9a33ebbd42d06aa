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
 */
export interface LongPollNotifier {
  /** Called once, at registration, before any other method. */
  start (handlers: NotifierHandlers): Promise<void> | void
  /** Resolves once events published after this point are certain to be delivered. */
  subscribe (channel: string): Promise<void> | void
  unsubscribe (channel: string): Promise<void> | void
  publish (channel: string, event: ChannelEvent): Promise<void>
  /** Releases what the notifier owns. Called by the plugin on `app.close()`. */
  close (): Promise<void>
}
