// An unauthenticated client polling random channel names makes the memory store keep nothing once its polls
// end: 100,000 timeout=0 polls on distinct never-pushed names (100 names to a poll, and 5,000 polls of one name) leave the heap where it was.
import t from 'tap'
import { serve } from './helpers/app.js'
import { firstMessageReachesCursor, liveHeap, pollNeverPushed } from './helpers/bounded.js'
import { MemoryStore } from '../lib/index.js'

t.test('100,000 polls on never-pushed channels leave the memory store and the heap as they were', async (t) => {
  t.setTimeout(240_000)
  const store = new MemoryStore()
  const served = await serve(t, { store })
  await pollNeverPushed(served, 'warm.', 20_000, -1, 100)
  await pollNeverPushed(served, 'warm1.', 1_000, -1) // JIT, connection pools and Fastify's caches reach their size
  const before = liveHeap()
  const cursor = await pollNeverPushed(served, 'random.', 100_000, 77_777, 100)
  const single = await pollNeverPushed(served, 'single.', 5_000, 4_321)
  const grown = liveHeap() - before
  t.equal(store.size, 0, 'the store holds no channel')
  t.equal(served.app.longpoll.stats().heldPolls, 0)
  t.ok(grown < 4 * 1024 * 1024, `the heap grew by ${(grown / 1024 / 1024).toFixed(2)} MB (under 4 MB)`)
  await firstMessageReachesCursor(t, served, 'random.77777', cursor)
  await firstMessageReachesCursor(t, served, 'single.4321', single)
  t.equal(store.size, 2, 'the channels exist once they have a message')
})
