// The hub's error paths on a memory store whose reads fail on command (test/helpers/stores.ts): a short poll's
// failed read, a held poll's first read failing, a held poll with a cursor past the newest message. Each answers
// once, with a coded error, and leaves nothing held. (The same paths on a real, killed Redis are in
// test/redis-faults.test.ts.)
import t from 'tap'
import { heldPolls, poll, serve } from './helpers/app.js'
import { pollMany } from './helpers/many.js'
import { failingStore } from './helpers/stores.js'

t.test('a short poll whose read fails: 503 STORE_UNAVAILABLE with Retry-After, one channel and many', async (t) => {
  const failing = failingStore()
  const { app, base } = await serve(t, { store: failing.store, retryAfter: 3 })
  await app.longpoll.push('short.a', 'kept')
  failing.failReads = true
  for (const channels of [['short.a'], ['short.a', 'short.b']]) {
    const response = await fetch(`${base}/poll?${channels.map((c) => `channel=${c}`).join('&')}&timeout=0`)
    t.equal(response.status, 503, `${channels.length} channel(s)`)
    t.equal(response.headers.get('retry-after'), '3')
    const body = await response.json()
    t.equal(body.code, 'FST_LONGPOLL_STORE_UNAVAILABLE')
    t.match(body.message, /the test store refuses reads/, 'the store\'s reason, for the operator')
  }
  t.equal(failing.failed, 2, 'one failed read (or readMany) per poll')
  t.equal(app.longpoll.stats().answered, 0, 'not counted as answered')
  failing.failReads = false
  const { body } = await poll(base, { channel: 'short.a', timeout: 0 })
  t.same(body.messages.map((m: any) => m.data), ['kept'], 'the store answers again, nothing lost')
})

t.test('a held poll whose first read fails: 503 at once, not at its timeout, and released', async (t) => {
  const failing = failingStore()
  const { app, base } = await serve(t, { store: failing.store })
  failing.failReads = true
  for (const channels of [['held.a'], ['held.a', 'held.b', 'held.c']]) {
    const started = Date.now()
    const { status, body } = await pollMany(base, channels, { timeout: 30_000, cursor: channels.map(() => 'latest').join(',') })
    t.equal(status, 503, `${channels.length} channel(s)`)
    t.equal(body.code, 'FST_LONGPOLL_STORE_UNAVAILABLE')
    t.ok(Date.now() - started < 15_000, `long before the 30 s timeout (${Date.now() - started} ms)`)
    t.equal(app.longpoll.stats().heldPolls, 0, 'released')
    t.equal(app.longpoll.stats().channels, 0, 'no channel waiter left')
  }
})

t.test('a held poll (timeout > 0) with a cursor past the newest message: 400 BAD_CURSOR at once, and released', async (t) => {
  const { app, base } = await serve(t)
  const { id } = await app.longpoll.push('past.a', 'one')
  const past = `${id.split('.')[0] as string}.5`
  const one = await poll(base, { channel: 'past.a', cursor: past, timeout: 30_000 })
  t.equal(one.status, 400)
  t.equal(one.body.code, 'FST_LONGPOLL_BAD_CURSOR')
  t.equal(one.headers.get('retry-after'), null, 'nothing to retry')
  await app.longpoll.push('past.b', 'b')
  const many = await pollMany(base, ['past.b', 'past.a'], { timeout: 30_000, cursor: `,${past}` })
  t.equal(many.status, 400, 'many channels: one bad entry fails the poll')
  t.equal(many.body.code, 'FST_LONGPOLL_BAD_CURSOR')
  await heldPolls(app, 0)
  t.equal(app.longpoll.stats().channels, 0, 'no channel waiter left')
  t.equal(app.longpoll.stats().answered, 0)
})
