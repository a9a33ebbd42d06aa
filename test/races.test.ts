// No lost wake-ups, no leaks, nothing lost or duplicated: the guarantees under load.
import t from 'tap'
import http from 'node:http'
import { heldPolls, poll, push, serve, until } from './helpers/app.js'

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
      const held = poll(base, { channel, cursor, timeout: 10_000 })
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
      const query: Record<string, string | number> = { channel: 'ordered', timeout: 10_000, limit }
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
