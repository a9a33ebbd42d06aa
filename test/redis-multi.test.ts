// Several instances of an app over one real Redis, each with its own clients, as separate processes behind a
// load balancer would be: a poll on any instance sees pushes and disconnects made on any other.
import t from 'tap'
import { poll, push, heldPolls } from './helpers/app.js'
import { redisApp, runPrefix, startRedis, type RedisApp } from './helpers/redis.js'

t.test('multi-instance', async (t) => {
  const server = await startRedis(t)
  const prefix = runPrefix()
  const instances: RedisApp[] = []
  for (let i = 0; i < 3; i++) instances.push(await redisApp(t, server, prefix, { maxMessages: 10_000 }))
  const [a, b, c] = instances as [RedisApp, RedisApp, RedisApp]

  /** A concrete cursor at the channel's current end, from a short poll. */
  async function cursorOf (base: string, channel: string): Promise<string> {
    const res = await poll(base, { channel, cursor: 'latest', timeout: 0 })
    return res.body.cursor
  }

  t.test('a push on A answers a poll held on B within milliseconds', async (t) => {
    const channel = 'multi.push'
    const cursor = await cursorOf(b.base, channel)
    const started = Date.now()
    const held = poll(b.base, { channel, cursor, timeout: 30_000 })
    await heldPolls(b.app, 1)
    const pushed = await push(a.base, channel, { hello: 'from A' })
    t.equal(pushed.status, 200)
    const answer = await held
    t.equal(answer.status, 200)
    t.equal(answer.body.status, 'ok')
    t.same(answer.body.messages.map((m: any) => [m.id, m.data]), [[pushed.body.id, { hello: 'from A' }]])
    t.equal(answer.body.cursor, pushed.body.id, 'the cursor is the id of the message')
    t.ok(Date.now() - started < 5_000, 'answered on the push, not at the timeout')
  })

  t.test('a disconnect on A answers the poll held on B with disconnected, and deletes the messages', async (t) => {
    const channel = 'multi.disconnect'
    await push(a.base, channel, 1)
    const second = await push(c.base, channel, 2)
    const held = poll(b.base, { channel, cursor: second.body.id, timeout: 30_000 })
    await heldPolls(b.app, 1)
    const res = await fetch(`${a.base}/disconnect?channel=${channel}`, { method: 'DELETE' })
    t.equal(res.status, 200)
    const answer = await held
    t.equal(answer.body.status, 'disconnected')
    t.same(answer.body.messages, [])
    const fresh = await poll(c.base, { channel, timeout: 0 })
    t.same(fresh.body.messages, [], 'a later poll on any instance starts empty')
    t.not(fresh.body.cursor.split('.')[0], second.body.id.split('.')[0], 'in a new life of the channel')
    const old = await poll(b.base, { channel, cursor: second.body.id, timeout: 0 })
    t.equal(old.body.gap, true, 'a cursor of the old life reports a gap')
  })

  t.test('fan-out: every poll held on every instance receives the message', async (t) => {
    const channel = 'multi.fanout'
    const cursor = await cursorOf(a.base, channel)
    const polls = instances.flatMap((instance) => Array.from({ length: 5 }, () => poll(instance.base, { channel, cursor, timeout: 30_000 })))
    for (const instance of instances) await heldPolls(instance.app, 5)
    const pushed = await push(c.base, channel, 'to all')
    const answers = await Promise.all(polls)
    t.equal(answers.length, 15)
    for (const answer of answers) t.same(answer.body.messages.map((m: any) => m.id), [pushed.body.id])
  })

  t.test('5,000 messages pushed through random instances arrive through random instances in order, exactly once', async (t) => {
    const channel = 'multi.many'
    const total = 5_000
    const start = await cursorOf(a.base, channel)
    const pick = (): RedisApp => instances[Math.floor(Math.random() * instances.length)] as RedisApp

    // Three consumers, each polling random instances with the cursor it was given and a random batch size
    // (limit 20..100).
    async function consume (): Promise<Array<{ id: string, data: number }>> {
      const got: Array<{ id: string, data: number }> = []
      let cursor = start
      while (got.length < total) {
        const limit = 20 + Math.floor(Math.random() * 81)
        const res = await poll(pick().base, { channel, cursor, timeout: 20_000, limit })
        if (res.status !== 200) throw new Error(`poll answered ${res.status}: ${JSON.stringify(res.body)}`)
        if (res.body.gap === true) throw new Error('unexpected gap')
        if (res.body.status === 'timeout') throw new Error(`timed out after ${got.length} messages`)
        if (res.body.messages.length > limit) throw new Error('more messages than the limit')
        got.push(...res.body.messages.map((m: any) => ({ id: m.id, data: m.data })))
        cursor = res.body.cursor
      }
      return got
    }
    const consumers = [consume(), consume(), consume()]

    const ids = new Array<string>(total)
    let next = 0
    async function producer (): Promise<void> {
      while (next < total) {
        const i = next++
        // One push in ten over HTTP, the rest through app.longpoll.push (the same code path, without the cost
        // of an HTTP request on a small CI machine).
        const instance = pick()
        if (i % 10 === 0) {
          const res = await push(instance.base, channel, i)
          if (res.status !== 200) throw new Error(`push ${i} answered ${res.status}`)
          ids[i] = res.body.id
        } else {
          ids[i] = (await instance.app.longpoll.push(channel, i)).id
        }
      }
    }
    await Promise.all(Array.from({ length: 32 }, producer))
    const seqOf = (id: string): number => Number(id.split('.')[1])
    const epochs = new Set(ids.map((id) => id.split('.')[0]))
    t.equal(epochs.size, 1, 'one life')
    t.same(ids.map(seqOf).sort((x, y) => x - y), Array.from({ length: total }, (_, i) => seqOf(start) + i + 1), 'every push got its own consecutive seq')

    const idOf = new Map(ids.map((id, i) => [i, id]))
    for (const [n, got] of (await Promise.all(consumers)).entries()) {
      t.equal(got.length, total, `consumer ${n}: ${total} messages`)
      const seqs = got.map((message) => seqOf(message.id))
      t.ok(seqs.every((seq, i) => i === 0 || seq === (seqs[i - 1] as number) + 1), `consumer ${n}: in push order, none missing, none twice`)
      t.ok(got.every((message) => idOf.get(message.data) === message.id), `consumer ${n}: each message is the one its push was answered with`)
    }
  })
})
