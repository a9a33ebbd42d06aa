// What polls on channel names that never get a message leave behind: the shared part of the memory and Redis
// tests of bounded state (issue 12, item 4).
import v8 from 'node:v8'
import vm from 'node:vm'
import type { Test } from 'tap'
import { poll, push, type Served } from './app.js'
import { pollMany } from './many.js'

v8.setFlagsFromString('--expose-gc')
const gc = vm.runInNewContext('gc') as () => void

/** The heap after two full collections: what is still reachable. */
export function liveHeap (): number {
  gc()
  gc()
  return process.memoryUsage().heapUsed
}

/**
 * timeout=0 polls on `n` distinct channel names that never get a message, `perPoll` names to a poll (a poll of
 * many channels reads each of them as a poll of one would), `concurrency` polls at a time over keep-alive
 * connections. Returns the cursor the poll answered for name number `keep`.
 */
export async function pollNeverPushed (served: Served, prefix: string, n: number, keep: number, perPoll = 1, concurrency = 16): Promise<string> {
  let next = 0
  let kept = ''
  const failures: number[] = []
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < n) {
      const from = next
      const to = next = Math.min(n, next + perPoll)
      const names = Array.from({ length: to - from }, (_, i) => `${prefix}${from + i}`)
      const answer = names.length === 1
        ? await poll(served.base, { channel: names[0] as string, timeout: 0 })
        : await pollMany(served.base, names, { timeout: 0 })
      if (answer.status !== 200) failures.push(answer.status)
      else if (keep >= from && keep < to) kept = answer.body.cursor.split(',')[keep - from]
    }
  }))
  if (failures.length > 0) throw new Error(`${failures.length} polls failed, e.g. ${failures[0] as number}`)
  return kept
}

/** A channel's first message reaches the cursor a poll of it handed out before the message existed, with no gap. */
export async function firstMessageReachesCursor (t: Test, served: Served, channel: string, cursor: string): Promise<void> {
  const pushed = await push(served.base, channel, 'first')
  t.equal(pushed.status, 200)
  const answer = await poll(served.base, { channel, cursor, timeout: 0 })
  if (answer.status !== 200) t.fail(`the poll answered ${answer.status}: ${JSON.stringify(answer.body)}`)
  t.same({ data: answer.body.messages.map((m: any) => m.data), gap: answer.body.gap }, { data: ['first'], gap: undefined },
    `the cursor handed out before the channel's first message (${cursor}) receives it, with no gap`)
}
