import { errors } from '../errors.js'

/*
 * Every Redis key and pub/sub channel name of the package, in one place: RedisStore, RedisNotifier and
 * RedisQueueStore all build names here, so no backend imports helpers from a sibling.
 *
 * The hash-tag rule: every name of one channel, or of one queue, carries `{<name>}` — its only braces, since
 * prefixes may not contain any — so on a Cluster all of them (and the pub/sub channel that wakes its waiters)
 * fall in one slot, which lets one Lua script touch them all.
 *   channel C:  <prefix>{C}:meta  <prefix>{C}:msgs  <prefix>{C}:key:<k>   pub/sub <prefix>{C}
 *   queue Q:    <prefix>q:{Q}:<part>                       pub/sub <prefix>q:{Q}
 * A channel's names continue the prefix with `{`, a queue's with `q:{`, so a channel and a queue of one name
 * never share a key or a pub/sub channel (they do share a slot, which is harmless).
 */

/** A channel's keys; `key:<idempotency key>` remembers a push's key for `idempotencyTtl`. */
export type ChannelPart = 'meta' | 'msgs' | `key:${string}`
export type QueuePart = 'waiting' | 'delayed' | 'leased' | 'jobs' | 'state' | 'errors' | 'dead' | 'key'

export const DEFAULT_PREFIX = 'longpoll:'

export function channelKey (prefix: string, channel: string, part: ChannelPart): string {
  return `${prefix}{${channel}}:${part}`
}

export function channelTopic (prefix: string, channel: string): string {
  return `${prefix}{${channel}}`
}

/** A queue key; `key` parts are suffixed with the de-duplicating key itself (`…:key:<key>`). */
export function queueKey (prefix: string, queue: string, part: QueuePart): string {
  return `${prefix}q:{${queue}}:${part}`
}

export function queueTopic (prefix: string, queue: string): string {
  return `${prefix}q:{${queue}}`
}

/** The topic a pub/sub channel name was built from, or null for a name that is not ours. */
export function parseTopic (prefix: string, name: string): { namespace: 'channel' | 'queue', name: string } | null {
  if (!name.startsWith(prefix) || !name.endsWith('}')) return null
  const rest = name.slice(prefix.length)
  if (rest.startsWith('{')) return { namespace: 'channel', name: rest.slice(1, -1) }
  if (rest.startsWith('q:{')) return { namespace: 'queue', name: rest.slice(3, -1) }
  return null
}

export function checkPrefix (prefix: unknown): string {
  if (prefix === undefined) return DEFAULT_PREFIX
  // A brace in the prefix would become every key's hash tag and put all channels in one Cluster slot.
  if (typeof prefix !== 'string' || /[{}]/.test(prefix)) throw new errors.InvalidOption('prefix', 'must be a string without "{" or "}"')
  return prefix
}

/** CRC16-CCITT (XModem) as Redis Cluster hashes keys, by table. */
const CRC16 = Array.from({ length: 256 }, (_, byte) => {
  let crc = byte << 8
  for (let bit = 0; bit < 8; bit++) crc = (crc & 0x8000) !== 0 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff
  return crc
})

/**
 * The Cluster slot of a key (Redis's own rule: the part between the first `{` and the next `}`, when not
 * empty, else the whole key), so a batch can be split by the node that owns each message's slot.
 */
export function keySlot (key: string): number {
  let hashed = key
  const open = key.indexOf('{')
  if (open !== -1) {
    const close = key.indexOf('}', open + 1)
    if (close > open + 1) hashed = key.slice(open + 1, close)
  }
  let crc = 0
  for (const byte of Buffer.from(hashed)) crc = ((crc << 8) & 0xffff) ^ (CRC16[((crc >> 8) ^ byte) & 0xff] as number)
  return crc & 0x3fff
}
