// examples/job-status: the same job followed by a long poll and by short polling; long polling must make far
// fewer requests and still see every progress report, in order.
import t from 'tap'
import { existsSync } from 'node:fs'
import type { FastifyInstance } from 'fastify'

const root = new URL('../', import.meta.url)
if (!existsSync(new URL('dist/esm/index.js', root))) {
  throw new Error('dist/ is missing: the examples import the built package; run `npm run build` first')
}

interface Side { requests: number, updates: number, versions: number[], meanDelayMs: number, maxDelayMs: number }
// Plain JavaScript examples: computed specifiers keep the type checker out of them.
const { compare } = await import(new URL('examples/job-status/compare.js', root).href) as {
  compare: (options: { durationMs: number, steps: number, intervalMs: number }) => Promise<{ longPoll: Side, shortPoll: Side }>
}
const { build } = await import(new URL('examples/job-status/server.js', root).href) as {
  build: (options?: { logger?: boolean, durationMs?: number, steps?: number }) => Promise<FastifyInstance>
}

t.test('long polling makes far fewer requests than short polling for the same job', async (t) => {
  // The README's run (a 60 s job, 10 reports, short polls every 2 s) made 6 times shorter.
  const steps = 10
  const { longPoll, shortPoll } = await compare({ durationMs: 10_000, steps, intervalMs: 333 })
  t.comment(`long poll: ${longPoll.requests} requests; short poll: ${shortPoll.requests} requests`)

  t.same(longPoll.versions, Array.from({ length: steps + 1 }, (_, i) => i + 1), 'the long poll saw every report, in order')
  t.ok(longPoll.requests <= steps + 1, `at most one long-poll request per report (made ${longPoll.requests})`)
  t.ok(shortPoll.requests >= 20, `short polling asked every 333 ms for 10 s (made ${shortPoll.requests})`)
  t.ok(longPoll.requests * 2 < shortPoll.requests, `long polling made far fewer requests (${longPoll.requests} vs ${shortPoll.requests})`)
  t.equal(shortPoll.versions.at(-1), steps + 1, 'short polling saw the job done as well')
})

t.test('the job server validates jobs and answers 404 for unknown ones', async (t) => {
  const app = await build({ logger: false })
  t.teardown(() => app.close())
  const bad = await app.inject({ method: 'POST', url: '/jobs', payload: { durationMs: 5 } })
  t.equal(bad.statusCode, 400)
  const missing = await app.inject({ method: 'GET', url: '/jobs/00000000-0000-0000-0000-000000000000' })
  t.equal(missing.statusCode, 404)

  const created = await app.inject({ method: 'POST', url: '/jobs', payload: { durationMs: 1000, steps: 1 } })
  t.equal(created.statusCode, 202)
  const { id, channel, status } = created.json()
  t.equal(channel, `job:${id}`)
  t.match((await app.inject({ method: 'GET', url: status })).json(), { id, version: 1, state: 'queued', progress: 0 })
  // A long poll from the start of the channel answers at once with the queued report, then with "done".
  const first = (await app.inject({ method: 'GET', url: `/lp/poll?channel=${channel}` })).json()
  t.match(first, { status: 'ok', messages: [{ data: { state: 'queued' } }] })
  const done = (await app.inject({ method: 'GET', url: `/lp/poll?channel=${channel}&cursor=${first.cursor}&timeout=10000` })).json()
  t.match(done, { status: 'ok', messages: [{ data: { state: 'done', progress: 100, version: 2 } }] })
  const other = await app.inject({ method: 'GET', url: '/lp/poll?channel=room:x&timeout=0' })
  t.equal(other.statusCode, 400, 'only job channels')
})
