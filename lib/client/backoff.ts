// Retry timing shared by LongPollClient and LongPollWorker (browsers and Node; no Node-only import).

/**
 * Milliseconds to wait before retry number `failures + 1`: exponential backoff with "equal jitter", from
 * `minDelay` doubling up to `maxDelay`, never shorter than the server's Retry-After (`retryAfter`, ms).
 */
export function backoffDelay (failures: number, retryAfter = 0, minDelay = 500, maxDelay = 30_000): number {
  const ceiling = Math.min(maxDelay, minDelay * 2 ** Math.min(failures, 20))
  const jittered = ceiling / 2 + Math.random() * ceiling / 2
  if (retryAfter <= 0) return jittered
  // Retry-After is a floor, not a replacement for backing off: a server that keeps answering 503 sees its
  // clients come back less and less often. Clients told the same Retry-After spread over one more min-delay.
  return Math.max(retryAfter, jittered) + Math.random() * minDelay
}

/** Resolves after `ms`, or at once when `signal` aborts (never rejects). */
export function sleep (ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted === true) return resolve()
    const done = (): void => {
      clearTimeout(timer)
      signal?.removeEventListener('abort', done)
      resolve()
    }
    const timer = setTimeout(done, ms)
    signal?.addEventListener('abort', done)
  })
}
