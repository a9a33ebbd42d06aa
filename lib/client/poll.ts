// One HTTP poll of one or many channels, and the arithmetic of cursors. No Node-only import may appear here.
import type { LongPollErrorCode } from './codes.js'

/** A message as the server delivers it, with the channel it came from. `id` is also a cursor. */
export interface LongPollMessage<T = unknown> {
  id: string
  data: T
  time: number
  channel: string
}

/**
 * A poll answered with an error that retrying will not cure (400, 403, 404, …). `code` is the error body's: one of
 * the package's own codes, Fastify's (e.g. `FST_ERR_VALIDATION`), or another plugin's.
 */
export class LongPollClientError extends Error {
  constructor (readonly status: number, readonly code: LongPollErrorCode | (string & {}) | undefined, message: string) {
    super(message)
    this.name = 'LongPollClientError'
  }
}

export type RetryableError = LongPollClientError & { retryAfter?: number }

/** What a poll needs from the client's options. */
export interface PollSettings {
  url: string | URL
  timeout?: number | undefined
  limit?: number | undefined
  headers?: Record<string, string> | (() => Record<string, string>) | undefined
  fetch?: typeof fetch | undefined
}

/**
 * One answer, the same shape for one channel and for many, with what the poll asked for: `from` is the poll's
 * cursor entry per channel (`null`: from the oldest retained message). Plain data, so a leading tab can post it
 * to the others as it is.
 */
export interface Delivery {
  channels: string[]
  from: Array<string | null>
  to: string[]
  messages: LongPollMessage[]
  gaps: string[]
  disconnected: string[]
}

/** Slack on top of the poll's own timeout before the client gives up on an answer and retries. */
const ANSWER_GRACE_MS = 15_000

interface WireAnswer {
  status: 'ok' | 'timeout' | 'disconnected'
  messages: Array<Omit<LongPollMessage, 'channel'> & { channel?: string }>
  cursor: string
  gap?: boolean
  gaps?: string[]
  disconnected?: string[]
}

/**
 * Polls `channels` from `from` (aligned). One channel is exactly the v1 request (`channel=C&cursor=K`); many
 * repeat `channel` and send the aligned comma-separated cursor, or none when every channel starts at its oldest.
 * Rejects with `signal.reason` when `signal` aborts.
 */
export async function pollOnce (settings: PollSettings, channels: string[], from: Array<string | null>, timeout: number | undefined, signal: AbortSignal): Promise<Delivery> {
  const { limit, headers } = settings
  const target = new URL(pollUrl(settings.url))
  for (const channel of channels) target.searchParams.append('channel', channel)
  if (from.some((entry) => entry !== null)) target.searchParams.set('cursor', from.map((entry) => entry ?? '').join(','))
  if (timeout !== undefined) target.searchParams.set('timeout', String(timeout))
  if (limit !== undefined) target.searchParams.set('limit', String(limit))

  // One controller per poll, aborted by the caller or by a server that does not answer in time.
  const controller = new AbortController()
  const abort = (): void => controller.abort(signal.reason)
  if (signal.aborted) abort()
  signal.addEventListener('abort', abort)
  const guard = setTimeout(() => controller.abort(new Error('no answer in time')), (timeout ?? 60_000) + ANSWER_GRACE_MS)
  try {
    const doFetch = settings.fetch ?? globalThis.fetch
    const response = await doFetch(target, {
      signal: controller.signal,
      cache: 'no-store',
      headers: { accept: 'application/json', ...(typeof headers === 'function' ? headers() : headers) }
    })
    if (response.status === 200) return toDelivery(channels, from, await response.json() as WireAnswer)
    const body = await response.json().catch(() => ({})) as { code?: string, message?: string }
    const error: RetryableError = new LongPollClientError(response.status, body.code, body.message ?? `poll answered ${response.status}`)
    if (response.status >= 500 || response.status === 429 || response.status === 408) {
      error.retryAfter = parseRetryAfter(response.headers.get('retry-after')) ?? 0
    }
    throw error
  } catch (err) {
    if (signal.aborted) throw signal.reason // the caller's abort, whatever fetch made of it
    throw err
  } finally {
    clearTimeout(guard)
    signal.removeEventListener('abort', abort)
  }
}

/** The plugin's poll route: relative to the page in a browser (`url: '/lp'`), absolute elsewhere. */
export function pollUrl (url: string | URL): string {
  return new URL(String(url).replace(/\/+$/, '') + '/poll', globalThis.location?.href).href
}

function toDelivery (channels: string[], from: Array<string | null>, answer: WireAnswer): Delivery {
  const to = answer.cursor.split(',')
  if (to.length !== channels.length) throw new Error(`the server answered ${to.length} cursor entries for ${channels.length} channels`)
  if (channels.length === 1) {
    // A one-channel answer is v1's: no channel on messages, `gap` and the status stand for that channel.
    const channel = channels[0] as string
    return {
      channels,
      from,
      to,
      messages: answer.messages.map((message) => ({ ...message, channel })),
      gaps: answer.gap === true ? [channel] : [],
      disconnected: answer.status === 'disconnected' ? [channel] : []
    }
  }
  return {
    channels,
    from,
    to,
    messages: answer.messages as LongPollMessage[],
    gaps: answer.gaps ?? (answer.gap === true ? channels : []),
    disconnected: answer.disconnected ?? []
  }
}

/** Retry-After as milliseconds: delta-seconds or an HTTP date. */
export function parseRetryAfter (value: string | null): number | undefined {
  if (value === null || value.trim() === '') return undefined
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000
  const date = Date.parse(value)
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now())
}

// Cursor arithmetic. A position is `null` (before the oldest retained message), `latest`, or a cursor
// `<epoch>.<seq>` (message n of a life has seq n, so ids and cursors compare by seq within one epoch). A cursor
// from another epoch is a position in another life of the channel: the server reads it as "from the oldest".

interface Parsed { epoch: string, seq: number }

function parse (cursor: string): Parsed | undefined {
  const dot = cursor.lastIndexOf('.')
  const seq = Number(cursor.slice(dot + 1))
  return dot > 0 && Number.isSafeInteger(seq) ? { epoch: cursor.slice(0, dot), seq } : undefined
}

/** True when the message `id` comes after `position` (a message of another life always does). */
export function isAfter (id: string, position: string | null): boolean {
  if (position === null || position === 'latest') return true
  const a = parse(id)
  const b = parse(position)
  return a === undefined || b === undefined || a.epoch !== b.epoch || a.seq > b.seq
}

/** The later of a position and an answer's cursor entry `to` (which is in the channel's current life). */
export function advance (position: string | null, to: string): string {
  if (position === null || position === 'latest') return to
  const a = parse(position)
  const b = parse(to)
  return a === undefined || b === undefined || a.epoch !== b.epoch || b.seq > a.seq ? to : position
}

/**
 * True when an answer polled `from` and ending at `to` holds every message after `position`: read from the
 * oldest, or from a position at or before it in the same life.
 */
export function covers (from: string | null, position: string | null, to: string): boolean {
  if (position === 'latest' || from === 'latest') return from === position
  if (from === null) return true
  const f = parse(from)
  const t = parse(to)
  if (f === undefined || t === undefined || f.epoch !== t.epoch) return true // from another life: read from the oldest
  if (position === null) return false
  const p = parse(position)
  return p !== undefined && p.epoch === f.epoch && f.seq <= p.seq
}

/**
 * Where a poll must start to serve both `a` and `b`: the earlier one; `null` (the oldest) when they are in
 * different lives, as nobody can tell which life is the current one.
 */
export function earliest (a: string | null, b: string | null): string | null {
  if (a === null || b === null) return null
  if (a === 'latest') return b
  if (b === 'latest') return a
  const pa = parse(a)
  const pb = parse(b)
  if (pa === undefined || pb === undefined || pa.epoch !== pb.epoch) return null
  return pa.seq <= pb.seq ? a : b
}

/** A cursor of a channel that had no message when it was handed out (its epoch is `_<ms>`, see the server's cursor.ts). */
export function isEmptyChannel (position: string | null): boolean {
  return position !== null && position.startsWith('_')
}

/** The epoch of a cursor, or undefined for `null`, `latest` and anything unparsable. */
export function epochOf (position: string | null): string | undefined {
  return position === null || position === 'latest' ? undefined : parse(position)?.epoch
}
