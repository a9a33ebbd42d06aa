// An unauthenticated client polling random channel names makes Redis keep nothing once its polls end:
// 100,000 timeout=0 polls on distinct never-pushed names (100 names to a poll, and 5,000 polls of one name) leave used_memory and the key count where they were.
import t from 'tap'
import { firstMessageReachesCursor, pollNeverPushed } from './helpers/bounded.js'
import { redisApp, runPrefix, startRedis } from './helpers/redis.js'

t.test('100,000 polls on never-pushed channels leave Redis as it was', async (t) => {
  t.setTimeout(240_000)
  const server = await startRedis(t)
  const observer = server.client(t)
  const app = await redisApp(t, server, runPrefix())
  await pollNeverPushed(app, 'warm.', 2_000, -1, 100)
  const usedMemory = async (): Promise<number> => Number(/used_memory:(\d+)/.exec(await observer.info('memory'))?.[1])
  const before = { memory: await usedMemory(), keys: await observer.dbsize() }
  const cursor = await pollNeverPushed(app, 'random.', 100_000, 4_242, 100)
  const single = await pollNeverPushed(app, 'single.', 5_000, 4_321)
  const after = { memory: await usedMemory(), keys: await observer.dbsize() }
  t.equal(after.keys, before.keys, `no key was created (${after.keys})`)
  const grown = after.memory - before.memory
  t.ok(grown < 2 * 1024 * 1024, `used_memory grew by ${(grown / 1024 / 1024).toFixed(2)} MB (under 2 MB)`)
  await firstMessageReachesCursor(t, app, 'random.4242', cursor)
  await firstMessageReachesCursor(t, app, 'single.4321', single)
  t.equal(await observer.dbsize(), before.keys + 4, 'the channels have their two keys each once they have a message')
})
