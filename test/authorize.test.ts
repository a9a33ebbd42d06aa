// authorize(request, { action, channel }): sync or async; not true → 403 before any hold or store write;
// an exception → 500 with nothing stored.
import t from 'tap'
import { heldPolls, makeApp, serve, until } from './helpers/app.js'
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
  t.equal(res.json().message, 'auth service down', 'the hook\'s own error, not a serialization failure')
  t.equal(app.longpoll.stats().pushed, 0)
  const polled = await app.inject({ method: 'GET', url: '/lp/poll?channel=a&timeout=0' })
  t.equal(polled.statusCode, 500)
  t.equal(polled.json().message, 'auth service down')
})

t.test('an error with its own statusCode (as http-errors makes) answers with it', async (t) => {
  const app = await makeApp(t, { authorize: async () => { throw Object.assign(new Error('token expired'), { statusCode: 401 }) } })
  app.log.level = 'silent'
  for (const request of [{ method: 'POST' as const, url: '/lp/push', payload: { channel: 'a', data: 1 } }, { method: 'GET' as const, url: '/lp/poll?channel=a&timeout=0' }]) {
    const res = await app.inject(request)
    t.equal(res.statusCode, 401)
    t.equal(res.json().message, 'token expired')
  }
  const forbidden = await makeApp(t, { authorize: () => { throw Object.assign(new Error('not yours'), { statusCode: 403 }) } })
  const res = await forbidden.inject({ method: 'GET', url: '/lp/poll?channel=a&timeout=0' })
  t.equal(res.statusCode, 403, 'a 403 without a code is still answered as 403')
  t.equal(res.json().message, 'not yours')
})

t.test('a client that leaves while an async authorize runs is not held', async (t) => {
  let entered!: () => void
  const inHook = new Promise<void>((resolve) => { entered = resolve })
  let release!: () => void
  const hook = new Promise<void>((resolve) => { release = resolve })
  const { app, base } = await serve(t, { authorize: async () => { entered(); await hook; return true } })
  const controller = new AbortController()
  const gone = fetch(`${base}/poll?channel=a&timeout=30000`, { signal: controller.signal }).catch((err: Error) => err.name)
  await inHook
  controller.abort()
  t.equal(await gone, 'AbortError')
  // The server sees the socket close before the hook returns: wait for Node to report it, then let the hook go.
  await new Promise<void>((resolve) => { const check = (): void => { app.server.getConnections((_err, count) => count === 0 ? resolve() : setImmediate(check)) }; check() })
  release()
  await until(() => app.longpoll.stats().aborted === 1, 10_000, 'the poll to be counted as aborted')
  t.equal(app.longpoll.stats().heldPolls, 0, 'no poll held for a client that is gone')
})

t.test('per-channel rules: a denied channel is refused, an allowed one is held', async (t) => {
  const { app, base } = await serve(t, { authorize: (_request, { channel }) => channel.startsWith('public:') })
  t.equal((await fetch(`${base}/poll?channel=private:x&timeout=5000`)).status, 403)
  const held = fetch(`${base}/poll?channel=public:x&timeout=5000`)
  await heldPolls(app, 1)
  await app.longpoll.push('public:x', 'hi') // server-side push is not subject to authorize
  t.equal((await (await held).json()).status, 'ok')
})
