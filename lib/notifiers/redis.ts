// Type-only: ioredis is an optional peer dependency, so this module must load without it installed.
import type { Cluster, Redis } from 'ioredis'
import { errors } from '../errors.js'
import { checkClient, withTimeout, type RedisClient } from '../redis/client.js'
import { channelTopic, checkPrefix, parseTopic, queueTopic } from '../redis/keys.js'
import type { LongPollNotifier, NotifierEvent, NotifierHandlers, NotifierLogger, NotifierNamespace } from './types.js'

/** Where the notifier reports Redis trouble: `app.log` fits. */
export type RedisNotifierLogger = NotifierLogger

export interface RedisNotifierOptions {
  /**
   * Your ioredis client (`Redis` or `Cluster`): it publishes, and the notifier `duplicate()`s it once for its
   * subscriber connection, which it owns and closes. Your client is never closed. On a Cluster the duplicate
   * uses sharded pub/sub (SSUBSCRIBE/SPUBLISH, Redis 7), so an event only travels within its channel's shard.
   */
  redis: RedisClient
  /** Prefix of the pub/sub channels; use the same as the store's. Default `longpoll:`. */
  prefix?: string
  /** Milliseconds `publish` may take before it rejects (default 5000); the event may still be delivered later. */
  commandTimeout?: number
  /** Reports connection loss and recovery, once per incident. Default: the app's logger (`app.log`). */
  log?: RedisNotifierLogger
}

interface Subscription {
  /** Resolves once Redis acknowledged the SUBSCRIBE. */
  ready: Promise<void>
  /** Set while the channel has no poll left and waits `presenceWindow` to be unsubscribed. */
  linger: NodeJS.Timeout | null
}

const silent: RedisNotifierLogger = { error () {}, warn () {}, info () {} }
/** SUBSCRIBE takes many channels at once; bound the size of one command when re-subscribing thousands. */
const RESUBSCRIBE_BATCH = 1000

/*
 * Why a channel stays subscribed for the plugin's `presenceWindow` (default 2000 ms) after its last poll
 * leaves: (1) presence — Redis's own subscriber count (the reply of PUBLISH/SPUBLISH, PUBSUB NUMSUB/SHARDNUMSUB)
 * is the number of instances holding a poll on the channel or having answered one within the window, so a
 * push learns whether its receiver is online without a round trip per held poll; (2) cost — a client that
 * re-polls after every answer leaves its channel with no poll for about one round trip per message; without
 * the window that costs an UNSUBSCRIBE and a SUBSCRIBE per message per instance — twice the commands of the
 * append itself (test/redis-commands.test.ts measures 1 EVALSHA + 1 PUBLISH per push) — and the next poll
 * waits one more round trip for its SUBSCRIBE before it may read. The window costs at most one extra event per
 * push for a channel nobody polls any more (the hub drops it with one Map lookup).
 *
 * Events are a few bytes (see encode); the hub reads the store itself, once for all its polls.
 */
export class RedisNotifier implements LongPollNotifier {
  readonly prefix: string
  private readonly redis: Redis | Cluster
  /** The plugin's presenceWindow, given at start(). */
  private presenceWindow = 2_000
  private readonly commandTimeout: number
  private log: RedisNotifierLogger
  private readonly configuredLog: RedisNotifierLogger | undefined
  private readonly sharded: boolean
  private subscriber: Redis | Cluster | null = null
  private handlers: NotifierHandlers | null = null
  private readonly subscriptions = new Map<string, Subscription>()
  /** The subscriber was connected once, so a later 'ready' is a reconnection: events may have been missed. */
  private connectedOnce = false
  /** The subscriber client reached 'ready' once (on a Cluster, 'ready' and 'subscribersReady' are separate). */
  private wasReady = false
  /** An incident is being reported: log its first error only. */
  private failing = false
  private closed = false
  private readonly listeners: Array<[string, (...args: any[]) => void]> = []

  constructor (options: RedisNotifierOptions) {
    if (options === null || typeof options !== 'object') throw new errors.InvalidOption('RedisNotifier', 'expects { redis }')
    checkClient(options.redis, 'RedisNotifier')
    this.redis = options.redis as Redis | Cluster
    this.prefix = checkPrefix(options.prefix)
    // `linger` became the plugin's `presenceWindow`: say so instead of ignoring it.
    if ((options as { linger?: unknown }).linger !== undefined) throw new errors.InvalidOption('linger', 'is now the plugin option presenceWindow')
    this.commandTimeout = nonNegative(options.commandTimeout ?? 5_000, 'commandTimeout')
    this.configuredLog = options.log
    this.log = options.log ?? silent
    this.sharded = (this.redis as Cluster).isCluster === true
  }

  start (handlers: NotifierHandlers): void {
    if (this.subscriber !== null) throw new Error('RedisNotifier.start() was called twice: use one notifier per app')
    this.handlers = handlers
    this.presenceWindow = nonNegative(handlers.presenceWindow ?? 2_000, 'presenceWindow')
    this.log = this.configuredLog ?? handlers.log ?? silent
    // Our own connection, with the options this code relies on whatever the user's client says: commands
    // queue while it reconnects; a SUBSCRIBE caught in flight by a drop is re-sent, so its promise settles
    // (with autoResendUnfulfilledCommands off, ioredis would leave it pending forever, and every poll of
    // that channel would wait for its timeout); and it re-subscribes under our control (see onReady). On a
    // Cluster, no retry of a (S)SUBSCRIBE or SUNSUBSCRIBE that met a closed connection: ioredis re-dispatches a
    // retried one up to 16 times over 1.6 s, appending to its re-subscribe list at each try (see resubscribe),
    // and a retried SUNSUBSCRIBE could land after a newer SSUBSCRIBE of the same channel and silently undo it.
    // Sent once each, they reach a shard connection in the order they were called; a refused one fails the
    // poll (503) at once, and a failed re-subscription waits for the next 'subscribersReady'.
    const subscriber = this.sharded
      ? (this.redis as Cluster).duplicate([], { shardedSubscribers: true, enableOfflineQueue: true, retryDelayOnFailover: 0 })
      : (this.redis as Redis).duplicate({ enableOfflineQueue: true, autoResendUnfulfilledCommands: true, autoResubscribe: false, lazyConnect: false })
    this.subscriber = subscriber
    const on = (event: string, listener: (...args: any[]) => void): void => {
      subscriber.on(event, listener)
      this.listeners.push([event, listener])
    }
    on(this.sharded ? 'smessage' : 'message', (channel: string, payload: string) => this.onMessage(channel, payload))
    on('error', (err: Error) => this.onError(err))
    on('node error', (err: Error) => this.onError(err))
    on('ready', () => { this.wasReady = true })
    if (this.sharded) {
      // ioredis re-creates the shard subscribers after a topology change or a lost node, re-sends SSUBSCRIBE
      // without waiting for the acknowledgements, then emits 'subscribersReady'.
      on('subscribersReady', () => this.onReady())
      on('-node', () => this.onDrop())
    } else {
      on('ready', () => this.onReady())
      on('close', () => this.onDrop())
    }
  }

  /** Resolves once Redis acknowledged the subscription: from then on, every event published reaches us. */
  async subscribe (channel: string, namespace: NotifierNamespace = 'channel'): Promise<void> {
    const subscriber = this.running()
    const name = this.name(channel, namespace)
    const existing = this.subscriptions.get(name)
    if (existing !== undefined) {
      if (existing.linger !== null) clearTimeout(existing.linger)
      existing.linger = null
      return existing.ready
    }
    // While the connection is down after having been up, fail at once: the poll answers 503 with Retry-After
    // instead of holding a socket until its timeout. (Before the first connection, SUBSCRIBE waits in the
    // offline queue: the app may take polls while it connects.) Channels already subscribed keep their held
    // polls; the resync after reconnecting re-checks them.
    if (this.wasReady && subscriber.status !== 'ready') throw new Error(`the Redis subscriber connection is ${subscriber.status}`)
    const subscription: Subscription = { ready: Promise.resolve(), linger: null }
    subscription.ready = this.connected(subscriber).then(() => this.send(subscriber, [name])).catch((err: unknown) => {
      if (this.subscriptions.get(name) === subscription) {
        this.subscriptions.delete(name)
        // A SUBSCRIBE that failed may still have reached Redis (its reply lost with the connection), and on a
        // Cluster ioredis appended the channel to its re-subscribe list at every retry (see resend): without
        // this, every poll refused during a node's outage would leave a few entries there for good.
        if (this.subscriber === subscriber) this.unsubscribeName(subscriber, name)
      }
      throw err
    })
    this.subscriptions.set(name, subscription)
    return subscription.ready
  }

  unsubscribe (channel: string, namespace: NotifierNamespace = 'channel'): void {
    const name = this.name(channel, namespace)
    const subscription = this.subscriptions.get(name)
    if (subscription === undefined || subscription.linger !== null || this.subscriber === null) return
    const drop = (): void => {
      this.subscriptions.delete(name)
      const subscriber = this.subscriber
      if (subscriber === null) return
      const done = this.sharded ? (subscriber as Cluster).sunsubscribe(name) : subscriber.unsubscribe(name)
      done.catch((err: unknown) => this.onError(err as Error))
    }
    if (this.presenceWindow === 0) return drop()
    subscription.linger = setTimeout(drop, this.presenceWindow).unref()
  }

  /** Resolves with the number of instances that received the event: Redis's own count of subscribers. */
  async publish (channel: string, event: NotifierEvent, namespace: NotifierNamespace = 'channel'): Promise<number> {
    this.running()
    const name = this.name(channel, namespace)
    const payload = encode(event)
    // Not failed fast like the store's append: a late event is harmless (a wake-up only makes polls re-read
    // the store), and one that waits out a short reconnect in the offline queue wakes polls that would
    // otherwise sleep until their timeout.
    const sent = this.sharded ? (this.redis as Cluster).spublish(name, payload) : this.redis.publish(name, payload)
    return Number(await withTimeout(sent, this.commandTimeout, 'publish'))
  }

  /**
   * Whether some instance is subscribed to the channel: PUBSUB NUMSUB, or on a Cluster PUBSUB SHARDNUMSUB on
   * every master (a query, not a hot path: only the channel's shard counts it, the others answer 0).
   */
  async online (channel: string): Promise<boolean> {
    this.running()
    const name = this.name(channel, 'channel')
    if (!this.sharded) {
      const reply = await withTimeout(this.redis.pubsub('NUMSUB', name) as Promise<unknown[]>, this.commandTimeout, 'PUBSUB NUMSUB')
      return Number(reply[1]) > 0
    }
    const replies = await withTimeout(Promise.all((this.redis as Cluster).nodes('master').map((node) => node.call('PUBSUB', 'SHARDNUMSUB', name) as Promise<unknown[]>)), this.commandTimeout, 'PUBSUB SHARDNUMSUB')
    return replies.some((reply) => Number(reply[1]) > 0)
  }

  /** Quits the subscriber connection and removes every listener; the user's client is left alone. */
  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    for (const subscription of this.subscriptions.values()) {
      if (subscription.linger !== null) clearTimeout(subscription.linger)
    }
    this.subscriptions.clear()
    this.handlers = null
    const subscriber = this.subscriber
    if (subscriber === null) return
    this.subscriber = null
    for (const [event, listener] of this.listeners) subscriber.removeListener(event, listener)
    this.listeners.length = 0
    // A late error from the closing connection must not become an unhandled 'error' event.
    subscriber.on('error', () => {})
    if (subscriber.status === 'ready') {
      await Promise.race([subscriber.quit().catch(() => {}), new Promise((resolve) => setTimeout(resolve, 1_000).unref())])
    }
    if (subscriber.status !== 'end') subscriber.disconnect()
  }

  private running (): Redis | Cluster {
    if (this.subscriber === null) throw new Error(this.closed ? 'the RedisNotifier is closed' : 'RedisNotifier.start() was not called')
    return this.subscriber
  }

  private name (name: string, namespace: NotifierNamespace): string {
    // The hash tag puts a channel's (or a queue's) events in the slot of its keys: on a Cluster, one shard
    // carries both. A queue's topic is `<prefix>q:{Q}`, a channel's `<prefix>{C}`: never the same.
    return namespace === 'queue' ? queueTopic(this.prefix, name) : channelTopic(this.prefix, name)
  }

  /**
   * Before the first connection, wait for it: ioredis would send a SUBSCRIBE during its ready check, which puts
   * the connection in subscriber mode, fails the check (INFO is refused there) and reconnects — and since the
   * notifier has not seen 'ready' yet, nothing would re-subscribe. (A Cluster's shard subscribers have no
   * ready check.)
   */
  private async connected (subscriber: Redis | Cluster): Promise<void> {
    if (this.sharded || subscriber.status === 'ready') return
    await new Promise<void>((resolve, reject) => {
      const ready = (): void => { subscriber.removeListener('end', end); resolve() }
      const end = (): void => { subscriber.removeListener('ready', ready); reject(new Error('the Redis subscriber connection ended')) }
      subscriber.once('ready', ready)
      subscriber.once('end', end)
    })
  }

  private async send (subscriber: Redis | Cluster, names: string[]): Promise<void> {
    if (this.sharded) {
      // SSUBSCRIBE takes channels of one slot only: one command per channel.
      await Promise.all(names.map((name) => (subscriber as Cluster).ssubscribe(name)))
    } else {
      await subscriber.subscribe(...names)
    }
  }

  private onMessage (name: string, payload: string): void {
    const topic = this.handlers === null ? null : parseTopic(this.prefix, name)
    const event = topic === null ? null : decode(payload)
    if (topic === null || event === null || this.handlers === null) return
    const channel = topic.name
    // We are called from ioredis's socket handler: a throw here would be an uncaught exception.
    try {
      this.handlers.event(channel, event, topic.namespace)
    } catch (err) {
      this.log.error({ err, channel }, 'fastify-longpoll: a notifier event handler threw')
    }
  }

  private onDrop (): void {
    if (!this.connectedOnce || this.closed || this.failing) return
    this.failing = true
    this.log.warn({}, 'fastify-longpoll: the Redis subscriber lost its connection; held polls keep waiting and re-check the store once it is back')
  }

  private onError (err: Error): void {
    if (this.closed || this.failing) return
    this.failing = true
    this.log.error({ err }, 'fastify-longpoll: Redis subscriber error')
  }

  /**
   * The subscriber is connected. After a reconnection, events published meanwhile are lost: re-subscribe every
   * channel, and only once Redis has acknowledged it, ask every held poll to re-check the store. In that order
   * a push cannot fall between the re-check and the subscription.
   */
  private onReady (): void {
    if (this.closed) return
    if (!this.connectedOnce) {
      this.connectedOnce = true
      return
    }
    const subscriber = this.subscriber
    if (subscriber === null) return
    const names = [...this.subscriptions.keys()]
    const batches: Array<Promise<void>> = []
    for (let i = 0; i < names.length; i += RESUBSCRIBE_BATCH) batches.push(this.resubscribe(subscriber, names.slice(i, i + RESUBSCRIBE_BATCH)))
    Promise.all(batches).then(() => {
      if (this.closed) return
      if (this.failing) this.log.info({ channels: names.length }, 'fastify-longpoll: the Redis subscriber is back; held polls re-check the store')
      this.failing = false
      this.handlers?.resync()
    }, (err: unknown) => {
      // The connection dropped again; its next 'ready' retries.
      this.onError(err as Error)
    })
  }

  /**
   * On a Cluster, SUNSUBSCRIBE before SSUBSCRIBE. ioredis (5.x) keeps the shard-subscribed channels in a list per
   * slot (ClusterSubscriberGroup.channels, re-sent by ioredis itself after each reset of its shard subscribers)
   * that every SSUBSCRIBE sent through the Cluster appends to, duplicates included, and SUNSUBSCRIBE removes
   * every entry of its channel from. While a master is down ioredis resets its subscribers, and emits
   * 'subscribersReady', after every slots refresh (about every 100 ms): re-sending SSUBSCRIBE alone grew the list
   * by the number of channels each time (50 channels, a 5 s outage: 41,010 entries). With the pair, each round
   * leaves each channel in it once. We send our own SSUBSCRIBE rather than rely on ioredis's re-send because only
   * ours has a reply to wait for before the resync. The pair goes out back to back on one connection; an event
   * published between the two is missed, and the resync that follows the round reads the store for it.
   */
  private async resubscribe (subscriber: Redis | Cluster, names: string[]): Promise<void> {
    if (this.sharded) {
      for (const name of names) this.unsubscribeName(subscriber, name)
    }
    await this.send(subscriber, names)
  }

  /** An UNSUBSCRIBE whose outcome nobody waits for: a failure is the connection's, reported by its events. */
  private unsubscribeName (subscriber: Redis | Cluster, name: string): void {
    const done = this.sharded ? (subscriber as Cluster).sunsubscribe(name) : subscriber.unsubscribe(name)
    done.catch(() => {})
  }
}

/** Events are a few bytes: `m:<epoch>.<seq>`, `d` (channels); `j:<count>`, `t:<ms>` (queues). */
function encode (event: NotifierEvent): string {
  switch (event.type) {
    case 'message': return `m:${event.epoch}.${event.seq}`
    case 'disconnect': return 'd'
    case 'jobs': return `j:${event.count}`
    case 'due': return `t:${event.in}`
  }
}

/** Anything else on our pub/sub channels (another app's or another version's messages) decodes to null: dropped. */
function decode (payload: string): NotifierEvent | null {
  if (payload === 'd') return { type: 'disconnect' }
  const value = payload.slice(2)
  if (payload.startsWith('m:')) {
    const dot = value.lastIndexOf('.')
    const seq = dot < 0 ? null : count(value.slice(dot + 1))
    return seq === null ? null : { type: 'message', epoch: value.slice(0, dot), seq }
  }
  const n = count(value)
  if (n === null) return null
  if (payload.startsWith('j:')) return { type: 'jobs', count: n }
  if (payload.startsWith('t:')) return { type: 'due', in: n }
  return null
}

/** A non-negative integer written by encode, or null (`Number('')` would be 0, `Number('1e3')` 1000). */
function count (text: string): number | null {
  const n = /^\d{1,16}$/.test(text) ? Number(text) : NaN
  return Number.isSafeInteger(n) ? n : null
}

function nonNegative (value: number, name: string): number {
  if (!Number.isSafeInteger(value) || value < 0) throw new errors.InvalidOption(name, 'must be an integer >= 0 (milliseconds)')
  return value
}
