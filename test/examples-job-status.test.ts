// examples/job-status: the API enqueues, separate worker processes claim over HTTP (LongPollWorker) and report
// progress, a client follows the job's channel. Checked for real: worker processes, one killed mid-job with
// SIGKILL, the other finishing the job after the lease; every report seen once, in order; long polling making
// far fewer requests than short polling.
import t from 'tap'
import { existsSync } from 'node:fs'
import type { FastifyInstance } from 'fastify'

const root = new URL('../', import.meta.url)
if (!existsSync(new URL('dist/esm/index.js', root))) {
  throw new Error('dist/ is missing: the examples import the built package; run `npm run build` first')
}

interface Side { requests: number, updates: number, steps: number[], workers: string[], meanDelayMs: number, maxDelayMs: number }
interface Start { worker: string, attempt: number, at: number }
interface Result {
  longPoll: Side
  shortPoll: Side
  starts: Start[]
  requests: Record<string, Record<string, number>>
  pickupMs: number | null
  killed: { worker: string, at: number } | null
  takeoverMs: number | null
  takenOverBy: string | null
}
// Plain JavaScript examples: computed specifiers keep the type checker out of them.
const { run } = await import(new URL('examples/job-status/run.js', root).href) as {
  run: (options: { durationMs: number, steps: number, leaseMs: number, killAfter: number, intervalMs: number }) => Promise<Result>
}
const { build } = await import(new URL('examples/job-status/server.js', root).href) as {
  build: (options?: { logger?: boolean, workerToken?: string }) => Promise<FastifyInstance>
}

const total = (requests: Result['requests'], kind: string): number => Object.values(requests).reduce((sum, counts) => sum + (counts[kind] ?? 0), 0)

t.test('a job runs on a worker process: every report followed once, in order, with far fewer requests than short polling', async (t) => {
  const steps = 4
  const result = await run({ durationMs: 4000, steps, leaseMs: 2000, killAfter: 0, intervalMs: 250 })
  const { longPoll, shortPoll } = result
  t.comment(`long poll: ${longPoll.requests} requests; short poll: ${shortPoll.requests}; pickup ${result.pickupMs} ms`)
  t.same(longPoll.steps, [0, 1, 2, 3, 4], 'the long poll saw the queued report and every step, in order')
  t.equal(new Set(longPoll.workers.slice(1)).size, 1, 'one worker ran the whole job')
  t.same(result.starts.map((s) => s.attempt), [1], 'started once')
  t.ok(longPoll.requests <= steps + 1, `at most one long-poll request per report (made ${longPoll.requests})`)
  t.ok(shortPoll.requests >= 12, `short polling asked every 250 ms for 4 s (made ${shortPoll.requests})`)
  t.ok(longPoll.requests * 2 < shortPoll.requests, 'long polling made far fewer requests')
  t.equal(total(result.requests, 'ack'), 1, 'the job was acked once')
  t.equal(total(result.requests, 'nack'), 0)
  t.ok(total(result.requests, 'extend') >= 2, 'the 4 s job outlived its 2 s lease by extending it')
  t.equal(result.killed, null)
})

t.test('the worker killed mid-job: the other takes the job over after the lease and finishes it from where it was', async (t) => {
  const steps = 4
  const leaseMs = 1500
  const result = await run({ durationMs: 4000, steps, leaseMs, killAfter: 1, intervalMs: 500 })
  const { longPoll } = result
  t.comment(`takeover ${result.takeoverMs} ms after the kill (lease ${leaseMs} ms)`)
  t.same(longPoll.steps, [0, 1, 2, 3, 4], 'every step seen once, in order, across the takeover')
  const killed = result.killed?.worker
  t.ok(killed !== undefined, 'a worker was killed')
  t.equal(longPoll.workers[1], killed, 'the killed worker reported step 1')
  t.ok(longPoll.workers.slice(2).every((w) => w === result.takenOverBy && w !== killed), 'the other worker reported steps 2–4')
  t.same(result.starts.map((s) => [s.worker === killed ? 'killed' : 'other', s.attempt]), [['killed', 1], ['other', 2]], 'attempt 2 went to the other worker')
  const takeover = result.takeoverMs as number
  // The last extend before the kill left at least half a lease: nobody may get the job sooner.
  t.ok(takeover >= leaseMs / 2 - 50, `not before the lease passed (${takeover} ms)`)
  t.ok(takeover <= leaseMs + 3000, `soon after the lease passed (${takeover} ms)`)
  t.equal(total(result.requests, 'ack'), 1, 'acked once, by the worker that finished it')
  t.equal(result.requests[killed as string]?.ack ?? 0, 0, 'the killed worker acked nothing')
  t.equal(result.requests[killed as string]?.progress, 1, 'the killed worker reported one step')
})

t.test('the API: validated jobs, 404 for unknown ones, and only workers may claim, settle or report', async (t) => {
  const app = await build({ logger: false, workerToken: 'secret' })
  t.teardown(() => app.close())
  const worker = { authorization: 'Bearer secret' }
  t.equal((await app.inject({ method: 'POST', url: '/jobs', payload: { durationMs: 5 } })).statusCode, 400)
  t.equal((await app.inject({ method: 'GET', url: '/jobs/00000000-0000-0000-0000-000000000000' })).statusCode, 404)

  const created = await app.inject({ method: 'POST', url: '/jobs', payload: { durationMs: 1000, steps: 1 } })
  t.equal(created.statusCode, 202)
  const { id, channel, status } = created.json()
  t.equal(channel, `job:${id}`)
  t.match((await app.inject({ method: 'GET', url: status })).json(), { id, step: 0, state: 'queued', progress: 0 })
  t.match((await app.inject({ method: 'GET', url: `/lp/poll?channel=${channel}` })).json(), { status: 'ok', messages: [{ data: { state: 'queued' } }] }, 'anyone may follow the job')

  t.equal((await app.inject({ method: 'POST', url: '/lp/queues/jobs/claim', payload: { timeout: 0 } })).statusCode, 403, 'no claim without the token')
  t.equal((await app.inject({ method: 'POST', url: '/lp/queues/jobs/jobs', headers: worker, payload: { data: {} } })).statusCode, 403, 'no HTTP enqueue, even for a worker')
  t.equal((await app.inject({ method: 'POST', url: '/lp/push', payload: { channel, data: { state: 'done' } } })).statusCode, 404, 'no forged report: the push route is off')
  t.equal((await app.inject({ method: 'DELETE', url: `/lp/disconnect?channel=${channel}` })).statusCode, 404, 'and so is disconnect')
  const report = { step: 1, state: 'done', progress: 100, attempt: 1, worker: 'w' }
  t.equal((await app.inject({ method: 'POST', url: `/jobs/${id}/progress`, payload: report })).statusCode, 403, 'no report without the token')

  const claim = (await app.inject({ method: 'POST', url: '/lp/queues/jobs/claim', headers: worker, payload: { timeout: 0 } })).json()
  t.match(claim, { status: 'ok', jobs: [{ data: { id, steps: 1, durationMs: 1000 }, attempt: 1 }] }, 'a worker claims the job')
  t.same((await app.inject({ method: 'POST', url: `/jobs/${id}/progress`, headers: worker, payload: report })).json(), { duplicate: false })
  t.same((await app.inject({ method: 'POST', url: `/jobs/${id}/progress`, headers: worker, payload: report })).json(), { duplicate: true }, 'a step reported twice is stored once')
  const messages = (await app.inject({ method: 'GET', url: `/lp/poll?channel=${channel}` })).json().messages
  t.same(messages.map((m: { data: { step: number } }) => m.data.step), [0, 1], 'the channel has each step once')
  t.equal((await app.inject({ method: 'POST', url: '/lp/queues/jobs/ack', headers: worker, payload: { receipt: claim.jobs[0].receipt } })).statusCode, 200)
  t.equal((await app.inject({ method: 'GET', url: '/lp/poll?channel=room:x&timeout=0' })).statusCode, 400, 'only job channels')
})
