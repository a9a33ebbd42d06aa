// What the LongPollWorker tests share: a fetch that records every request the worker makes (and the server's
// answer) on its way to the real server, and a gate a handler can wait on.
import { EventEmitter } from 'node:events'

export interface Sent {
  operation: string
  body: any
  status?: number
  answer?: any
}

export interface Recorder {
  fetch: typeof fetch
  sent: Sent[]
  /** Requests of one operation (claim, ack, nack, extend) that the server has answered. */
  answered: (operation: string) => Sent[]
  /** Resolves once `n` requests of `operation` are answered. */
  waitFor: (operation: string, n: number, ms?: number) => Promise<Sent[]>
  /** Jobs acked so far: the `acked` of every ack answered 200 (one ack may carry several receipts). */
  acked: () => number
  /** Resolves once `n` jobs are acked. */
  waitForAcked: (n: number, ms?: number) => Promise<void>
}

/**
 * A fetch that passes every request on to the real server, unchanged, and records it with its answer.
 * `delay(operation, body)` may hold a request back before it is sent (a slow network path), to make a lease pass.
 */
export function recorder (delay: (operation: string, body: any) => Promise<void> | undefined = () => undefined): Recorder {
  const sent: Sent[] = []
  const events = new EventEmitter()
  const answered = (operation: string): Sent[] => sent.filter((s) => s.operation === operation && s.status !== undefined)
  const recording: typeof fetch = async (input, init) => {
    const operation = new URL(String(input)).pathname.split('/').at(-1) as string
    const entry: Sent = { operation, body: JSON.parse(String(init?.body ?? 'null')) }
    sent.push(entry)
    await delay(operation, entry.body)
    const response = await fetch(input, init)
    entry.status = response.status
    entry.answer = await response.clone().json().catch(() => null)
    events.emit('answered')
    return response
  }
  const acked = (): number => answered('ack').reduce((n, s) => n + (s.status === 200 ? s.answer.acked as number : 0), 0)
  async function until (done: () => boolean, ms: number, what: () => string): Promise<void> {
    const deadline = Date.now() + ms
    while (!done()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what()}`)
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, Math.max(0, deadline - Date.now()))
        events.once('answered', () => { clearTimeout(timer); resolve(undefined) })
      })
    }
  }
  return {
    fetch: recording,
    sent,
    answered,
    async waitFor (operation, n, ms = 15_000) {
      await until(() => answered(operation).length >= n, ms, () => `${n} answered ${operation} requests (have ${answered(operation).length})`)
      return answered(operation)
    },
    acked,
    async waitForAcked (n, ms = 15_000) {
      await until(() => acked() >= n, ms, () => `${n} acked jobs (have ${acked()})`)
    }
  }
}

export interface Gate {
  promise: Promise<void>
  open: () => void
}

export function gate (): Gate {
  let open!: () => void
  const promise = new Promise<void>((resolve) => { open = resolve })
  return { promise, open }
}
