// MemoryStore specifics (the shared semantics are in the conformance suite): sweeping and close.
import t from 'tap'
import { MemoryStore } from '../lib/index.js'

const retention = { maxMessages: 3, messageTtl: 60_000 }

t.test('retention: maxMessages trims the oldest, and memory is compacted, not grown', async (t) => {
  const store = new MemoryStore()
  t.teardown(() => store.close())
  for (let i = 1; i <= 500; i++) await store.append('a', String(i), 1000 + i, retention)
  const read = await store.read('a', 'oldest', 100, 2000)
  t.same(read.messages.map((m) => m.json), ['498', '499', '500'])
  const internal = (store as unknown as { channels: Map<string, { messages: unknown[] }> }).channels.get('a')
  t.ok((internal?.messages.length ?? Infinity) < 200, 'trimmed messages are released, not kept behind a head index')
})

t.test('the sweeper drops expired messages and idle empty channels, and close stops it', async (t) => {
  const store = new MemoryStore({ sweepInterval: 20, emptyChannelTtl: 1 })
  await store.append('a', '1', Date.now(), { maxMessages: 10, messageTtl: 1 })
  await store.append('b', '1', Date.now(), { maxMessages: 10, messageTtl: 1 })
  await store.delete('b')
  await store.read('c', 'latest', 10, Date.now())
  t.equal(store.size, 1, 'a read of a channel with no life keeps nothing')
  const disconnected = (store as unknown as { disconnectedAt: Map<string, number> }).disconnectedAt
  t.equal(disconnected.size, 1, 'a disconnect is remembered')
  // The sweeper is unref'd, so process.getActiveResourcesInfo() does not list it: look at the store's own handle.
  const sweeper = (): NodeJS.Timeout | null => (store as unknown as { sweeper: NodeJS.Timeout | null }).sweeper
  const deadline = Date.now() + 5000
  while (store.size > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10)) // the sweep runs on its own timer
  while (disconnected.size > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10))
  t.equal(store.size, 0, 'the expired channel swept')
  t.equal(disconnected.size, 0, 'and the disconnect forgotten after emptyChannelTtl')
  t.equal(sweeper(), null, 'with no channel left, no sweeper runs')
  await store.append('e', '1', Date.now(), retention)
  t.ok(sweeper()?.hasRef() === false, 'a sweeper is armed again when a channel appears, unref\'d')
  await store.close()
  t.equal(sweeper(), null, 'close clears it')
  await store.append('d', '1', Date.now(), retention)
  t.equal(sweeper(), null, 'and a closed store arms no new one')
})

t.test('options are checked', async (t) => {
  t.throws(() => new MemoryStore({ sweepInterval: 0 }), { code: 'FST_LONGPOLL_INVALID_OPTION' })
  t.throws(() => new MemoryStore({ emptyChannelTtl: -1 }), { code: 'FST_LONGPOLL_INVALID_OPTION' })
})
