import type { FastifyRequest } from 'fastify'
import { errors } from './errors.js'

/** Names the client a request comes from, for `maxHeldPollsPerClient`. Default: `request.ip`. */
export type ClientKey = (request: FastifyRequest) => string

/**
 * `maxHeldPollsPerClient`: how many polls (and queue claims) one client holds on this instance. A client's
 * count lives while it holds something, so the map never outgrows the held polls. Counted per instance: a
 * client spread over N instances by a load balancer may hold N times the limit.
 */
export class ClientLimit {
  private readonly held = new Map<string, number>()

  constructor (readonly max: number, private readonly keyOf: ClientKey) {}

  /** Takes a slot for the request's client and returns its key; throws FST_LONGPOLL_TOO_MANY_CLIENT_POLLS (429) past the limit. */
  take (request: FastifyRequest): string {
    const key = String(this.keyOf(request))
    const n = this.held.get(key) ?? 0
    if (n >= this.max) throw new errors.TooManyClientPolls(this.max)
    this.held.set(key, n + 1)
    return key
  }

  /** Gives back a slot `take` returned. */
  release (key: string): void {
    const n = this.held.get(key)
    if (n === undefined) return
    if (n <= 1) this.held.delete(key)
    else this.held.set(key, n - 1)
  }

  /** Clients holding at least one poll or claim now (for tests and stats). */
  get clients (): number {
    return this.held.size
  }
}
