import { randomBytes } from 'node:crypto'
import { errors } from '../errors.js'
import type { ClaimRequest, ClaimResult, DeadJob, EnqueueRequest, EnqueueResult, LongPollQueueStore, NackRequest, NackResult, QueueCounts } from './types.js'

const WAITING = 0
const DELAYED = 1
const LEASED = 2
const DEAD = 3
const ACKED = 4 // gone; an entry left in a heap for it is stale
type JobState = typeof WAITING | typeof DELAYED | typeof LEASED | typeof DEAD | typeof ACKED

interface MemoryJob {
  id: string
  json: string
  time: number
  state: JobState
  attempts: number
  /** The current lease's receipt; null when not leased. */
  receipt: string | null
  /** While DELAYED: when it becomes available; while LEASED: when the lease passes. */
  due: number
  error: string | null
}

/** A timed entry; stale when the job's state or due time changed after it was pushed (lazy deletion). */
interface Timed {
  due: number
  job: MemoryJob
}

/** A binary min-heap on `due`: O(log n) push and pop, for delayed jobs and lease ends. */
class DueHeap {
  private readonly items: Timed[] = []

  get size (): number {
    return this.items.length
  }

  peek (): Timed | undefined {
    return this.items[0]
  }

  push (item: Timed): void {
    const items = this.items
    items.push(item)
    let i = items.length - 1
    while (i > 0) {
      const parent = (i - 1) >> 1
      if ((items[parent] as Timed).due <= item.due) break
      items[i] = items[parent] as Timed
      i = parent
    }
    items[i] = item
  }

  pop (): Timed | undefined {
    const items = this.items
    const top = items[0]
    const last = items.pop()
    if (top === undefined || last === undefined || items.length === 0) return top
    let i = 0
    for (;;) {
      const left = 2 * i + 1
      if (left >= items.length) break
      const right = left + 1
      const child = right < items.length && (items[right] as Timed).due < (items[left] as Timed).due ? right : left
      if ((items[child] as Timed).due >= last.due) break
      items[i] = items[child] as Timed
      i = child
    }
    items[i] = last
    return top
  }
}

interface MemoryQueue {
  jobs: Map<string, MemoryJob>
  /** Available jobs, oldest first: `waiting[head..]`; an entry whose job left WAITING is skipped. */
  waiting: MemoryJob[]
  head: number
  waitingCount: number
  delayed: DueHeap
  leased: DueHeap
  delayedCount: number
  leasedCount: number
  dead: MemoryJob[]
  /** De-duplicating keys in insertion order, which is also expiry order (one TTL for all). */
  keys: Map<string, { id: string, expiresAt: number }>
}

export interface MemoryQueueStoreOptions {
  /** The clock, epoch ms. Default `Date.now`. */
  now?: () => number
}

/** The default queue store: one process, nothing to install. Its jobs are lost when the process ends. */
export class MemoryQueueStore implements LongPollQueueStore {
  private readonly queues = new Map<string, MemoryQueue>()
  private readonly now: () => number
  private nextId = 0
  private readonly idPrefix = randomBytes(4).toString('hex')

  constructor (options: MemoryQueueStoreOptions = {}) {
    this.now = options.now ?? Date.now
  }

  /** Queues held in memory (for tests: an emptied queue is dropped). */
  get size (): number {
    return this.queues.size
  }

  async enqueue (name: string, json: string, request: EnqueueRequest): Promise<EnqueueResult> {
    const now = this.now()
    const queue = this.queue(name)
    this.expireKeys(queue, now)
    if (request.key !== undefined) {
      const seen = queue.keys.get(request.key)
      if (seen !== undefined) return { id: seen.id, duplicate: true }
    }
    // Unique for the life of this store; the prefix keeps ids of two stores (two test apps) apart.
    const id = `${this.idPrefix}-${(++this.nextId).toString(36)}`
    const job: MemoryJob = { id, json, time: now, state: WAITING, attempts: 0, receipt: null, due: 0, error: null }
    queue.jobs.set(id, job)
    if (request.key !== undefined) queue.keys.set(request.key, { id, expiresAt: now + request.keyTtl })
    if (request.delay > 0) this.delay(queue, job, now + request.delay)
    else this.makeWaiting(queue, job)
    return { id, duplicate: false }
  }

  async claim (name: string, request: ClaimRequest): Promise<ClaimResult> {
    const now = this.now()
    const queue = this.queues.get(name)
    if (queue === undefined) return { jobs: [], waiting: 0, nextDueIn: null }
    const { expired, died } = this.maintain(queue, now, request.maxAttempts)
    const jobs = []
    while (jobs.length < request.limit && queue.waitingCount > 0) {
      const job = queue.waiting[queue.head++] as MemoryJob
      if (job.state !== WAITING) continue // nacked into the delayed set, or requeued twice: a stale entry
      queue.waitingCount--
      job.state = LEASED
      job.attempts++
      job.receipt = newReceipt(job.id)
      job.due = now + request.lease
      queue.leased.push({ due: job.due, job })
      queue.leasedCount++
      jobs.push({ id: job.id, json: job.json, attempt: job.attempts, receipt: job.receipt, leaseUntil: job.due, time: job.time })
    }
    this.compactWaiting(queue)
    return { jobs, waiting: queue.waitingCount, nextDueIn: this.nextDue(queue, now), expired, died }
  }

  async ack (name: string, receipts: string[]): Promise<number> {
    const now = this.now()
    const queue = this.queues.get(name)
    // Every receipt is checked before any job changes: all or nothing.
    const jobs = new Set(receipts.map((receipt) => this.leasedJob(queue, receipt, now)))
    if (queue === undefined) return 0
    for (const job of jobs) {
      job.state = ACKED
      job.json = '' // a stale heap entry may keep the object a while: not its data
      queue.jobs.delete(job.id)
      queue.leasedCount--
    }
    this.dropIfEmpty(name, queue)
    return jobs.size
  }

  async nack (name: string, receipt: string, request: NackRequest): Promise<NackResult> {
    const now = this.now()
    const queue = this.queues.get(name)
    const job = this.leasedJob(queue, receipt, now)
    const q = queue as MemoryQueue
    q.leasedCount--
    job.receipt = null
    if (request.error !== undefined) job.error = request.error
    if (job.attempts >= request.maxAttempts) {
      this.kill(q, job)
      return 'dead'
    }
    if (request.delay > 0) {
      this.delay(q, job, now + request.delay)
      return 'delayed'
    }
    this.makeWaiting(q, job)
    return 'waiting'
  }

  async extend (name: string, receipt: string, lease: number): Promise<number> {
    const now = this.now()
    const job = this.leasedJob(this.queues.get(name), receipt, now)
    job.due = now + lease
    ;(this.queues.get(name) as MemoryQueue).leased.push({ due: job.due, job })
    return job.due
  }

  async counts (name: string, request: { maxAttempts: number }): Promise<QueueCounts> {
    const queue = this.queues.get(name)
    if (queue === undefined) return { waiting: 0, delayed: 0, leased: 0, dead: 0 }
    this.maintain(queue, this.now(), request.maxAttempts)
    return { waiting: queue.waitingCount, delayed: queue.delayedCount, leased: queue.leasedCount, dead: queue.dead.length }
  }

  async dead (name: string, limit: number): Promise<DeadJob[]> {
    const queue = this.queues.get(name)
    if (queue === undefined) return []
    return queue.dead.slice(0, limit).map((job) => ({ id: job.id, json: job.json, attempts: job.attempts, error: job.error, time: job.time }))
  }

  async retryDead (name: string): Promise<number> {
    const queue = this.queues.get(name)
    if (queue === undefined) return 0
    const dead = queue.dead
    queue.dead = []
    for (const job of dead) {
      job.attempts = 0
      job.error = null
      this.makeWaiting(queue, job)
    }
    return dead.length
  }

  async close (): Promise<void> {}

  private queue (name: string): MemoryQueue {
    let queue = this.queues.get(name)
    if (queue === undefined) {
      queue = { jobs: new Map(), waiting: [], head: 0, waitingCount: 0, delayed: new DueHeap(), leased: new DueHeap(), delayedCount: 0, leasedCount: 0, dead: [], keys: new Map() }
      this.queues.set(name, queue)
    }
    return queue
  }

  /** The job whose current, unexpired lease `receipt` is; otherwise LEASE_LOST. */
  private leasedJob (queue: MemoryQueue | undefined, receipt: string, now: number): MemoryJob {
    const job = queue?.jobs.get(receiptJobId(receipt))
    // A lease that passed is lost even before a claim takes the job back: another worker may have it by then.
    if (job === undefined || job.state !== LEASED || job.receipt !== receipt || job.due <= now) {
      throw new errors.LeaseLost(receipt.slice(0, 80))
    }
    return job
  }

  /**
   * Makes due delayed jobs available and takes back passed leases (to waiting, or dead when out of attempts).
   * Returns how many leases it took back, and how many of those died.
   */
  private maintain (queue: MemoryQueue, now: number, maxAttempts: number): { expired: number, died: number } {
    let expired = 0
    let died = 0
    for (let top = queue.delayed.peek(); top !== undefined && top.due <= now; top = queue.delayed.peek()) {
      queue.delayed.pop()
      if (top.job.state !== DELAYED || top.job.due !== top.due) continue
      queue.delayedCount--
      this.makeWaiting(queue, top.job)
    }
    for (let top = queue.leased.peek(); top !== undefined && top.due <= now; top = queue.leased.peek()) {
      queue.leased.pop()
      const { job } = top
      if (job.state !== LEASED || job.due !== top.due) continue // acked, nacked, or extended since
      queue.leasedCount--
      job.receipt = null
      expired++
      if (job.attempts >= maxAttempts) {
        this.kill(queue, job)
        died++
      } else {
        this.makeWaiting(queue, job)
      }
    }
    return { expired, died }
  }

  private makeWaiting (queue: MemoryQueue, job: MemoryJob): void {
    job.state = WAITING
    queue.waiting.push(job)
    queue.waitingCount++
  }

  private delay (queue: MemoryQueue, job: MemoryJob, due: number): void {
    job.state = DELAYED
    job.due = due
    queue.delayed.push({ due, job })
    queue.delayedCount++
  }

  private kill (queue: MemoryQueue, job: MemoryJob): void {
    job.state = DEAD
    queue.dead.push(job)
  }

  private nextDue (queue: MemoryQueue, now: number): number | null {
    // Stale tops (settled or extended since) would only make the timer fire early: drop them first.
    const stale = (top: Timed | undefined, state: JobState): boolean => top !== undefined && (top.job.state !== state || top.job.due !== top.due)
    while (stale(queue.delayed.peek(), DELAYED)) queue.delayed.pop()
    while (stale(queue.leased.peek(), LEASED)) queue.leased.pop()
    const delayed = queue.delayed.peek()?.due ?? Infinity
    const leased = queue.leased.peek()?.due ?? Infinity
    const next = Math.min(delayed, leased)
    return next === Infinity ? null : Math.max(0, next - now)
  }

  private compactWaiting (queue: MemoryQueue): void {
    if (queue.head > 1024 && queue.head * 2 > queue.waiting.length) {
      queue.waiting = queue.waiting.slice(queue.head)
      queue.head = 0
    }
  }

  private expireKeys (queue: MemoryQueue, now: number): void {
    for (const [key, seen] of queue.keys) {
      if (seen.expiresAt > now) break
      queue.keys.delete(key)
    }
  }

  private dropIfEmpty (name: string, queue: MemoryQueue): void {
    this.expireKeys(queue, this.now())
    if (queue.jobs.size === 0 && queue.keys.size === 0) this.queues.delete(name)
  }
}

/** `<job id>.<128 random bits>`: finds the job in O(1) and cannot be guessed. */
function newReceipt (id: string): string {
  return `${id}.${randomBytes(16).toString('base64url')}`
}

function receiptJobId (receipt: string): string {
  const dot = receipt.lastIndexOf('.')
  return dot < 0 ? '' : receipt.slice(0, dot)
}
