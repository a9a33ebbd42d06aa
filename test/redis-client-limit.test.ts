// maxHeldPollsPerClient on Redis instances (contract §4): counted per instance, so one client behind a load
// balancer may hold the limit on each instance; the 429 carries Retry-After.
import t from 'tap'
import { heldPolls, poll } from './helpers/app.js'
import { redisApp, runPrefix, startRedis } from './helpers/redis.js'

t.test('Redis', async (t) => {
  const server = await startRedis(t)
  const prefix = runPrefix()
  const a = await redisApp(t, server, prefix, { maxHeldPollsPerClient: 1 })
  const b = await redisApp(t, server, prefix, { maxHeldPollsPerClient: 1 })
  // From the start of channels nothing was pushed to, not `latest`: a held poll counts from its arrival, and
  // `latest` is resolved by its first read, which the push below could precede (the poll would then miss it).
  const onA = poll(a.base, { channel: 'limit.a', timeout: 20_000 })
  const onB = poll(b.base, { channel: 'limit.a', timeout: 20_000 })
  await heldPolls(a.app, 1)
  await heldPolls(b.app, 1)
  const refused = await poll(a.base, { channel: 'limit.b', timeout: 20_000 })
  t.equal(refused.status, 429)
  t.equal(refused.body.code, 'FST_LONGPOLL_TOO_MANY_CLIENT_POLLS')
  t.equal(refused.headers.get('retry-after'), '1')
  await a.app.longpoll.push('limit.a', 'both')
  t.same([(await onA).body.status, (await onB).body.status], ['ok', 'ok'], 'one poll held on each instance')
  const again = poll(a.base, { channel: 'limit.b', timeout: 20_000 })
  await heldPolls(a.app, 1)
  await b.app.longpoll.push('limit.b', 'released')
  const released = await again
  t.same([released.status, released.body.status], [200, 'ok'], 'the answered poll released its slot')
})
