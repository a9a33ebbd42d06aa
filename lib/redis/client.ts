import { errors } from '../errors.js'

/**
 * An ioredis 5 client: a `Redis` or a `Cluster`. Declared by shape rather than imported from ioredis, so that
 * this package's types compile for users who do not install ioredis (an optional peer) even without
 * `skipLibCheck`; the constructors check at run time that it really is one.
 */
export interface RedisClient {
  readonly status: string
  readonly options: object
  defineCommand (name: string, definition: { lua: string, numberOfKeys?: number }): void
  duplicate (...args: any[]): unknown
  on (event: string | symbol, listener: (...args: any[]) => void): unknown
}

/** Shared by the Redis backends: a usable ioredis client without `keyPrefix`. */
export function checkClient (redis: unknown, owner: string): void {
  const client = redis as (RedisClient & { options: { keyPrefix?: string, redisOptions?: { keyPrefix?: string } } }) | undefined
  if (client === null || typeof client !== 'object' || typeof client.defineCommand !== 'function' || typeof client.duplicate !== 'function') {
    throw new errors.InvalidOption(`${owner} redis`, 'must be an ioredis Redis or Cluster client')
  }
  const options = client.options as { keyPrefix?: string, redisOptions?: { keyPrefix?: string } }
  const keyPrefix = options.keyPrefix ?? options.redisOptions?.keyPrefix
  if (keyPrefix !== undefined && keyPrefix !== '') {
    throw new errors.InvalidOption(`${owner} redis`, `has ioredis keyPrefix "${keyPrefix}", which keys built inside Lua scripts bypass; pass a client without it and use the prefix option instead`)
  }
}

/** Rejects with "Redis did not answer the <what> within <ms> ms" unless `promise` settles first. */
export async function withTimeout<T> (promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([promise, new Promise<never>((resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`Redis did not answer the ${what} within ${ms} ms`)), ms)
    })])
  } finally {
    clearTimeout(timer)
  }
}

/** The part of an ioredis client `whenReady` uses. */
export interface Connectable {
  readonly status: string
  connect (): Promise<void>
  once (event: 'ready', listener: () => void): unknown
  removeListener (event: 'ready', listener: () => void): unknown
}

/**
 * Resolves when the client is ready. Before its first connection (`connectedOnce` false) it waits for it, up to
 * `ms`; after that, a client that is not ready fails at once, so a write is refused rather than queued in
 * ioredis's offline queue to run after the caller was told it failed.
 */
export async function whenReady (redis: Connectable, connectedOnce: boolean, ms: number): Promise<void> {
  if (redis.status === 'ready') return
  if (connectedOnce || redis.status === 'end' || redis.status === 'close') {
    throw new Error(`the Redis connection is ${redis.status}`)
  }
  if (redis.status === 'wait') redis.connect().catch(() => {}) // lazyConnect: the client's 'error' listener reports it
  let onReady: (() => void) | undefined
  try {
    await withTimeout(new Promise<void>((resolve) => { onReady = resolve; redis.once('ready', resolve) }), ms, 'connect')
  } finally {
    if (onReady !== undefined) redis.removeListener('ready', onReady)
  }
}
