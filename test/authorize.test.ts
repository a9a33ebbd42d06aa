// authorize(request, { action, channel }): sync or async; not true → 403 before any hold or store write;
// an exception → 500 with nothing stored.
import t from 'tap'
import { heldPolls, makeApp, serve } from './helpers/app.js'
import type { AuthorizeContext } from '../lib/index.js'

t.test('it sees every action with its channel and the request', async (t) => {
  const calls: Array<AuthorizeContext & { user?: string }> = []
  const app = await makeApp(t, {
    authorize: (request, context) => {
      calls.push({ ...context, user: request.headers['x-user'] as string })
      return true
    }
  })
  const headers = { 'x-user': 'ann' }
  await app.inject({ method: 'POST', url: '/lp/push', headers, payload: { channel: 'c1', data: 1 } })
  await app.inject({ method: 'GET', url: '/lp/poll?channel=c2&timeout=0', headers })
  await app.inject({ method: 'DELETE', url: '/lp/disconnect?channel=c3', headers })
  t.same(calls, [
    { action: 'push', channel: 'c1', user: 'ann' },
    { action: 'poll', channel: 'c2', user: 'ann' },
    { action: 'disconnect', channel: 'c3', user: 'ann' }
  ])
})

for (const kind of ['sync', 'async']) {
  t.test(`a ${kind} denial answers 403 and neither holds nor stores`, async (t) => {
    const deny = kind === 'sync' ? () => false : async () => false
    const { app, base } = await serve(t, { authorize: deny })
    const poll = await fetch(`${base}/poll?channel=a&timeout=5000`)
    t.equal(poll.status, 403)
    t.equal((await poll.json()).code, 'FST_LONGPOLL_FORBIDDEN')
    const push = await app.inject({ method: 'POST', url: '/lp/push', payload: { channel: 'a', data: 1 } })
    t.equal(push.statusCode, 403)
    const disconnect = await app.inject({ method: 'DELETE', url: '/lp/disconnect?channel=a' })
    t.equal(disconnect.statusCode, 403)
    t.same(app.longpoll.stats(), { ...app.longpoll.stats(), heldPolls: 0, pushed: 0, answered: 0 })
  })
}

t.test('anything but true denies (a forgotten return is not a yes)', async (t) => {
  const app = await makeApp(t, { authorize: (() => undefined) as never })
  t.equal((await app.inject({ method: 'GET', url: '/lp/poll?channel=a&timeout=0' })).statusCode, 403)
})

t.test('an exception answers 500 with nothing stored', async (t) => {
  const app = await makeApp(t, { authorize: async () => { throw new Error('auth service down') } })
  app.log.level = 'silent'
  const res = await app.inject({ method: 'POST', url: '/lp/push', payload: { channel: 'a', data: 1 } })
  t.equal(res.statusCode, 500)
  t.equal(app.longpoll.stats().pushed, 0)
  t.equal((await app.inject({ method: 'GET', url: '/lp/poll?channel=a&timeout=0' })).statusCode, 500)
})

t.test('per-channel rules: a denied channel is refused, an allowed one is held', async (t) => {
  const { app, base } = await serve(t, { authorize: (_request, { channel }) => channel.startsWith('public:') })
  t.equal((await fetch(`${base}/poll?channel=private:x&timeout=5000`)).status, 403)
  const held = fetch(`${base}/poll?channel=public:x&timeout=5000`)
  await heldPolls(app, 1)
  await app.longpoll.push('public:x', 'hi') // server-side push is not subject to authorize
  t.equal((await (await held).json()).status, 'ok')
})
