// Operations on the queue paths (contract §4): longpoll_jobs_total{event} moves with enqueue, claim, ack, nack
// and dead letters; held claims count against maxHeldPollsPerClient like polls, and release their slot.
import t from 'tap'
import { Registry } from 'prom-client'
import { makeApp, until } from './helpers/app.js'

function sample (text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `))
  return line === undefined ? undefined : Number(line.slice(series.length + 1))
}

t.test('jobs_total counts enqueued, claimed, acked, nacked and dead jobs', async (t) => {
  const registry = new Registry()
  const app = await makeApp(t, { metrics: { registry }, maxAttempts: 1 })
  const post = (path: string, payload: unknown) => app.inject({ method: 'POST', url: `/lp/queues/work/${path}`, payload: payload as object })
  t.equal((await post('jobs', { data: 1, key: 'once' })).statusCode, 201)
  t.equal((await post('jobs', { data: 1, key: 'once' })).statusCode, 200, 'a duplicate enqueues nothing')
  await app.longpoll.queue('work').enqueue(2)
  const claimed = (await post('claim', { timeout: 0, limit: 2 })).json()
  t.equal(claimed.jobs.length, 2)
  t.equal((await post('ack', { receipt: claimed.jobs[0].receipt })).json().acked, 1)
  t.equal((await post('nack', { receipt: claimed.jobs[1].receipt, error: 'boom' })).statusCode, 200)
  const text = await registry.metrics()
  t.equal(sample(text, 'longpoll_jobs_total{event="enqueued"}'), 2)
  t.equal(sample(text, 'longpoll_jobs_total{event="claimed"}'), 2)
  t.equal(sample(text, 'longpoll_jobs_total{event="acked"}'), 1)
  t.equal(sample(text, 'longpoll_jobs_total{event="nacked"}'), 1)
  t.equal(sample(text, 'longpoll_jobs_total{event="dead"}'), 1, 'maxAttempts 1: the nacked job is dead')
})

t.test('held claims count against maxHeldPollsPerClient with polls, and release their slot when answered', async (t) => {
  const registry = new Registry()
  const app = await makeApp(t, { maxHeldPollsPerClient: 1, metrics: { registry } })
  const claim = app.inject({ method: 'POST', url: '/lp/queues/work/claim', payload: { timeout: 20_000 } })
  await until(() => app.longpoll.stats().heldClaims === 1, 10_000, 'a held claim')
  const poll = await app.inject('/lp/poll?channel=a&timeout=20000')
  t.equal(poll.statusCode, 429, 'a poll past the client\'s limit')
  const second = await app.inject({ method: 'POST', url: '/lp/queues/other/claim', payload: { timeout: 20_000 } })
  t.equal(second.statusCode, 429, 'a second claim too')
  t.ok(second.headers['retry-after'])
  t.equal(sample(await registry.metrics(), 'longpoll_polls_rejected_total{reason="max_held_polls_per_client"}'), 2)
  await app.longpoll.queue('work').enqueue('job')
  t.equal((await claim).json().jobs.length, 1)
  const again = app.inject('/lp/poll?channel=a&cursor=latest&timeout=20000')
  await until(() => app.longpoll.stats().heldPolls === 1, 10_000, 'the poll held once the claim left')
  await app.longpoll.push('a', 1)
  t.equal((await again).statusCode, 200)
})
