// Type-only and free of Node imports, so the browser client can import it (`import type`).

/**
 * Every `code` of an error fastify-longpoll throws or answers with (the `code` field of an error body).
 * lib/errors.ts checks at compile time that this list and its `errors` stay the same set.
 */
export type LongPollErrorCode =
  | 'FST_LONGPOLL_INVALID_OPTION'
  | 'FST_LONGPOLL_BAD_CURSOR'
  | 'FST_LONGPOLL_BAD_CHANNEL'
  | 'FST_LONGPOLL_MISSING_DATA'
  | 'FST_LONGPOLL_BAD_DATA'
  | 'FST_LONGPOLL_BAD_IDEMPOTENCY_KEY'
  | 'FST_LONGPOLL_MESSAGE_TOO_LARGE'
  | 'FST_LONGPOLL_BAD_BATCH'
  | 'FST_LONGPOLL_MISSING_PACKAGE'
  | 'FST_LONGPOLL_FORBIDDEN'
  | 'FST_LONGPOLL_TOO_MANY_POLLS'
  | 'FST_LONGPOLL_TOO_MANY_CLIENT_POLLS'
  | 'FST_LONGPOLL_CLOSING'
  | 'FST_LONGPOLL_STORE_UNAVAILABLE'
  | 'FST_LONGPOLL_NOTIFIER_UNAVAILABLE'
  | 'FST_LONGPOLL_BAD_QUEUE'
  | 'FST_LONGPOLL_BAD_JOB_OPTION'
  | 'FST_LONGPOLL_BAD_RECEIPTS'
  | 'FST_LONGPOLL_LEASE_LOST'
