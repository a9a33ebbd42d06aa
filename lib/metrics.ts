// Prometheus metrics through prom-client, an optional peer dependency: loaded at register, and only with
// `metrics` on. Type-only import, so this module loads (and the package's types compile) without it.
import type * as PromClient from 'prom-client'
import { errors } from './errors.js'

/**
 * A prom-client `Registry` (or its global `register`), declared by the shape the plugin uses so that the
 * package's types compile for users who do not install prom-client.
 */
export interface MetricsRegistry {
  getSingleMetric (name: string): unknown
  removeSingleMetric (name: string): void
  registerMetric (metric: any): void
}

export interface MetricsOptions {
  /** Where the metrics are registered. Default: prom-client's global registry (what fastify-metrics exposes). */
  registry?: MetricsRegistry
  /** Replaces `longpoll_` at the start of every metric name. Default `longpoll_`. */
  prefix?: string
}

/** Why a poll (or a claim) was refused. */
export type RejectReason = 'max_held_polls' | 'max_held_polls_per_client' | 'closing' | 'unavailable'
/** Refusals counted in `longpoll_polls_rejected_total{reason}`, by error code (polls and claims alike). */
export const REJECT_REASONS: Record<string, RejectReason | undefined> = {
  FST_LONGPOLL_TOO_MANY_POLLS: 'max_held_polls',
  FST_LONGPOLL_TOO_MANY_CLIENT_POLLS: 'max_held_polls_per_client',
  FST_LONGPOLL_CLOSING: 'closing',
  FST_LONGPOLL_STORE_UNAVAILABLE: 'unavailable',
  FST_LONGPOLL_NOTIFIER_UNAVAILABLE: 'unavailable'
}
export type AnswerStatus = 'ok' | 'timeout' | 'disconnected'
export type StoreOperation = 'append' | 'read' | 'delete' | 'queue'
export type JobEvent = 'enqueued' | 'claimed' | 'acked' | 'nacked' | 'expired' | 'dead'

/**
 * What the plugin counts. With metrics off every method is an empty function, decided once at register, so a
 * call on the hot path costs a call and nothing else.
 */
export interface Metrics {
  readonly enabled: boolean
  /** A message was stored (not a duplicate). */
  pushed (): void
  /** A poll was answered 200 with this status. */
  answered (status: AnswerStatus): void
  /**
   * `polls` answers carrying these messages were written at `now` (ms): counts them and observes, per message
   * per poll, the seconds from the message's store time to now.
   */
  delivered (messages: ReadonlyArray<{ time: number }>, polls: number, now: number): void
  /** A poll (or claim) was refused. */
  rejected (reason: RejectReason): void
  /** A store operation failed. */
  storeError (operation: StoreOperation): void
  /** A queue job event. */
  job (event: JobEvent, n?: number): void
  /** Removes the metrics from their registry (on app close), so the names can be registered again. */
  close (): void
}

export const METRIC_NAMES = [
  'held_polls', 'pushed_total', 'delivered_total', 'polls_answered_total', 'polls_rejected_total',
  'delivery_seconds', 'store_errors_total', 'jobs_total'
] as const

const DEFAULT_PREFIX = 'longpoll_'
const PREFIX = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/
/** Seconds: long polls answer within milliseconds of a push; seconds mean a client was between polls. */
const DELIVERY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

function nothing (): void {}

/**
 * `longpoll_delivery_seconds`: a histogram whose observations carry a count, so that one message answered to n
 * polls at once is one call, not n. prom-client's Histogram takes one value per call, and n calls per fan-out
 * message cost 13% more CPU per delivered message than metrics off (bench/metrics-overhead.js, 2,000 polls);
 * this costs O(buckets) per message per answered group. It is registered in the prom-client registry like any
 * metric: the registry reads it through `get()` (the shape prom-client's own metrics return).
 */
class DeliveryHistogram {
  readonly type = 'histogram'
  readonly aggregator = 'sum'
  /** Observations per bucket (not cumulative); the last is +Inf. */
  private readonly counts: number[]
  private sum = 0
  private count = 0

  constructor (readonly name: string, readonly help: string, private readonly buckets: number[]) {
    this.counts = new Array<number>(buckets.length + 1).fill(0)
  }

  observe (seconds: number, n: number): void {
    let i = 0
    while (i < this.buckets.length && seconds > (this.buckets[i] as number)) i++
    this.counts[i] = (this.counts[i] as number) + n
    this.sum += seconds * n
    this.count += n
  }

  reset (): void {
    this.counts.fill(0)
    this.sum = 0
    this.count = 0
  }

  async get (): Promise<{ name: string, help: string, type: string, aggregator: string, values: Array<{ labels: Record<string, string | number>, value: number, metricName: string }> }> {
    const values = []
    let cumulative = 0
    for (let i = 0; i < this.counts.length; i++) {
      cumulative += this.counts[i] as number
      values.push({ labels: { le: i < this.buckets.length ? this.buckets[i] as number : '+Inf' }, value: cumulative, metricName: `${this.name}_bucket` })
    }
    values.push({ labels: {}, value: this.sum, metricName: `${this.name}_sum` })
    values.push({ labels: {}, value: this.count, metricName: `${this.name}_count` })
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values }
  }
}

/** Metrics off: every counter is the same empty function. */
export const noMetrics: Metrics = Object.freeze({
  enabled: false,
  pushed: nothing,
  answered: nothing,
  delivered: nothing,
  rejected: nothing,
  storeError: nothing,
  job: nothing,
  close: nothing
})

/** The `metrics` option, normalized: `false`, or where and under which prefix. */
export type NormalizedMetrics = false | { registry: MetricsRegistry | null, prefix: string }

export function normalizeMetrics (value: unknown): NormalizedMetrics {
  if (value === undefined || value === false) return false
  if (value === true) return { registry: null, prefix: DEFAULT_PREFIX }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new errors.InvalidOption('metrics', 'must be true, false or { registry, prefix }')
  for (const key of Object.keys(value)) {
    if (key !== 'registry' && key !== 'prefix') throw new errors.InvalidOption(`metrics.${key}`, 'is not an option of metrics; they are registry and prefix')
  }
  const { registry, prefix } = value as MetricsOptions
  if (registry !== undefined && !['getSingleMetric', 'removeSingleMetric', 'registerMetric'].every((method) => typeof (registry as unknown as Record<string, unknown>)?.[method] === 'function')) {
    throw new errors.InvalidOption('metrics.registry', 'must be a prom-client Registry')
  }
  if (prefix !== undefined && (typeof prefix !== 'string' || !PREFIX.test(prefix))) {
    throw new errors.InvalidOption('metrics.prefix', `must match ${PREFIX.source} (a Prometheus metric name start), got ${String(prefix)}`)
  }
  return { registry: registry ?? null, prefix: prefix ?? DEFAULT_PREFIX }
}

async function loadPromClient (): Promise<typeof PromClient> {
  let loaded: unknown
  try {
    // A dynamic import in both builds: native in the ESM build; in the CommonJS one, TypeScript turns it into a
    // require(). prom-client is CommonJS: its exports are on `default` (and, in ESM, maybe also named).
    loaded = await import('prom-client')
  } catch (err) {
    const code = (err as { code?: string }).code
    if ((code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') && String((err as Error).message).includes('prom-client')) {
      throw new errors.MissingPackage('metrics', 'prom-client', 'prom-client')
    }
    throw err
  }
  const module = loaded as typeof PromClient & { default?: typeof PromClient }
  return module.default ?? module
}

/**
 * Registers the metrics of one plugin registration. Every name is checked before any is created, so a clash
 * registers nothing. `heldPolls` is read at scrape time: the gauge costs nothing between scrapes.
 */
export async function createMetrics (options: NormalizedMetrics, heldPolls: () => number): Promise<Metrics> {
  if (options === false) return noMetrics
  const client = await loadPromClient()
  const registry = (options.registry ?? client.register) as PromClient.Registry
  const name = (metric: typeof METRIC_NAMES[number]): string => options.prefix + metric
  for (const metric of METRIC_NAMES) {
    if (registry.getSingleMetric(name(metric)) !== undefined) {
      throw new errors.InvalidOption('metrics', `the registry already has a metric named ${name(metric)} (another fastify-longpoll registration?): give each registration its own prefix`)
    }
  }
  const registers = [registry]
  const created: string[] = []
  const track = <T>(metric: T, metricName: string): T => { created.push(metricName); return metric }
  try {
    track(new client.Gauge({
      name: name('held_polls'),
      help: 'Polls this instance holds now.',
      registers,
      collect () { this.set(heldPolls()) }
    }), name('held_polls'))
    const pushed = track(new client.Counter({ name: name('pushed_total'), help: 'Messages stored through this instance.', registers }), name('pushed_total'))
    const delivered = track(new client.Counter({ name: name('delivered_total'), help: 'Messages written into poll answers (one message answered to 3 polls counts 3).', registers }), name('delivered_total'))
    const answered = track(new client.Counter({ name: name('polls_answered_total'), help: 'Polls answered 200, by status.', labelNames: ['status'], registers }), name('polls_answered_total'))
    const rejected = track(new client.Counter({ name: name('polls_rejected_total'), help: 'Polls and claims refused, by reason.', labelNames: ['reason'], registers }), name('polls_rejected_total'))
    const delay = track(new DeliveryHistogram(name('delivery_seconds'), 'Seconds from a message being stored to a poll answer carrying it being written.', DELIVERY_BUCKETS), name('delivery_seconds'))
    registry.registerMetric(delay as unknown as PromClient.Metric)
    const storeErrors = track(new client.Counter({ name: name('store_errors_total'), help: 'Store operations that failed, by operation.', labelNames: ['op'], registers }), name('store_errors_total'))
    const jobs = track(new client.Counter({ name: name('jobs_total'), help: 'Queue job events.', labelNames: ['event'], registers }), name('jobs_total'))

    // Children bound once: a labelled inc() would hash its labels on every call.
    const byStatus = { ok: answered.labels('ok'), timeout: answered.labels('timeout'), disconnected: answered.labels('disconnected') }
    const byReason = {
      max_held_polls: rejected.labels('max_held_polls'),
      max_held_polls_per_client: rejected.labels('max_held_polls_per_client'),
      closing: rejected.labels('closing'),
      unavailable: rejected.labels('unavailable')
    }
    return {
      enabled: true,
      pushed: () => pushed.inc(),
      answered: (status) => byStatus[status].inc(),
      delivered (messages, polls, now) {
        if (messages.length === 0 || polls === 0) return
        delivered.inc(messages.length * polls)
        for (const message of messages) delay.observe(Math.max(0, now - message.time) / 1000, polls)
      },
      rejected: (reason) => byReason[reason].inc(),
      storeError: (operation) => storeErrors.inc({ op: operation }),
      job: (event, n = 1) => jobs.inc({ event }, n),
      close () {
        for (const metricName of created) registry.removeSingleMetric(metricName)
        created.length = 0
      }
    }
  } catch (err) {
    for (const metricName of created) registry.removeSingleMetric(metricName)
    throw err
  }
}
