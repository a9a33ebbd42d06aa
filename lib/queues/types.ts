/** A job handed to a worker by a claim. `json` is the job's data exactly as enqueued (serialized once). */
export interface ClaimedJob {
  id: string
  json: string
  /** 1 for the first lease of the job, 2 for the second... */
  attempt: number
  /** Proof of this lease: ack, nack and extend need it. A new lease of the same job gets a new receipt. */
  receipt: string
  /** Epoch ms, in the store's clock, when the lease passes. */
  leaseUntil: number
  /** Epoch ms when the job was enqueued. */
  time: number
}

export interface ClaimRequest {
  /** Most jobs to lease. */
  limit: number
  /** Milliseconds each job is this claim's alone. */
  lease: number
  /** A job whose lease passes after this many leases moves to the dead letters instead of being leased again. */
  maxAttempts: number
}

export interface ClaimResult {
  /** Up to `limit` jobs, leased to this claim, oldest first. */
  jobs: ClaimedJob[]
  /** Jobs still available after this claim: the caller wakes that many more of its held claims. */
  waiting: number
  /**
   * Milliseconds until the queue's next time-based event the store knows of — a delayed job becoming available,
   * a lease passing — or null when there is none. A process holding claims keeps one timer for it.
   */
  nextDueIn: number | null
  /** Passed leases this call took back (to waiting or dead), for the `expired` metric. Optional. */
  expired?: number
  /** Of those, how many went to the dead letters, for the `dead` metric. Optional. */
  died?: number
}

export interface EnqueueRequest {
  /** Milliseconds before the job may be claimed (0: at once). */
  delay: number
  /** De-duplicating key: a repeat within `keyTtl` stores nothing and returns the first job's id. */
  key?: string
  /** Milliseconds a key is remembered. */
  keyTtl: number
}

export interface EnqueueResult {
  id: string
  /** The key was already used: nothing was stored, `id` is the first job's. */
  duplicate: boolean
}

export interface NackRequest {
  /** Milliseconds before the job may be claimed again (0: at once). */
  delay: number
  /** Kept with the job; a dead letter shows the last one. */
  error?: string
  /** As in ClaimRequest: a nack of the job's last allowed attempt moves it to the dead letters. */
  maxAttempts: number
}

/** Where a nacked job went. */
export type NackResult = 'waiting' | 'delayed' | 'dead'

export interface QueueCounts {
  /** Available now. */
  waiting: number
  /** Available later (enqueued with a delay, or nacked with one). */
  delayed: number
  /** Leased to a worker. */
  leased: number
  /** Dead letters: out of attempts. */
  dead: number
}

export interface DeadJob {
  id: string
  json: string
  /** Leases the job had. */
  attempts: number
  /** The last error a nack gave, or null when its leases passed without one. */
  error: string | null
  /** Epoch ms when the job was enqueued. */
  time: number
}

/**
 * Where jobs live. Every method that changes a job is one atomic step — claim (which also makes due delayed
 * jobs available and takes back jobs whose lease passed), ack, nack, extend — so that concurrent claims, from
 * any number of processes, never lease one job twice while its lease holds, and a crash between two calls
 * loses no job. Time is the store's own clock (for Redis, the server's), so leases mean the same to every
 * process. Run the exported queue conformance suite against your own implementation.
 */
export interface LongPollQueueStore {
  /** Stores a job; resolves only once every later claim can get it. */
  enqueue (queue: string, json: string, request: EnqueueRequest): Promise<EnqueueResult>
  claim (queue: string, request: ClaimRequest): Promise<ClaimResult>
  /**
   * Deletes the leased jobs of these receipts, all or none: when any receipt is not the current lease of its
   * job (acked, nacked, passed, unknown), throws FST_LONGPOLL_LEASE_LOST (409) and changes nothing.
   * Resolves with the number of jobs deleted.
   */
  ack (queue: string, receipts: string[]): Promise<number>
  /** Ends the lease early; the job is available again after `delay`, or dead. A stale receipt: LEASE_LOST. */
  nack (queue: string, receipt: string, request: NackRequest): Promise<NackResult>
  /** Moves the lease's end to `lease` ms from now; the receipt stays valid. Resolves with the new leaseUntil. */
  extend (queue: string, receipt: string, lease: number): Promise<number>
  /**
   * Counts the jobs as the next claim would see them: it first makes due jobs available and takes back passed
   * leases (dead-lettering those with `maxAttempts` leases), as a claim does.
   */
  counts (queue: string, request: { maxAttempts: number }): Promise<QueueCounts>
  /** Up to `limit` dead letters, oldest first. */
  dead (queue: string, limit: number): Promise<DeadJob[]>
  /** Makes every dead letter available again with its attempts reset; resolves with how many. */
  retryDead (queue: string): Promise<number>
  /** Releases what the store owns (timers, connections it created). Called by the plugin on `app.close()`. */
  close (): Promise<void>
}
