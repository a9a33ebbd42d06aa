// No lost wake-ups, no leaks, nothing lost or duplicated: the guarantees under load.
import t from 'tap'
import http from 'node:http'
import { heldPolls, poll, push, serve, until } from './helpers/app.js'
import { pollMany } from './helpers/many.js'
import { gatedNotifier, gatedStore, type GatedStore } from './helpers/stores.js'

t.test('1,000 rounds of a push racing a just-started poll: none answered at its timeout', async (t) => {
  const { app, base } = await serve(t)
  const channels = 20
  const rounds = 50 // per channel: 20 × 50 = 1,000 races
  let lost = 0
  let wrong = 0
  await Promise.all(Array.from({ length: channels }, async (_, c) => {
    const channel = `race-${c}`
    let cursor = (await poll(base, { channel, cursor: 'latest', timeout: 0 })).body.cursor
    for (let round = 0; round < rounds; round++) {
      // A lost wake-up shows as an answer at the timeout: 60 s, far beyond what a loaded machine takes for a push.
      const held = poll(base, { channel, cursor, timeout: 60_000 })
      // Vary where the push lands relative to the poll's registration and store read: 0-3 turns of the loop.
      for (let i = 0; i < round % 4; i++) await new Promise((resolve) => setImmediate(resolve))
      const { body: pushed } = await push(base, channel, round)
      const { body } = await held
      if (body.status !== 'ok') lost++
      else if (body.messages.length !== 1 || body.messages[0].id !== pushed.id || body.messages[0].data !== round) wrong++
      cursor = body.cursor
    }
  }))
  t.equal(lost, 0, 'no poll waited for its timeout')
  t.equal(wrong, 0, 'each poll got exactly the message pushed in its round')
  t.equal(app.longpoll.stats().heldPolls, 0)
})

t.test('10,000 polls aborted mid-hold leave no held poll, channel waiter, timer or listener behind', async (t) => {
  const { app, base } = await serve(t)
  const timers = (): number => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length
  const timersBefore = timers()
  const serverListeners = app.server.eventNames().map((e) => app.server.listenerCount(e)).reduce((a, b) => a + b, 0)
  const batch = 1000
  for (let b = 0; b < 10; b++) {
    const requests = Array.from({ length: batch }, (_, i) => {
      const request = http.get(`${base}/poll?channel=leak-${i % 100}&timeout=60000`, { agent: false })
      request.on('error', () => {}) // destroyed on purpose
      return request
    })
    await heldPolls(app, batch)
    for (const request of requests) request.destroy()
    await until(() => app.longpoll.stats().heldPolls === 0, 15_000, 'aborted polls to be released')
  }
  const stats = app.longpoll.stats()
  t.equal(stats.aborted, 10_000)
  t.equal(stats.heldPolls, 0, 'held polls back to 0')
  t.equal(stats.channels, 0, 'no channel waiters left')
  t.equal(stats.answered, 0, 'nothing was answered to a gone client')
  await until(() => timers() <= timersBefore, 5000, `timers back to ${timersBefore} (now ${timers()})`)
  t.ok(timers() <= timersBefore, 'active timers back to their starting count')
  const listenersAfter = app.server.eventNames().map((e) => app.server.listenerCount(e)).reduce((a, b) => a + b, 0)
  t.equal(listenersAfter, serverListeners, 'no listener added to the server')
  // The hub still works after all that.
  const held = poll(base, { channel: 'leak-1', cursor: 'latest', timeout: 10_000 })
  await heldPolls(app, 1)
  await push(base, 'leak-1', 'alive')
  t.equal((await held).body.status, 'ok')
})

t.test('5,000 messages: three consumers with limit batching each receive every one, in order, exactly once', async (t) => {
  const { app, base } = await serve(t, { maxMessages: 10_000, maxBatch: 50 })
  const total = 5000
  const consume = async (limit: number): Promise<number[]> => {
    const seen: number[] = []
    let cursor: string | undefined
    while (seen.length < total) {
      const query: Record<string, string | number> = { channel: 'ordered', timeout: 60_000, limit }
      if (cursor !== undefined) query.cursor = cursor
      const { status, body } = await poll(base, query)
      if (status !== 200 || body.status !== 'ok') throw new Error(`unexpected answer ${status} ${JSON.stringify(body)}`)
      if (body.messages.length > limit) throw new Error('more than limit')
      seen.push(...body.messages.map((m: any) => m.data))
      cursor = body.cursor
    }
    return seen
  }
  const consumers = [consume(1), consume(7), consume(50)]
  // Pushes in bursts of 25 concurrent requests, so that the store sees them out of request order.
  const ids: string[] = []
  for (let i = 0; i < total; i += 25) {
    const burst = await Promise.all(Array.from({ length: 25 }, (_, j) => push(base, 'ordered', i + j)))
    ids.push(...burst.map((r) => r.body.id))
  }
  const seqOf = (id: string): number => Number(id.split('.')[1])
  t.equal(new Set(ids).size, total, 'every push got its own id')
  const storeOrder = [...ids].sort((a, b) => seqOf(a) - seqOf(b))
  t.same(storeOrder.map(seqOf), Array.from({ length: total }, (_, i) => i + 1), 'ids are 1..5000 with no hole')
  for (const seen of await Promise.all(consumers)) {
    t.equal(seen.length, total, 'every message')
    t.equal(new Set(seen).size, total, 'no duplicate')
    // Messages come in push (store) order: the order of their ids.
    const indexOf = new Map(ids.map((id, i) => [id, i]))
    const pushedOrder = storeOrder.map((id) => indexOf.get(id))
    t.same(seen, pushedOrder, 'in push order')
  }
  t.equal(app.longpoll.stats().heldPolls, 0)
})

// The hub's paths that only run while a read is in flight, made deterministic: the gated store's reads run at
// once, then wait for the test to release them, so a push or a disconnect lands after the read took its result
// and before the poll saw it.
const held = async (gated: GatedStore, n: number, what: string): Promise<void> => {
  await until(() => gated.waiting() === n, 10_000, what)
}

t.test('one channel: a push while the first read is in flight makes the poll read again instead of holding', async (t) => {
  const gated = gatedStore()
  const { app, base } = await serve(t, { store: gated.store })
  const { id: old } = await app.longpoll.push('dirty.one', 'old')
  const started = Date.now()
  const answer = poll(base, { channel: 'dirty.one', cursor: old, timeout: 20_000 })
  await held(gated, 1, 'the first read to be in flight')
  const { id } = await app.longpoll.push('dirty.one', 'new') // after the read ran, before it answered
  gated.release()
  await held(gated, 1, 'the second read, caused by the push')
  t.equal(gated.calls(), 2, 'read twice')
  gated.release()
  const { body } = await answer
  t.equal(body.status, 'ok', 'answered by the re-read, not at the timeout')
  t.same(body.messages.map((m: any) => m.id), [id])
  t.ok(Date.now() - started < 15_000, 'long before the 20 s timeout')
  t.equal(app.longpoll.stats().heldPolls, 0)
})

t.test('one channel: a disconnect while the first read is in flight', async (t) => {
  t.test('with a concrete cursor: answered at once, and the read that answers later answers nothing more', async (t) => {
    const gated = gatedStore()
    const { app, base } = await serve(t, { store: gated.store })
    const { id } = await app.longpoll.push('early.concrete', 'm1')
    const answer = poll(base, { channel: 'early.concrete', cursor: id, timeout: 20_000 })
    await held(gated, 1, 'the first read to be in flight')
    await app.longpoll.disconnect('early.concrete')
    const { status, body } = await answer // while the read is still held
    t.equal(status, 200)
    t.equal(body.status, 'disconnected')
    t.equal(body.cursor, id, 'the cursor it came with: the life that ended')
    t.equal(gated.waiting(), 1, 'answered before its read returned')
    gated.release()
    await heldPolls(app, 0)
    t.equal(app.longpoll.stats().answered, 1, 'answered once')
  })

  t.test('with no cursor: answered once the read made its cursor concrete, its messages dropped with the life', async (t) => {
    const gated = gatedStore()
    const { app, base } = await serve(t, { store: gated.store })
    const { id } = await app.longpoll.push('early.none', 'm1')
    let answered = false
    const answer = poll(base, { channel: 'early.none', timeout: 20_000 }).finally(() => { answered = true })
    await held(gated, 1, 'the first read to be in flight')
    await app.longpoll.disconnect('early.none')
    t.notOk(answered, 'no answer without a concrete cursor to hand back')
    gated.release()
    const { body } = await answer
    t.equal(body.status, 'disconnected')
    t.same(body.messages, [])
    t.equal(body.cursor, `${id.split('.')[0] as string}.0`, 'concrete, in the ended life, before the message it did not hand out')
    t.equal(app.longpoll.stats().heldPolls, 0)
    t.equal(app.longpoll.stats().channels, 0)
  })
})

t.test('many channels through readMany: a push on one while the reads are in flight makes the poll read again', async (t) => {
  const gated = gatedStore()
  const { app, base } = await serve(t, { store: gated.store })
  const channels = ['dirtymany.a', 'dirtymany.b', 'dirtymany.c']
  const cursors: string[] = []
  for (const channel of channels) cursors.push((await app.longpoll.push(channel, 'old')).id)
  const answer = pollMany(base, channels, { timeout: 20_000, cursor: cursors.join(',') })
  await held(gated, 1, 'the poll\'s readMany to be in flight')
  const { id } = await app.longpoll.push('dirtymany.b', 'new')
  gated.release()
  await held(gated, 1, 'the second readMany, caused by the push')
  t.equal(gated.calls(), 2, 'one readMany per round, two rounds')
  gated.release()
  const { body } = await answer
  t.equal(body.status, 'ok', 'answered by the re-read, not at the timeout')
  t.same(body.messages.map((m: any) => [m.channel, m.id]), [['dirtymany.b', id]])
})

t.test('many channels through readMany: a disconnect before the first reads answered', async (t) => {
  const gated = gatedStore()
  const { app, base } = await serve(t, { store: gated.store })
  await app.longpoll.push('earlymany.a', 'a1')
  await app.longpoll.push('earlymany.b', 'b1')
  const answer = pollMany(base, ['earlymany.a', 'earlymany.b'], { timeout: 20_000 })
  await held(gated, 1, 'the poll\'s readMany to be in flight')
  await app.longpoll.disconnect('earlymany.a')
  gated.release()
  const { body } = await answer
  t.equal(body.status, 'disconnected')
  t.same(body.disconnected, ['earlymany.a'])
  t.same(body.messages.map((m: any) => [m.channel, m.data]), [['earlymany.b', 'b1']], 'b\'s message kept, a\'s dropped with its life')
  t.equal(app.longpoll.stats().heldPolls, 0)
})

t.test('a poll whose first read has not answered by its timeout: 503 with Retry-After, never a timeout without a cursor', async (t) => {
  for (const channels of [['slow.one'], ['slow.a', 'slow.b']]) {
    const gated = gatedStore()
    const { app, base } = await serve(t, { store: gated.store })
    const response = await fetch(`${base}/poll?${channels.map((c) => `channel=${c}`).join('&')}&timeout=200`)
    const body = await response.json()
    t.equal(response.status, 503, `${channels.length} channel(s): 503`)
    t.equal(body.code, 'FST_LONGPOLL_STORE_UNAVAILABLE')
    t.match(body.message, /no answer before the poll timed out/)
    t.equal(response.headers.get('retry-after'), '1')
    t.equal(gated.waiting(), 1, 'its read (one read or one readMany) still in flight')
    t.equal(app.longpoll.stats().heldPolls, 0, 'released at its timeout')
    t.equal(app.longpoll.stats().channels, 0)
    gated.release() // the read answers late: nothing is answered twice, nothing throws
    await new Promise((resolve) => setTimeout(resolve, 10))
    t.equal(app.longpoll.stats().answered, 0)
  }
})

// No lost wake-up between subscribing and reading: the hub reads a poll's channel only once its subscription is
// confirmed. With a notifier that delivers nothing before the confirmation (as Redis does before its SUBSCRIBE is
// processed), a push in that window is announced to nobody: the read after the confirmation must find it.
t.test('a push while the poll\'s subscription is unconfirmed, or right as it is confirmed: found by the first read', async (t) => {
  for (const when of ['while unconfirmed', 'as confirmed']) {
    const gated = gatedNotifier()
    const { app, base } = await serve(t, { notifier: gated.notifier })
    const channel = `subscribing.${when.replace(' ', '-')}`
    const { id: old } = await app.longpoll.push(channel, 'old')
    const answer = poll(base, { channel, cursor: old, timeout: 20_000 })
    await until(() => gated.pending() === 1, 10_000, 'the poll\'s subscription to be asked for')
    let pushed = ''
    const pushIt = async (): Promise<void> => { pushed = (await app.longpoll.push(channel, 'new')).id }
    if (when === 'while unconfirmed') {
      await pushIt() // announced to nobody
      await gated.release()
    } else {
      await gated.release(pushIt) // events flow, and the push lands before the hub learns the subscription is confirmed
    }
    const { body } = await answer
    t.equal(body.status, 'ok', `${when}: answered, not at the timeout`)
    t.same(body.messages.map((m: any) => m.id), [pushed])
  }
})
