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
