// Presence (contract §1.5) across two instances on one real Redis: the broker's own subscriber count (the
// reply of PUBLISH, PUBSUB NUMSUB) tells a push on A that a poll is held on B, or was answered within
// presenceWindow; no command per held poll.
import t from 'tap'
import { heldPolls, poll } from './helpers/app.js'
import { redisApp, runPrefix, startRedis } from './helpers/redis.js'

t.test('Redis', async (t) => {
  const server = await startRedis(t)
  const prefix = runPrefix()
  const presenceWindow = 400
  const a = await redisApp(t, server, prefix, { presenceWindow })
  const b = await redisApp(t, server, prefix, { presenceWindow })

  t.test('a poll held on B: a push on A answers online, and A\'s online() is true; then offline after the window', async (t) => {
    const channel = 'user.7'
    t.equal(await a.app.longpoll.online(channel), false)
    t.equal((await a.app.longpoll.push(channel, 'nobody')).online, false)
    // A concrete cursor, not `latest`: a held poll counts from its arrival, and `latest` is resolved by its first
    // read, which a push racing it could precede (then the poll would wait for the next message).
    const { cursor } = (await poll(b.base, { channel, cursor: 'latest', timeout: 0 })).body
    const held = poll(b.base, { channel, cursor, timeout: 20_000 })
    await heldPolls(b.app, 1)
    // The poll counts once its SUBSCRIBE is confirmed, which happens before it is held.
    t.equal(await a.app.longpoll.online(channel), true)
    const pushed = await fetch(`${a.base}/push`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ channel, data: 'hi' }) })
    t.same(Object.keys(await pushed.json()).sort(), ['id', 'online'])
    t.equal((await held).body.status, 'ok')
    const answeredAt = Date.now()
    t.equal((await a.app.longpoll.push(channel, 'between polls')).online, true, 'within presenceWindow')
    while (await a.app.longpoll.online(channel)) {
      if (Date.now() - answeredAt > presenceWindow + 5_000) throw new Error('still online long after presenceWindow')
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
    t.ok(Date.now() - answeredAt >= presenceWindow * 0.9, 'online for about presenceWindow')
    t.equal((await a.app.longpoll.push(channel, 'gone')).online, false)
  })

  t.test('many polls on one channel on two instances count two receivers, with no command per poll', async (t) => {
    const channel = 'room.9'
    const held = [
      ...Array.from({ length: 20 }, () => poll(a.base, { channel, cursor: 'latest', timeout: 20_000 })),
      ...Array.from({ length: 20 }, () => poll(b.base, { channel, cursor: 'latest', timeout: 20_000 }))
    ]
    await heldPolls(a.app, 20)
    await heldPolls(b.app, 20)
    const observer = server.client(t)
    const [, subscribers] = await observer.pubsub('NUMSUB', `${prefix}{${channel}}`) as [string, number]
    t.equal(Number(subscribers), 2, 'one subscription per instance, whatever the polls')
    t.equal(await observer.publish(`${prefix}{${channel}}`, 'probe'), 2, 'PUBLISH counts the instances, which the push answer reads')
    t.equal((await b.app.longpoll.push(channel, 'all')).online, true)
    t.same((await Promise.all(held)).map((answer) => answer.body.status), held.map(() => 'ok'))
  })
})
