// Contract §1.4 on a real Redis: one instance, and two instances (polls on one, pushes on the other).
import t from 'tap'
import { RedisNotifier, RedisStore } from '../lib/index.js'
import { serve } from './helpers/app.js'
import { manyChannelSuite, ReadWatch, watchReads, type MakeSetup } from './helpers/many.js'
import { redisApp, runPrefix, startRedis } from './helpers/redis.js'

const server = await startRedis(t)

/** Polls go to an instance whose store reads are watched; pushes to it too, or to a second instance. */
function onRedis (instances: 1 | 2): MakeSetup {
  return async (t, options = {}) => {
    const prefix = runPrefix()
    const redis = server.client(t)
    const reads = new ReadWatch()
    const pollAt = await serve(t, {
      store: watchReads(new RedisStore({ redis, prefix }), reads),
      notifier: new RedisNotifier({ redis, prefix }),
      ...options
    })
    const pushAt = instances === 1 ? pollAt : await redisApp(t, server, prefix, options)
    return { pollAt, pushAt, reads }
  }
}

t.test('one instance', async (t) => manyChannelSuite(t, onRedis(1)))
t.test('two instances', async (t) => manyChannelSuite(t, onRedis(2)))
