// `routes` chooses which HTTP routes exist (contract §4); state-changing routes left open without `authorize`
// are named in one startup warning.
import t from 'tap'
import Fastify from 'fastify'
import { Writable } from 'node:stream'
import longpoll, { type LongPollOptions } from '../lib/index.js'
import { makeApp } from './helpers/app.js'

async function statuses (t: Parameters<typeof makeApp>[0], options: LongPollOptions): Promise<Record<string, number>> {
  const app = await makeApp(t, options)
  const poll = await app.inject('/lp/poll?channel=a&timeout=0')
  const push = await app.inject({ method: 'POST', url: '/lp/push', payload: { channel: 'a', data: 1 } })
  const disconnect = await app.inject({ method: 'DELETE', url: '/lp/disconnect?channel=a' })
  return { poll: poll.statusCode, push: push.statusCode, disconnect: disconnect.statusCode }
}

t.test('every route is on by default', async (t) => {
  t.same(await statuses(t, {}), { poll: 200, push: 200, disconnect: 200 })
})

t.test('a route turned off answers 404; a partial object keeps the routes it does not name on', async (t) => {
  t.same(await statuses(t, { routes: { push: false } }), { poll: 200, push: 404, disconnect: 200 })
  t.same(await statuses(t, { routes: { poll: false } }), { poll: 404, push: 200, disconnect: 200 })
  t.same(await statuses(t, { routes: { disconnect: false } }), { poll: 200, push: 200, disconnect: 404 })
  t.same(await statuses(t, { routes: { poll: true, push: false, disconnect: false, queues: false } }), { poll: 200, push: 404, disconnect: 404 })
})

t.test('with the push and disconnect routes off, the decorator still pushes and disconnects to HTTP polls', async (t) => {
  const app = await makeApp(t, { routes: { push: false, disconnect: false } })
  const { id } = await app.longpoll.push('news', { n: 1 })
  const first = await app.inject('/lp/poll?channel=news&timeout=0')
  t.same(first.json().messages.map((m: { id: string }) => m.id), [id])
  const held = app.inject(`/lp/poll?channel=news&cursor=${id}&timeout=10000`)
  await new Promise((resolve) => setImmediate(resolve))
  await app.longpoll.disconnect('news')
  t.equal((await held).json().status, 'disconnected')
})

const invalid: Array<[string, unknown]> = [
  ['routes', 'push'],
  ['routes', null],
  ['routes', ['poll']],
  ['routes.pull', { pull: false }],
  ['routes.push', { push: 'no' }],
  ['routes.poll', { poll: 0 }]
]
for (const [name, routes] of invalid) {
  t.test(`routes ${JSON.stringify(routes)} fails register naming "${name}"`, async (t) => {
    const app = Fastify()
    t.teardown(() => app.close())
    app.register(longpoll, { routes } as unknown as LongPollOptions)
    await t.rejects(async () => { await app.ready() }, { code: 'FST_LONGPOLL_INVALID_OPTION', message: new RegExp(`"${name.replace('.', '\\.')}"`) })
  })
}

/** The warnings an app logs while it registers the plugin. */
async function startupWarnings (t: Parameters<typeof makeApp>[0], options: LongPollOptions): Promise<Array<{ msg: string, routes?: string[] }>> {
  const lines: string[] = []
  const stream = new Writable({ write (chunk, _encoding, done) { lines.push(String(chunk)); done() } })
  const app = Fastify({ logger: { level: 'warn', stream } })
  t.teardown(() => app.close())
  await app.register(longpoll, { prefix: '/lp', ...options })
  await app.ready()
  return lines.map((line) => JSON.parse(line)).filter((record) => record.level === 40)
}

t.test('without authorize, one warning at startup names the open routes and how to close them', async (t) => {
  const warnings = await startupWarnings(t, {})
  t.equal(warnings.length, 1, 'one warning')
  const [warning] = warnings
  t.same(warning?.routes, ['POST /lp/push', 'DELETE /lp/disconnect', '/lp/queues/*'])
  t.match(warning?.msg, /POST \/lp\/push, DELETE \/lp\/disconnect, \/lp\/queues\/\* are registered without an authorize hook/)
  t.match(warning?.msg, /Pass `authorize`/)
  t.match(warning?.msg, /routes: \{ push: false, disconnect: false, queues: false \}/)
})

t.test('the warning names only the routes left open', async (t) => {
  const [warning] = await startupWarnings(t, { routes: { push: false, queues: false } })
  t.same(warning?.routes, ['DELETE /lp/disconnect'])
  t.match(warning?.msg, /DELETE \/lp\/disconnect is registered without an authorize hook/)
  t.match(warning?.msg, /routes: \{ disconnect: false \}/)
})

t.test('no warning with authorize, or with every state-changing route off', async (t) => {
  t.same(await startupWarnings(t, { authorize: () => true }), [])
  t.same(await startupWarnings(t, { routes: { push: false, disconnect: false, queues: false } }), [])
})
