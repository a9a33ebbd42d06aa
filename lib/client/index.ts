// fastify-longpoll/client — for browsers and Node (global fetch). No Node-only import may appear here.

/** A message as the server delivers it. `id` is also a cursor. */
export interface LongPollMessage<T = unknown> {
  id: string
  data: T
  time: number
}

export type LongPollClientState = 'connecting' | 'live' | 'reconnecting' | 'stopped'

export interface LongPollClientOptions {
  /** Where the plugin's routes are, e.g. `https://example.com/lp`, or `/lp` in a page (its `/poll` is appended). */
  url: string | URL
  channel: string
  /** Where to start: a cursor or message id from earlier, or `latest`. Default: the oldest retained message. */
  cursor?: string
  /** Milliseconds the server holds each poll (the server clamps it). Default: the server's default. */
  timeout?: number
  /** Most messages per answer. Default: the server's maximum. */
  limit?: number
  /** First retry delay, in milliseconds; it doubles per failure. Default 500. */
  minDelay?: number
  /** Longest retry delay, in milliseconds. Default 30000. */
  maxDelay?: number
  /** Extra request headers (e.g. authorization); a function is called before every poll. */
  headers?: Record<string, string> | (() => Record<string, string>)
  /** The fetch to use. Default: the global fetch. */
  fetch?: typeof fetch
  /** Called when the connection state changes. */
  onState?: (state: LongPollClientState, detail?: { delay?: number, error?: unknown }) => void
  /** Called when the server says messages were missed (expired, trimmed, or the channel began a new life). */
  onGap?: () => void
}

/** A poll answered with an error that retrying will not cure (400, 403, 404, …). */
export class LongPollClientError extends Error {
  constructor (readonly status: number, readonly code: string | undefined, message: string) {
    super(message)
    this.name = 'LongPollClientError'
  }
}

interface PollAnswer {
  status: 'ok' | 'timeout' | 'disconnected'
  messages: LongPollMessage[]
  cursor: string
  gap?: boolean
}

/** Slack on top of the poll's own timeout before the client gives up on an answer and retries. */
const ANSWER_GRACE_MS = 15_000

/**
 * Follows one channel: `for await (const message of client)`. Keeps the cursor, so every retained message is
 * delivered once, in order, across reconnects; retries with exponential backoff and jitter, honouring
 * `Retry-After`. Iteration ends on `stop()`, or when the channel is disconnected.
 */
export class LongPollClient<T = unknown> implements AsyncIterable<LongPollMessage<T>> {
  /** Where the next poll starts: the id of the last message handed out, or the server's cursor. */
  cursor: string | undefined
  state: LongPollClientState = 'connecting'
  /** Why iteration ended: `stopped` (by `stop()`) or `disconnected` (by the server). */
  endReason: 'stopped' | 'disconnected' | undefined
  private readonly options: LongPollClientOptions
  private readonly stopper = new AbortController()
  private iterating = false

  constructor (options: LongPollClientOptions) {
    if (options === null || typeof options !== 'object') throw new TypeError('LongPollClient needs options { url, channel }')
    if (typeof options.channel !== 'string' || options.channel === '') throw new TypeError('LongPollClient: "channel" must be a non-empty string')
    if (typeof options.url !== 'string' && !(options.url instanceof URL)) throw new TypeError('LongPollClient: "url" must be a string or URL')
    this.options = options
    this.cursor = options.cursor
  }

  /** Ends iteration at once; an in-flight poll is aborted. */
  stop (): void {
    this.endReason ??= 'stopped'
    this.stopper.abort()
    this.setState('stopped')
  }

  get stopped (): boolean {
    return this.stopper.signal.aborted
  }

  async * [Symbol.asyncIterator] (): AsyncGenerator<LongPollMessage<T>, void, undefined> {
    if (this.iterating) throw new Error('LongPollClient: only one iteration at a time')
    this.iterating = true
    let failures = 0
    // Until the server has answered since the last failure (or ever), poll with timeout 0: that answer comes at
    // once, so `live` means "reachable", not "a message happened to arrive". One short request per (re)connect.
    let confirmed = false
    this.options.onState?.(this.state)
    try {
      while (!this.stopped) {
        let delay: number
        try {
          const answer = await this.poll(confirmed ? this.options.timeout : 0)
          failures = 0
          confirmed = true
          this.setState('live')
          if (answer.gap === true) this.options.onGap?.()
          for (const message of answer.messages) {
            this.cursor = message.id
            yield message as LongPollMessage<T>
            if (this.stopped) return
          }
          this.cursor = answer.cursor
          if (answer.status === 'disconnected') {
            this.endReason = 'disconnected'
            this.stop()
          }
          continue
        } catch (err) {
          if (this.stopped) return
          confirmed = false
          if (err instanceof LongPollClientError && (err as RetryableError).retryAfter === undefined) throw err
          delay = this.backoff(failures++, (err as RetryableError).retryAfter)
          this.setState('reconnecting', { delay, error: err })
        }
        await sleep(delay, this.stopper.signal)
      }
    } finally {
      this.iterating = false
    }
  }

  private async poll (timeout: number | undefined): Promise<PollAnswer> {
    const { url, channel, limit, headers } = this.options
    // Relative to the page in a browser (`url: '/lp'`); absolute elsewhere.
    const target = new URL(String(url).replace(/\/+$/, '') + '/poll', globalThis.location?.href)
    target.searchParams.set('channel', channel)
    if (this.cursor !== undefined) target.searchParams.set('cursor', this.cursor)
    if (timeout !== undefined) target.searchParams.set('timeout', String(timeout))
    if (limit !== undefined) target.searchParams.set('limit', String(limit))

    // One controller per poll, aborted by stop() or by a server that does not answer in time.
    const controller = new AbortController()
    const abort = (): void => controller.abort()
    this.stopper.signal.addEventListener('abort', abort)
    const guard = setTimeout(abort, (timeout ?? 60_000) + ANSWER_GRACE_MS)
    try {
      const doFetch = this.options.fetch ?? globalThis.fetch
      const response = await doFetch(target, {
        signal: controller.signal,
        cache: 'no-store',
        headers: { accept: 'application/json', ...(typeof headers === 'function' ? headers() : headers) }
      })
      if (response.status === 200) return await response.json() as PollAnswer
      const body = await response.json().catch(() => ({})) as { code?: string, message?: string }
      const error: RetryableError = new LongPollClientError(response.status, body.code, body.message ?? `poll answered ${response.status}`)
      if (response.status >= 500 || response.status === 429 || response.status === 408) {
        error.retryAfter = parseRetryAfter(response.headers.get('retry-after')) ?? 0
      }
      throw error
    } finally {
      clearTimeout(guard)
      this.stopper.signal.removeEventListener('abort', abort)
    }
  }

  /** Exponential backoff with "equal jitter", never shorter than the server's Retry-After. */
  private backoff (failures: number, retryAfter = 0): number {
    const min = this.options.minDelay ?? 500
    const max = this.options.maxDelay ?? 30_000
    const ceiling = Math.min(max, min * 2 ** Math.min(failures, 20))
    const jittered = ceiling / 2 + Math.random() * ceiling / 2
    if (retryAfter <= 0) return jittered
    // Retry-After is a floor, not a replacement for backing off: a server that keeps answering 503 sees its
    // clients come back less and less often. Clients told the same Retry-After spread over one more min-delay.
    return Math.max(retryAfter, jittered) + Math.random() * min
  }

  private setState (state: LongPollClientState, detail?: { delay?: number, error?: unknown }): void {
    if (this.state === state && state !== 'reconnecting') return
    this.state = state
    this.options.onState?.(state, detail)
  }
}

type RetryableError = LongPollClientError & { retryAfter?: number }

/** Retry-After as milliseconds: delta-seconds or an HTTP date. */
export function parseRetryAfter (value: string | null): number | undefined {
  if (value === null || value.trim() === '') return undefined
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000
  const date = Date.parse(value)
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now())
}

function sleep (ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve()
    const done = (): void => {
      clearTimeout(timer)
      signal.removeEventListener('abort', done)
      resolve()
    }
    const timer = setTimeout(done, ms)
    signal.addEventListener('abort', done)
  })
}
export { LongPollWorker, type LongPollJob, type LongPollJobContext, type LongPollWorkerOperation, type LongPollWorkerOptions } from './worker.js'
