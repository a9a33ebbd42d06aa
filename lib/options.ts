import type { FastifyRequest } from 'fastify'
import { errors } from './errors.js'
import { MemoryStore } from './stores/memory.js'
import { MemoryNotifier } from './notifiers/memory.js'
import type { LongPollStore } from './stores/types.js'
import type { LongPollNotifier } from './notifiers/types.js'
import { MemoryQueueStore } from './queues/memory.js'
import type { LongPollQueueStore } from './queues/types.js'
import { normalizeMetrics, type MetricsOptions, type NormalizedMetrics } from './metrics.js'
import { ClientLimit, type ClientKey } from './client-limit.js'

export type LongPollAction = 'poll' | 'push' | 'disconnect' | 'enqueue' | 'claim' | 'settle'

export interface AuthorizeContext {
  action: LongPollAction
  /** The channel polled, pushed or disconnected; for a queue action, the queue's name too. */
  channel: string
  /** The queue, for `enqueue`, `claim` (also asked for `GET /queues/:queue`) and `settle` (ack, nack, extend). */
  queue?: string
}

/** Return `true` to allow; anything else answers 403. A thrown error answers 500 (or its own statusCode). */
export type Authorize = (request: FastifyRequest, context: AuthorizeContext) => boolean | Promise<boolean>

export interface LongPollOptions {
  /** Route prefix, e.g. `/lp` gives `/lp/poll`, `/lp/push`, `/lp/disconnect`. Default: none. */
  prefix?: string
  /** Where messages live. Default: `new MemoryStore()`. The plugin closes it on `app.close()`. */
  store?: LongPollStore
  /** What wakes held polls. Default: `new MemoryNotifier()`. The plugin closes it on `app.close()`. */
  notifier?: LongPollNotifier
  /** Milliseconds a poll is held when it gives no `timeout`. Default 25000, under the 30 s many proxies allow before the first byte (or `maxTimeout`, if smaller). */
  timeout?: number
  /** Upper bound for a poll's `timeout`; larger values are clamped. Default 60000. */
  maxTimeout?: number
  /** Most messages in one answer, and the upper bound of `limit`. Default 100. */
  maxBatch?: number
  /** Most channels one poll may follow (`channel` repeated). Default 100. */
  maxChannels?: number
  /** Messages retained per channel. Default 1000. */
  maxMessages?: number
  /** Milliseconds a message is retained. Default 3600000 (one hour). */
  messageTtl?: number
  /** Largest message, as the bytes of its JSON `data`. Default 65536. */
  maxMessageBytes?: number
  /** Polls this instance holds at most; past it, polls answer 503 with `Retry-After`. Default 50000. */
  maxHeldPolls?: number
  /** Seconds sent in `Retry-After` with 503 answers. Default 1. */
  retryAfter?: number
  /** What a channel name must match. Default `/^[A-Za-z0-9._:@-]{1,200}$/`. No flags. */
  channelPattern?: RegExp | string
  /** Called before every poll, push, disconnect and queue action (sync or async). */
  authorize?: Authorize
  /** Where queue jobs live. Default: `new MemoryQueueStore()`. The plugin closes it on `app.close()`. */
  queueStore?: LongPollQueueStore
  /** Milliseconds a claimed job is the worker's alone when its claim gives no `lease`. Default 30000. */
  lease?: number
  /** Upper bound for a claim's or an extend's `lease`; larger values are clamped. Default 600000. */
  maxLease?: number
  /** Leases a job may have; one more passing (or a nack on the last) moves it to the dead letters. Default 5. */
  maxAttempts?: number
  /**
   * Which HTTP routes to register; a route left out of a partial object stays on. Default: all on. A route
   * turned off answers 404; `app.longpoll` still does everything. E.g. `{ push: false }` for server-only publishing.
   */
  routes?: LongPollRoutes
  /**
   * Milliseconds a channel counts as online after its last poll was answered (a client between two polls is
   * still online), and its notifier subscription is kept. Default 2000.
   */
  presenceWindow?: number
  /** Milliseconds an idempotency key (a push's, or a job's de-duplicating `key`) is remembered. Default 300000. */
  idempotencyTtl?: number
  /** Most messages in one `app.longpoll.pushMany` batch; a larger batch throws FST_LONGPOLL_BAD_BATCH. Default 1000. */
  maxPushMany?: number
  /**
   * Prometheus metrics through prom-client (an optional peer dependency: install it). `true` registers them in
   * prom-client's global registry, which fastify-metrics exposes; `{ registry, prefix }` chooses. Default off.
   */
  metrics?: boolean | MetricsOptions
  /**
   * Polls (and queue claims) one client may hold on this instance; past it, 429 with `Retry-After`. Default: no
   * limit. Clients are told apart by `clientKey`.
   */
  maxHeldPollsPerClient?: number
  /**
   * Names a request's client for `maxHeldPollsPerClient`. Default `request.ip` — behind a proxy, set Fastify's
   * `trustProxy` (or pass your own, e.g. a user id), or every client shares the proxy's address.
   */
  clientKey?: ClientKey
}

export interface LongPollRoutes {
  /** `GET /poll`. Default true. */
  poll?: boolean
  /** `POST /push`. Default true. */
  push?: boolean
  /** `DELETE /disconnect`. Default true. */
  disconnect?: boolean
  /** The work-queue routes under `/queues/`. Default true. */
  queues?: boolean
}

export type RouteName = keyof LongPollRoutes

export interface NormalizedOptions {
  prefix: string
  store: LongPollStore
  notifier: LongPollNotifier
  timeout: number
  maxTimeout: number
  maxBatch: number
  maxChannels: number
  maxMessages: number
  messageTtl: number
  maxMessageBytes: number
  maxHeldPolls: number
  retryAfter: number
  channelPattern: RegExp
  authorize: Authorize | null
  queueStore: LongPollQueueStore
  lease: number
  maxLease: number
  maxAttempts: number
  routes: Required<LongPollRoutes>
  idempotencyTtl: number
  maxPushMany: number
  presenceWindow: number
  metrics: NormalizedMetrics
  /** `maxHeldPollsPerClient` and `clientKey`; null without a limit. */
  clientLimit: ClientLimit | null
}

export const DEFAULT_CHANNEL_PATTERN = /^[A-Za-z0-9._:@-]{1,200}$/

// Fastify's own register options arrive in the same object as ours.
const FASTIFY_REGISTER_OPTIONS = new Set(['prefix', 'logLevel', 'logSerializers'])
const KNOWN = new Set([
  'store', 'notifier', 'timeout', 'maxTimeout', 'maxBatch', 'maxChannels', 'maxMessages', 'messageTtl', 'maxMessageBytes',
  'maxHeldPolls', 'retryAfter', 'channelPattern', 'authorize', 'routes', 'idempotencyTtl', 'presenceWindow', 'metrics', 'maxHeldPollsPerClient', 'clientKey',
  'maxPushMany', 'queueStore', 'lease', 'maxLease', 'maxAttempts'
])
const ROUTES: RouteName[] = ['poll', 'push', 'disconnect', 'queues']

export function normalizeOptions (options: LongPollOptions): NormalizedOptions {
  if (options === null || typeof options !== 'object') throw new errors.InvalidOption('options', 'must be an object')
  for (const key of Object.keys(options)) {
    if (!KNOWN.has(key) && !FASTIFY_REGISTER_OPTIONS.has(key)) throw new errors.InvalidOption(key, 'is not an option of fastify-longpoll')
  }
  const maxTimeout = integer(options, 'maxTimeout', 60_000, 1)
  // setTimeout treats a delay above 2^31-1 ms (about 24.8 days) as 1 ms.
  if (maxTimeout > 2_147_483_647) throw new errors.InvalidOption('maxTimeout', `must not exceed 2147483647 (ms), got ${maxTimeout}`)
  // The default hold fits under a smaller maxTimeout; only an explicit timeout above it is an error.
  const timeout = integer(options, 'timeout', Math.min(25_000, maxTimeout), 0)
  if (timeout > maxTimeout) throw new errors.InvalidOption('timeout', `must not exceed maxTimeout (${maxTimeout})`)
  const maxLease = integer(options, 'maxLease', 600_000, 1)
  if (maxLease > 2_147_483_647) throw new errors.InvalidOption('maxLease', `must not exceed 2147483647 (ms), got ${maxLease}`)
  const lease = integer(options, 'lease', Math.min(30_000, maxLease), 1)
  if (lease > maxLease) throw new errors.InvalidOption('lease', `must not exceed maxLease (${maxLease})`)
  return {
    prefix: prefix(options.prefix),
    store: implementation(options, 'store', ['append', 'read', 'delete', 'close']) ?? new MemoryStore(),
    notifier: implementation(options, 'notifier', ['start', 'subscribe', 'unsubscribe', 'publish', 'close']) ?? new MemoryNotifier(),
    timeout,
    maxTimeout,
    maxBatch: integer(options, 'maxBatch', 100, 1),
    maxChannels: integer(options, 'maxChannels', 100, 1),
    maxMessages: integer(options, 'maxMessages', 1000, 1),
    messageTtl: integer(options, 'messageTtl', 3_600_000, 1),
    maxMessageBytes: integer(options, 'maxMessageBytes', 65_536, 1),
    maxHeldPolls: integer(options, 'maxHeldPolls', 50_000, 0),
    retryAfter: integer(options, 'retryAfter', 1, 0),
    channelPattern: channelPattern(options.channelPattern),
    authorize: authorizeHook(options.authorize),
    queueStore: implementation(options, 'queueStore', ['enqueue', 'claim', 'ack', 'nack', 'extend', 'counts', 'dead', 'retryDead', 'close']) ?? new MemoryQueueStore(),
    lease,
    maxLease,
    maxAttempts: integer(options, 'maxAttempts', 5, 1),
    routes: routes(options.routes),
    idempotencyTtl: integer(options, 'idempotencyTtl', 300_000, 1),
    maxPushMany: integer(options, 'maxPushMany', 1000, 1),
    presenceWindow: integer(options, 'presenceWindow', 2_000, 0),
    metrics: normalizeMetrics(options.metrics),
    clientLimit: clientLimit(options)
  }
}

function integer (options: LongPollOptions, name: keyof LongPollOptions, fallback: number, min: number): number {
  const value = options[name]
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
    throw new errors.InvalidOption(name, `must be an integer >= ${min}, got ${String(value)}`)
  }
  return value
}

function prefix (value: unknown): string {
  if (value === undefined) return ''
  if (typeof value !== 'string' || (value !== '' && !value.startsWith('/'))) throw new errors.InvalidOption('prefix', 'must be a string starting with "/"')
  return value.endsWith('/') ? value.slice(0, -1) : value
}

function implementation<K extends 'store' | 'notifier' | 'queueStore'> (options: LongPollOptions, name: K, methods: string[]): LongPollOptions[K] | undefined {
  const value = options[name]
  if (value === undefined) return undefined
  const missing = methods.filter((method) => typeof (value as unknown as Record<string, unknown>)?.[method] !== 'function')
  if (missing.length > 0) throw new errors.InvalidOption(name, `must implement ${missing.join(', ')}`)
  return value
}

function channelPattern (value: unknown): RegExp {
  if (value === undefined) return DEFAULT_CHANNEL_PATTERN
  let pattern: RegExp
  try {
    pattern = typeof value === 'string' ? new RegExp(value) : (value as RegExp)
  } catch (err) {
    throw new errors.InvalidOption('channelPattern', (err as Error).message)
  }
  if (!(pattern instanceof RegExp)) throw new errors.InvalidOption('channelPattern', 'must be a RegExp or a string')
  // The pattern is also the routes' JSON-schema pattern, where flags cannot be expressed.
  if (pattern.flags !== '') throw new errors.InvalidOption('channelPattern', 'must have no flags')
  if (!pattern.source.startsWith('^') || !pattern.source.endsWith('$')) throw new errors.InvalidOption('channelPattern', 'must be anchored with ^ and $')
  return pattern
}

function routes (value: unknown): Required<LongPollRoutes> {
  const chosen = { poll: true, push: true, disconnect: true, queues: true }
  if (value === undefined) return chosen
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new errors.InvalidOption('routes', `must be an object like { push: false }, got ${String(value)}`)
  for (const [name, on] of Object.entries(value)) {
    if (!(ROUTES as string[]).includes(name)) throw new errors.InvalidOption(`routes.${name}`, `is not a route; the routes are ${ROUTES.join(', ')}`)
    if (typeof on !== 'boolean') throw new errors.InvalidOption(`routes.${name}`, `must be true or false, got ${String(on)}`)
    chosen[name as RouteName] = on
  }
  return chosen
}

function clientLimit (options: LongPollOptions): ClientLimit | null {
  const { clientKey } = options
  if (clientKey !== undefined && typeof clientKey !== 'function') throw new errors.InvalidOption('clientKey', 'must be a function (request) => string')
  if (options.maxHeldPollsPerClient === undefined) return null
  return new ClientLimit(integer(options, 'maxHeldPollsPerClient', 0, 1), clientKey ?? ((request) => request.ip))
}

function authorizeHook (value: unknown): Authorize | null {
  if (value === undefined) return null
  if (typeof value !== 'function') throw new errors.InvalidOption('authorize', 'must be a function (request, { action, channel }) => boolean')
  return value as Authorize
}
