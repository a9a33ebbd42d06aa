// The store suite's checks of `appendMany`, an optional method: each check passes a store without it at once
// (the plugin then calls `append` per message, which the rest of the suite checks).
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import type { AppendItem, LongPollStore, Retention } from '../stores/types.js'

type Check = (name: string, fn: (store: LongPollStore) => Promise<void>) => void

function uniqueChannel (what: string): string {
  return `conformance.many.${what}.${randomBytes(6).toString('hex')}`
}

/** Every message of a channel, oldest first, as json strings. */
async function jsonOf (store: LongPollStore, channel: string): Promise<string[]> {
  return (await store.read(channel, 'oldest', 1000, Date.now())).messages.map((message) => message.json)
}

export function appendManyChecks (check: Check, retention: Retention, createStore: () => LongPollStore | Promise<LongPollStore>): void {
  check('appendMany (where implemented) answers one result per item, in order; one channel\'s items get consecutive seqs in batch order', async (store) => {
    if (store.appendMany === undefined) return
    const [a, b] = [uniqueChannel('a'), uniqueChannel('b')]
    await store.append(a, '"before"', Date.now(), retention)
    const time = Date.now()
    const items: AppendItem[] = [{ channel: a, json: '1' }, { channel: b, json: '2' }, { channel: a, json: '{"x": 3}' }, { channel: a, json: '4' }]
    const results = await store.appendMany(items, time, retention)
    assert.equal(results.length, items.length)
    assert.deepEqual(results.map((result) => result.seq), [2, 1, 3, 4], 'seqs follow batch order, per channel')
    assert.ok(results.every((result) => result.time === time && result.duplicate !== true), 'the time echoed, no duplicate')
    assert.equal(new Set([results[0], results[2], results[3]].map((result) => result?.epoch)).size, 1, 'one life per channel')
    assert.deepEqual(await jsonOf(store, a), ['"before"', '1', '{"x": 3}', '4'], 'stored byte for byte, after what was there')
    assert.deepEqual(await jsonOf(store, b), ['2'])
    assert.deepEqual(await store.appendMany([], time, retention), [], 'an empty batch answers []')
  })

  check('appendMany (where implemented): idempotency keys within the batch and with append', async (store) => {
    if (store.appendMany === undefined) return
    const [a, b] = [uniqueChannel('key-a'), uniqueChannel('key-b')]
    const first = await store.append(a, '"first"', Date.now(), retention, { key: 'k1', ttl: 60_000 })
    const key = (k: string): { key: string, ttl: number } => ({ key: k, ttl: 60_000 })
    const results = await store.appendMany([
      { channel: a, json: '"repeat of append"', idempotency: key('k1') },
      { channel: a, json: '"new"', idempotency: key('k2') },
      { channel: a, json: '"repeat in batch"', idempotency: key('k2') },
      { channel: b, json: '"other channel"', idempotency: key('k2') }
    ], Date.now(), retention)
    assert.deepEqual(results.map((result) => [result.seq, result.duplicate === true]), [[first.seq, true], [2, false], [2, true], [1, false]])
    assert.equal(results[0]?.time, first.time, 'a duplicate resolves the first message\'s time')
    assert.deepEqual(await jsonOf(store, a), ['"first"', '"new"'], 'repeats stored nothing')
    const after = await store.append(a, '"again"', Date.now(), retention, key('k2'))
    assert.deepEqual([after.seq, after.duplicate], [2, true], 'append sees the keys appendMany stored')
  })

  check('appendMany (where implemented) applies retention and starts a life after delete at seq 1', async (store) => {
    if (store.appendMany === undefined) return
    const channel = uniqueChannel('retention')
    await store.append(channel, '0', Date.now(), retention)
    await store.delete(channel)
    const results = await store.appendMany(Array.from({ length: 5 }, (_, i) => ({ channel, json: String(i + 1) })), Date.now(), { ...retention, maxMessages: 3 })
    assert.deepEqual(results.map((result) => result.seq), [1, 2, 3, 4, 5])
    const read = await store.read(channel, 'oldest', 10, Date.now())
    assert.deepEqual(read.messages.map((message) => message.json), ['3', '4', '5'], 'maxMessages trims within the batch')
  })

  check('appendMany (where implemented): concurrent batches and appends, through two instances, never interleave one batch\'s messages of a channel', async (store) => {
    if (store.appendMany === undefined) return
    const other = await createStore()
    try {
      const channels = [uniqueChannel('c0'), uniqueChannel('c1'), uniqueChannel('c2')]
      const stores = [store, other]
      const batches = Array.from({ length: 20 }, (_, b) => channels.flatMap((channel) => [0, 1, 2].map((i) => ({ channel, json: JSON.stringify({ b, i }) }))))
      const [batchResults] = await Promise.all([
        Promise.all(batches.map(async (batch, b) => await ((stores[b % 2] as LongPollStore).appendMany as NonNullable<LongPollStore['appendMany']>).call(stores[b % 2], batch, Date.now(), retention))),
        Promise.all(Array.from({ length: 30 }, async (_, i) => await (stores[i % 2] as LongPollStore).append(channels[i % 3] as string, '"single"', Date.now(), retention)))
      ])
      for (const [b, results] of batchResults.entries()) {
        for (let c = 0; c < channels.length; c++) {
          const seqs = results.slice(3 * c, 3 * c + 3).map((result) => result.seq)
          assert.deepEqual(seqs, [seqs[0], (seqs[0] as number) + 1, (seqs[0] as number) + 2], `batch ${b}, channel ${c}: consecutive seqs`)
        }
      }
      for (const channel of channels) {
        const seqs = (await store.read(channel, 'oldest', 1000, Date.now())).messages.map((message) => message.seq)
        if (seqs.length !== 60 + 10) continue // two separate backends (e.g. two MemoryStores): each has its own sequence
        assert.deepEqual(seqs, Array.from({ length: 70 }, (_, i) => i + 1), `${channel}: every message once, no seq lost`)
      }
    } finally {
      await other.close()
    }
  })
}
