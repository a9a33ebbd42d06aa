// Contract §1.4 on a real Redis: one instance, and two instances (polls on one, pushes on the other).
import t from 'tap'
import { RedisNotifier, RedisStore } from '../lib/index.js'
import { serve } from './helpers/app.js'
import { manyChannelSuite, ReadWatch, watchReads } from './helpers/many.js'
import { redisApp, runPrefix, startRedis } from './helpers/redis.js'

const server = await startRedis(t)

t.test('one instance', async (t) => {
  manyChannelSuite(t, async (t, options = {}) => {
    const prefix = runPrefix()
    const redis = server.client(t)
    const reads = new ReadWatch()
    const served = await serve(t, {
      store: watchReads(new RedisStore({ redis, prefix }), reads),
      notifier: new RedisNotifier({ redis, prefix }),
      ...options
    })
    return { pollAt: served, pushAt: served, reads }
  })
})

t.test('two instances', async (t) => {
  manyChannelSuite(t, async (t, options = {}) => {
    const prefix = runPrefix()
    const redis = server.client(t)
    const reads = new ReadWatch()
    const pollAt = await serve(t, {
      store: watchReads(new RedisStore({ redis, prefix }), reads),
      notifier: new RedisNotifier({ redis, prefix }),
      ...options
    })
    const pushAt = await redisApp(t, server, prefix, options)
    return { pollAt, pushAt, reads }
  })
})
