// Presence (contract §1.5) on the memory notifier: `online` in every push answer and app.longpoll.online(channel)
// are true while some instance holds a poll on the channel, or answered one within presenceWindow.
// test/redis-presence.test.ts checks the same across Redis instances.
import t from 'tap'
import { MemoryBus, MemoryNotifier, MemoryStore, type ChannelEvent, type LongPollNotifier, type NotifierHandlers } from '../lib/index.js'
import { heldPolls, makeApp } from './helpers/app.js'

async function until (condition: () => Promise<boolean>, ms: number, what: string): Promise<number> {
  const started = Date.now()
  while (!(await condition())) {
    if (Date.now() - started > ms) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  return Date.now() - started
}

t.test('nobody polls: online is false in the push answer and from online()', async (t) => {
  const app = await makeApp(t)
  const res = await app.inject({ method: 'POST', url: '/lp/push', payload: { channel: 'user-1', data: 1 } })
  t.same(res.json(), { id: res.json().id, online: false })
  t.equal((await app.longpoll.push('user-1', 2)).online, false)
  t.equal(await app.longpoll.online('user-1'), false)
})

t.test('a poll held on the channel makes it online; answered, it stays online for presenceWindow, then not', async (t) => {
  const presenceWindow = 300
  const app = await makeApp(t, { presenceWindow })
  const held = app.inject('/lp/poll?channel=user-2&cursor=latest&timeout=20000')
  await heldPolls(app, 1)
  t.equal(await app.longpoll.online('user-2'), true, 'online while held')
  t.equal(await app.longpoll.online('user-3'), false, 'per channel')
  const res = await app.inject({ method: 'POST', url: '/lp/push', payload: { channel: 'user-2', data: 'hi' } })
  t.equal(res.json().online, true, 'the push that answers the poll says online')
  t.equal((await held).json().status, 'ok')
  const answeredAt = Date.now()
  t.equal((await app.longpoll.push('user-2', 'between polls')).online, true, 'just answered: a client between two polls is online')
  const offlineAfter = await until(async () => !(await app.longpoll.online('user-2')), presenceWindow + 5_000, 'offline')
  // A lower bound only, and a generous one: the window opened when the server answered, before this process saw the answer.
  t.ok(Date.now() - answeredAt >= presenceWindow / 2, `online for about presenceWindow (${offlineAfter} ms)`)
  t.equal((await app.longpoll.push('user-2', 'gone')).online, false)
})

t.test('presenceWindow 0: offline as soon as the last poll is answered', async (t) => {
  const app = await makeApp(t, { presenceWindow: 0 })
  const held = app.inject('/lp/poll?channel=c&cursor=latest&timeout=20000')
  await heldPolls(app, 1)
  t.equal((await app.longpoll.push('c', 1)).online, true)
  await held
  t.equal((await app.longpoll.push('c', 2)).online, false)
})

t.test('any instance: a poll held on B makes the channel online for pushes and queries on A', async (t) => {
  const bus = new MemoryBus()
  const store = new MemoryStore()
  const a = await makeApp(t, { store, notifier: new MemoryNotifier({ bus }) })
  const b = await makeApp(t, { store, notifier: new MemoryNotifier({ bus }) })
  t.equal(await a.longpoll.online('room'), false)
  const held = b.inject('/lp/poll?channel=room&cursor=latest&timeout=20000')
  await heldPolls(b, 1)
  t.equal(await a.longpoll.online('room'), true)
  const pushed = await a.inject({ method: 'POST', url: '/lp/push', payload: { channel: 'room', data: 1 } })
  t.equal(pushed.json().online, true)
  t.equal((await held).json().status, 'ok')
})

t.test('a duplicate push reports presence now', async (t) => {
  const app = await makeApp(t)
  const first = await app.longpoll.push('d', 1, { key: 'k' })
  t.equal(first.online, false)
  const held = app.inject(`/lp/poll?channel=d&cursor=${first.id}&timeout=300`)
  await heldPolls(app, 1)
  t.same(await app.longpoll.push('d', 1, { key: 'k' }), { id: first.id, online: true, duplicate: true })
  await held
})

t.test('a notifier that cannot count receivers: presence from this instance\'s own polls', async (t) => {
  // A third-party notifier of the v1 shape: publish resolves nothing and there is no online().
  const bus = new MemoryBus()
  class CountlessNotifier implements LongPollNotifier {
    private readonly inner = new MemoryNotifier({ bus })
    start (handlers: NotifierHandlers): void { this.inner.start(handlers) }
    subscribe (channel: string): void { this.inner.subscribe(channel) }
    unsubscribe (channel: string): void { this.inner.unsubscribe(channel) }
    async publish (channel: string, event: ChannelEvent): Promise<void> { await this.inner.publish(channel, event) }
    close (): Promise<void> { return this.inner.close() }
  }
  const app = await makeApp(t, { notifier: new CountlessNotifier() })
  t.equal((await app.longpoll.push('e', 1)).online, false)
  const held = app.inject('/lp/poll?channel=e&cursor=latest&timeout=20000')
  await heldPolls(app, 1)
  t.equal(await app.longpoll.online('e'), true)
  t.equal((await app.longpoll.push('e', 2)).online, true)
  await held
})

t.test('an invalid presenceWindow fails register naming it', async (t) => {
  const { default: Fastify } = await import('fastify')
  const { default: longpoll } = await import('../lib/index.js')
  for (const presenceWindow of [-1, 0.5, '2s']) {
    const app = Fastify()
    t.teardown(() => app.close())
    app.register(longpoll, { presenceWindow } as never)
    await t.rejects(async () => { await app.ready() }, { code: 'FST_LONGPOLL_INVALID_OPTION', message: /"presenceWindow"/ })
  }
})
