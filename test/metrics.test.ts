// Prometheus metrics (contract §4) through prom-client: the names, where they are registered, clashes, and
// values that move, scraped through fastify-metrics (the plugin users expose /metrics with) and through
// prom-client's own registry.
import t from 'tap'
import Fastify from 'fastify'
import fastifyMetricsModule from 'fastify-metrics'
import { Registry, register as globalRegistry } from 'prom-client'
import longpoll, { type LongPollOptions, type LongPollStore } from '../lib/index.js'
import { MemoryStore } from '../lib/index.js'
import { heldPolls, makeApp } from './helpers/app.js'

// fastify-metrics is CommonJS with `exports.default`: from ESM, its plugin is the default import's `default`.
const fastifyMetrics = fastifyMetricsModule.default

const NAMES = [
  'longpoll_held_polls', 'longpoll_pushed_total', 'longpoll_delivered_total', 'longpoll_polls_answered_total',
  'longpoll_polls_rejected_total', 'longpoll_delivery_seconds', 'longpoll_store_errors_total', 'longpoll_jobs_total'
]

/** The value of one sample in Prometheus text format, e.g. `longpoll_polls_answered_total{status="ok"}`. */
function sample (text: string, series: string): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith(`${series} `)) return Number(line.slice(series.length + 1))
  }
  return undefined
}

t.test('metrics: true registers the names of the contract in prom-client\'s global registry; close removes them', async (t) => {
  const app = Fastify()
  await app.register(longpoll, { metrics: true })
  await app.ready()
  for (const name of NAMES) t.ok(globalRegistry.getSingleMetric(name), `${name} registered`)
  t.match(await globalRegistry.getSingleMetricAsString('longpoll_delivery_seconds'), /^# TYPE longpoll_delivery_seconds histogram$/m)
  t.equal((globalRegistry.getSingleMetric('longpoll_held_polls') as unknown as { constructor: { name: string } }).constructor.name, 'Gauge')
  await app.close()
  for (const name of NAMES) t.notOk(globalRegistry.getSingleMetric(name), `${name} removed on close`)
})

t.test('without metrics nothing is registered', async (t) => {
  await makeApp(t)
  await makeApp(t, { metrics: false })
  t.notOk(NAMES.some((name) => globalRegistry.getSingleMetric(name)))
})

t.test('scraped through fastify-metrics, the counters and the held-polls gauge move', async (t) => {
  const app = Fastify({ forceCloseConnections: true })
  t.teardown(() => app.close())
  await app.register(fastifyMetrics, { endpoint: '/metrics', defaultMetrics: { enabled: false }, routeMetrics: { enabled: false } })
  await app.register(longpoll, { prefix: '/lp', metrics: true })
  await app.ready()
  const scrape = async (): Promise<string> => (await app.inject('/metrics')).body

  const before = await scrape()
  t.equal(sample(before, 'longpoll_pushed_total'), 0)
  t.equal(sample(before, 'longpoll_held_polls'), 0)
  await app.inject({ method: 'POST', url: '/lp/push', payload: { channel: 'a', data: 1 } })
  await app.longpoll.push('a', 2)
  await app.longpoll.push('a', 3, { key: 'k' })
  await app.longpoll.push('a', 3, { key: 'k' }) // a duplicate stores nothing and counts nothing
  const held = app.inject('/lp/poll?channel=b&timeout=10000')
  await heldPolls(app, 1)
  const during = await scrape()
  t.equal(sample(during, 'longpoll_pushed_total'), 3, 'three messages stored')
  t.equal(sample(during, 'longpoll_held_polls'), 1, 'one poll held, read at scrape time')
  await app.longpoll.push('b', 'wake')
  t.equal((await held).json().status, 'ok')
  await app.inject('/lp/poll?channel=a&timeout=0') // three messages at once
  await app.inject('/lp/poll?channel=empty&timeout=0')
  const after = await scrape()
  t.equal(sample(after, 'longpoll_held_polls'), 0)
  t.equal(sample(after, 'longpoll_polls_answered_total{status="ok"}'), 2)
  t.equal(sample(after, 'longpoll_polls_answered_total{status="timeout"}'), 1)
  t.equal(sample(after, 'longpoll_delivered_total'), 4, '1 woken + 3 read at once')
  t.equal(sample(after, 'longpoll_delivery_seconds_count'), 4, 'one observation per message delivered')
  t.equal(sample(after, 'longpoll_delivery_seconds_bucket{le="+Inf"}'), 4)
  t.ok((sample(after, 'longpoll_delivery_seconds_sum') ?? -1) >= 0)
})

t.test('delivery seconds run from the store time of the message to the answer, per poll; fan-out counts each poll', async (t) => {
  const registry = new Registry()
  const app = await makeApp(t, { metrics: { registry } })
  const { id } = await app.longpoll.push('fan', 'old')
  const polls = Array.from({ length: 3 }, () => app.inject(`/lp/poll?channel=fan&cursor=${id}&timeout=10000`))
  await heldPolls(app, 3)
  await app.longpoll.push('fan', 'new')
  await Promise.all(polls)
  // A message stored 3 s before it is read (the store keeps the time it was given): a late delivery.
  const store = new MemoryStore()
  const late = await makeApp(t, { store, metrics: { registry, prefix: 'late_' } })
  await store.append('slow', '"late"', Date.now() - 3_000, { maxMessages: 10, messageTtl: 60_000 })
  await late.inject('/lp/poll?channel=slow&timeout=0')
  const text = await registry.metrics()
  t.equal(sample(text, 'longpoll_delivered_total'), 3, 'one message to three polls')
  t.equal(sample(text, 'longpoll_delivery_seconds_count'), 3)
  t.equal(sample(text, 'longpoll_delivery_seconds_bucket{le="1"}'), 3, 'all within a second')
  t.equal(sample(text, 'late_delivery_seconds_bucket{le="2.5"}'), 0, 'the late one is over 2.5 s')
  t.equal(sample(text, 'late_delivery_seconds_bucket{le="5"}'), 1, 'and under 5 s')
})

t.test('refused polls count by reason', async (t) => {
  const registry = new Registry()
  const app = await makeApp(t, { maxHeldPolls: 0, metrics: { registry } })
  t.equal((await app.inject('/lp/poll?channel=a&timeout=1000')).statusCode, 503)
  t.equal((await app.inject('/lp/poll?channel=a&timeout=1000')).statusCode, 503)
  t.equal(sample(await registry.metrics(), 'longpoll_polls_rejected_total{reason="max_held_polls"}'), 2)
  await app.close()
  t.equal(sample(await registry.metrics(), 'longpoll_polls_rejected_total{reason="max_held_polls"}'), undefined, 'removed on close')
})

t.test('prom-client\'s own registry exposes them too; a custom registry and prefix', async (t) => {
  const registry = new Registry()
  const app = await makeApp(t, { metrics: { registry, prefix: 'chat_' } })
  await app.longpoll.push('a', 1)
  const text = await registry.metrics()
  t.equal(sample(text, 'chat_pushed_total'), 1)
  t.match(text, /# TYPE chat_delivery_seconds histogram/)
  t.notOk(globalRegistry.getSingleMetric('chat_pushed_total'), 'not in the global registry')
  t.notOk(globalRegistry.getSingleMetric('longpoll_pushed_total'))
})

t.test('a failing store counts store errors by operation', async (t) => {
  const store = new MemoryStore()
  const failing: LongPollStore = {
    append: async () => { throw new Error('down') },
    read: (...args) => store.read(...args),
    delete: async () => { throw new Error('down') },
    close: () => store.close()
  }
  const registry = new Registry()
  const app = await makeApp(t, { store: failing, metrics: { registry } })
  await t.rejects(app.longpoll.push('a', 1), { code: 'FST_LONGPOLL_STORE_UNAVAILABLE' })
  await t.rejects(app.longpoll.push('a', 1), { code: 'FST_LONGPOLL_STORE_UNAVAILABLE' })
  await t.rejects(app.longpoll.disconnect('a'), { code: 'FST_LONGPOLL_STORE_UNAVAILABLE' })
  const text = await registry.metrics()
  t.equal(sample(text, 'longpoll_store_errors_total{op="append"}'), 2)
  t.equal(sample(text, 'longpoll_store_errors_total{op="delete"}'), 1)
  t.equal(sample(text, 'longpoll_pushed_total'), 0)
})

t.test('two registrations in one registry need distinct prefixes: the second fails at register naming the clash', async (t) => {
  const registry = new Registry()
  await makeApp(t, { metrics: { registry } })
  await makeApp(t, { metrics: { registry, prefix: 'other_' } })
  const clash = Fastify()
  t.teardown(() => clash.close())
  clash.register(longpoll, { metrics: { registry } })
  await t.rejects(async () => { await clash.ready() }, { code: 'FST_LONGPOLL_INVALID_OPTION', message: /"metrics".*longpoll_held_polls.*own prefix/ })
  t.ok(registry.getSingleMetric('longpoll_pushed_total'), 'the first registration keeps its metrics')
  t.ok(registry.getSingleMetric('other_pushed_total'))
})

t.test('a clash with any one name registers none of them', async (t) => {
  const registry = new Registry()
  const { Counter } = await import('prom-client')
  const own = new Counter({ name: 'longpoll_jobs_total', help: 'the user\'s own', registers: [registry] })
  const app = Fastify()
  t.teardown(() => app.close())
  app.register(longpoll, { metrics: { registry } })
  await t.rejects(async () => { await app.ready() }, { code: 'FST_LONGPOLL_INVALID_OPTION', message: /longpoll_jobs_total/ })
  t.same(registry.getMetricsAsArray().map((metric) => metric.name), ['longpoll_jobs_total'])
  t.equal(registry.getSingleMetric('longpoll_jobs_total'), own)
})

const invalid: Array<[string, unknown]> = [
  ['metrics', 'yes'],
  ['metrics', null],
  ['metrics.registry', { registry: {} }],
  ['metrics.prefix', { prefix: 'has space_' }],
  ['metrics.prefix', { prefix: '1abc_' }],
  ['metrics.buckets', { buckets: [1] }]
]
for (const [name, metrics] of invalid) {
  t.test(`metrics ${JSON.stringify(metrics)} fails register naming "${name}"`, async (t) => {
    const app = Fastify()
    t.teardown(() => app.close())
    app.register(longpoll, { metrics } as unknown as LongPollOptions)
    await t.rejects(async () => { await app.ready() }, { code: 'FST_LONGPOLL_INVALID_OPTION', message: new RegExp(`"${name.replace('.', '\\.')}"`) })
  })
}
