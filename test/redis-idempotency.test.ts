// Idempotent pushes on Redis (contract §1.5): concurrent pushes with one key, through two instances of an app
// on one real Redis, store the message once; the key lives in Redis for idempotencyTtl, in the channel's slot.
import t from 'tap'
import { redisApp, runPrefix, startRedis } from './helpers/redis.js'

t.test('Redis', async (t) => {
  const server = await startRedis(t)
  const prefix = runPrefix()
  const a = await redisApp(t, server, prefix, { idempotencyTtl: 60_000 })
  const b = await redisApp(t, server, prefix, { idempotencyTtl: 60_000 })

  function pushWithKey (base: string, key: string, channel: string, data: unknown): Promise<Response> {
    return fetch(`${base}/push`, { method: 'POST', headers: { 'content-type': 'application/json', 'idempotency-key': key }, body: JSON.stringify({ channel, data }) })
  }

  t.test('concurrent pushes with one key on two instances store once; every answer has the first id', async (t) => {
    const answers = await Promise.all(Array.from({ length: 40 }, (_, i) => pushWithKey(i % 2 === 0 ? a.base : b.base, 'pay-1', 'user.1', { i })))
    const bodies = await Promise.all(answers.map((answer) => answer.json()))
    t.same(answers.map((answer) => answer.status), answers.map(() => 200))
    t.equal(new Set(bodies.map((body) => body.id)).size, 1, 'one id')
    t.equal(bodies.filter((body) => body.duplicate !== true).length, 1, 'one stored')
    const poll = await fetch(`${b.base}/poll?channel=user.1&timeout=0`).then(async (res) => await res.json())
    t.equal(poll.messages.length, 1, 'one message in the store')
    t.equal(a.app.longpoll.stats().pushed + b.app.longpoll.stats().pushed, 1, 'counted once, by the instance that stored it')
  })

  t.test('{ key } on one instance and the header on another share the key space', async (t) => {
    const first = await a.app.longpoll.push('user.2', 'server', { key: 'mail-9' })
    const repeat = await pushWithKey(b.base, 'mail-9', 'user.2', 'http').then(async (res) => await res.json())
    t.same(repeat, { id: first.id, online: false, duplicate: true })
  })

  t.test('the key is one Redis string in the channel\'s hash slot, expiring after idempotencyTtl', async (t) => {
    const { id } = await a.app.longpoll.push('user.3', 1, { key: 'k:1' })
    const name = `${prefix}{user.3}:key:k:1`
    const ttl = await a.redis.pttl(name)
    t.ok(ttl > 55_000 && ttl <= 60_000, `PTTL ${ttl} within idempotencyTtl`)
    const [epoch, seq] = id.split('.')
    t.match(await a.redis.get(name), new RegExp(`^${epoch}:${seq}:\\d+$`))
    t.equal(await a.redis.exists(`${prefix}{user.3}:key:`), 0, 'no key is written for pushes without one')
  })

  t.test('after idempotencyTtl (Redis\'s own expiry) the key stores again', async (t) => {
    const short = await redisApp(t, server, prefix, { idempotencyTtl: 50 })
    const first = await short.app.longpoll.push('user.4', 1, { key: 'k' })
    await new Promise((resolve) => setTimeout(resolve, 250))
    const again = await short.app.longpoll.push('user.4', 2, { key: 'k' })
    t.not(again.id, first.id)
    t.notOk(again.duplicate)
  })
})
