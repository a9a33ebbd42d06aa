import createError from '@fastify/error'
import type { LongPollErrorCode } from './client/codes.js'

export type { LongPollErrorCode }

// Stable codes: clients and tests match on `code`, never on the message text.
export const errors = {
  /** A plugin option is invalid; thrown at `register`. */
  InvalidOption: createError('FST_LONGPOLL_INVALID_OPTION', 'Invalid option "%s": %s', 500),
  /** The cursor is malformed, or points past the channel's newest message. */
  BadCursor: createError('FST_LONGPOLL_BAD_CURSOR', 'Invalid cursor "%s": %s', 400),
  /** The channel name does not match the channel pattern. */
  BadChannel: createError('FST_LONGPOLL_BAD_CHANNEL', 'Invalid channel "%s": it must match %s', 400),
  /** A push without `data` (undefined is not JSON). */
  MissingData: createError('FST_LONGPOLL_MISSING_DATA', 'A message needs "data": any JSON value', 400),
  /** Server-side push of a value JSON cannot encode (a BigInt, a cycle). */
  BadData: createError('FST_LONGPOLL_BAD_DATA', 'The message data is not JSON: %s', 400),
  /** An `Idempotency-Key` header (or `{ key }` of `app.longpoll.push`) that is not 1–200 visible ASCII characters. */
  BadIdempotencyKey: createError('FST_LONGPOLL_BAD_IDEMPOTENCY_KEY', 'Invalid idempotency key: %s', 400),
  /** `app.longpoll.pushMany` given something other than an array of `{ channel, data, key? }`, or more than `maxPushMany`. */
  BadBatch: createError('FST_LONGPOLL_BAD_BATCH', 'Invalid pushMany batch: %s', 400),
  /** The serialized message is larger than `maxMessageBytes`. */
  MessageTooLarge: createError('FST_LONGPOLL_MESSAGE_TOO_LARGE', 'The message is %d bytes; the limit is %d', 413),
  /** An option needs an optional peer dependency that is not installed (`metrics` needs prom-client). */
  MissingPackage: createError('FST_LONGPOLL_MISSING_PACKAGE', 'Option "%s" needs the %s package, which is not installed: npm install %s', 500),
  /** The `authorize` hook denied the action. */
  Forbidden: createError('FST_LONGPOLL_FORBIDDEN', 'Not allowed to %s on channel "%s"', 403),
  /** `maxHeldPolls` is reached; the client should retry after `Retry-After` seconds. */
  TooManyPolls: createError('FST_LONGPOLL_TOO_MANY_POLLS', 'This server holds %d polls, its limit; retry later', 503),
  /** The client holds `maxHeldPollsPerClient` polls on this instance already; retry after `Retry-After` seconds. */
  TooManyClientPolls: createError('FST_LONGPOLL_TOO_MANY_CLIENT_POLLS', 'This client holds %d polls on this server, the limit per client; retry later', 429),
  /** The server is closing; held and arriving polls are answered with this so clients reconnect elsewhere. */
  Closing: createError('FST_LONGPOLL_CLOSING', 'The server is closing; reconnect', 503),
  /** The store could not be reached or failed; nothing was stored. */
  StoreUnavailable: createError('FST_LONGPOLL_STORE_UNAVAILABLE', 'The message store is unavailable: %s', 503),
  /** The notifier could not subscribe the channel, so the poll could not be held safely. */
  NotifierUnavailable: createError('FST_LONGPOLL_NOTIFIER_UNAVAILABLE', 'The notifier is unavailable: %s', 503),
  /** The queue name does not match the channel pattern. */
  BadQueue: createError('FST_LONGPOLL_BAD_QUEUE', 'Invalid queue "%s": it must match %s', 400),
  /** A server-side enqueue with a bad `delay` or `key`. */
  BadJobOption: createError('FST_LONGPOLL_BAD_JOB_OPTION', 'Invalid job option "%s": %s', 400),
  /** The `authorize` hook denied a queue action. */
  QueueForbidden: createError('FST_LONGPOLL_FORBIDDEN', 'Not allowed to %s on queue "%s"', 403),
  /** An ack needs exactly one of `receipt` and `receipts`. */
  BadReceipts: createError('FST_LONGPOLL_BAD_RECEIPTS', 'An ack takes exactly one of "receipt" and "receipts"', 400),
  /** The receipt is not the current lease of its job: acked, nacked, passed (the job may be with another worker). */
  LeaseLost: createError('FST_LONGPOLL_LEASE_LOST', 'The lease of receipt "%s" is lost: it passed, or the job was settled', 409)
}

type ThrownCode = { [K in keyof typeof errors]: InstanceType<(typeof errors)[K]>['code'] }[keyof typeof errors]
/** Fails to compile when a code is added here but not to LongPollErrorCode (lib/client/codes.ts), or the reverse. */
const _everyCodeListed: [ThrownCode] extends [LongPollErrorCode] ? ([LongPollErrorCode] extends [ThrownCode] ? true : never) : never = true
