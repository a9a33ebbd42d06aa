// Cursor semantics: absent (the backlog), `latest`, opaque cursors, ids as cursors, limit batching, gaps, epochs.
import t from 'tap'
import { makeApp } from './helpers/app.js'
import type { FastifyInstance } from 'fastify'

async function get (app: FastifyInstance, query: string): Promise<any> {
  const res = await app.inject({ method: 'GET', url: `/lp/poll?timeout=0&${query}` })
  if (res.statusCode !== 200) throw new Error(`poll answered ${res.statusCode}: ${res.body}`)
  return res.json()
}

t.test('no cursor starts at the oldest retained message; the answer cursor continues from the last one', async (t) => {
  const app = await makeApp(t)
  const ids = []
  for (let i = 1; i <= 3; i++) ids.push((await app.longpoll.push('a', { n: i })).id)
  const first = await get(app, 'channel=a')
  t.equal(first.status, 'ok')
  t.same(first.messages.map((m: any) => m.data), [{ n: 1 }, { n: 2 }, { n: 3 }])
  t.same(first.messages.map((m: any) => m.id), ids)
  t.equal(first.cursor, ids[2])
  for (const m of first.messages) t.ok(Number.isInteger(m.time) && m.time > 1.7e12, 'time is a ms timestamp')
  const next = await get(app, `channel=a&cursor=${first.cursor}`)
  t.equal(next.status, 'timeout')
  t.equal(next.cursor, ids[2], 'an empty answer hands back the cursor it started from')
})

t.test('ids increase in push order, and a message id is a valid cursor', async (t) => {
  const app = await makeApp(t)
  const ids: string[] = []
  for (let i = 0; i < 12; i++) ids.push((await app.longpoll.push('a', i)).id)
  const seqs = ids.map((id) => Number(id.split('.')[1]))
  t.same(seqs, [...seqs].sort((x, y) => x - y), 'seqs increase')
  t.equal(new Set(ids.map((id) => id.split('.')[0])).size, 1, 'one life, one epoch')
  const after = await get(app, `channel=a&cursor=${ids[4]}`)
  t.same(after.messages.map((m: any) => m.data), [5, 6, 7, 8, 9, 10, 11])
})

t.test('latest skips the backlog and still returns a real cursor', async (t) => {
  const app = await makeApp(t)
  await app.longpoll.push('a', 'old')
  const latest = await get(app, 'channel=a&cursor=latest')
  t.equal(latest.status, 'timeout')
  t.same(latest.messages, [])
  t.match(latest.cursor, /\.1$/)
  await app.longpoll.push('a', 'new')
  const next = await get(app, `channel=a&cursor=${latest.cursor}`)
  t.same(next.messages.map((m: any) => m.data), ['new'])
})

t.test('limit caps a batch; the rest comes at once on the next poll', async (t) => {
  const app = await makeApp(t, { maxBatch: 5 })
  for (let i = 0; i < 12; i++) await app.longpoll.push('a', i)
  const seen: number[] = []
  let cursor = ''
  for (const limit of [2, 5, 5]) {
    const body = await get(app, `channel=a&limit=${limit}${cursor ? `&cursor=${cursor}` : ''}`)
    t.equal(body.messages.length, Math.min(limit, 12 - seen.length))
    seen.push(...body.messages.map((m: any) => m.data))
    cursor = body.cursor
  }
  t.same(seen, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11])
  const defaultBatch = await get(app, 'channel=a')
  t.equal(defaultBatch.messages.length, 5, 'without limit, maxBatch')
})

t.test('gap: true when messages after the cursor were trimmed by maxMessages', async (t) => {
  const app = await makeApp(t, { maxMessages: 3 })
  const { id: first } = await app.longpoll.push('a', 0)
  for (let i = 1; i < 6; i++) await app.longpoll.push('a', i)
  const body = await get(app, `channel=a&cursor=${first}`)
  t.equal(body.gap, true)
  t.same(body.messages.map((m: any) => m.data), [3, 4, 5], 'only the retained messages')
  const oldest = await get(app, 'channel=a')
  t.notOk('gap' in oldest, 'no cursor, no position to have a gap from')
  const caughtUp = await get(app, `channel=a&cursor=${body.cursor}`)
  t.notOk('gap' in caughtUp, 'the gap is reported once')
})

t.test('gap: true when messages after the cursor expired (messageTtl)', async (t) => {
  const app = await makeApp(t, { messageTtl: 30 })
  const { id } = await app.longpoll.push('a', 'seen')
  await app.longpoll.push('a', 'expires')
  await new Promise((resolve) => setTimeout(resolve, 60)) // let the TTL run out; nothing to await but time
  const empty = await get(app, `channel=a&cursor=${id}`)
  t.equal(empty.gap, true, 'reported even with no message to return')
  t.same(empty.messages, [])
  t.match(empty.cursor, /\.2$/, 'the cursor moves past the lost message')
  const { id: fresh } = await app.longpoll.push('a', 'fresh')
  const next = await get(app, `channel=a&cursor=${empty.cursor}`)
  t.same(next.messages.map((m: any) => m.id), [fresh])
  t.notOk('gap' in next)
})

t.test('a cursor from another life of the channel is never read as a position in the new one', async (t) => {
  const app = await makeApp(t)
  for (let i = 0; i < 5; i++) await app.longpoll.push('a', `old-${i}`)
  const { cursor: oldCursor } = await get(app, 'channel=a')
  await app.longpoll.disconnect('a')
  const emptyLife = await get(app, 'channel=a')
  t.same(emptyLife.messages, [], 'a later poll starts empty')
  t.not(emptyLife.cursor.split('.')[0], oldCursor.split('.')[0], 'a new epoch')
  await app.longpoll.push('a', 'new-0')
  await app.longpoll.push('a', 'new-1')
  const body = await get(app, `channel=a&cursor=${oldCursor}`)
  t.equal(body.gap, true)
  t.same(body.messages.map((m: any) => m.data), ['new-0', 'new-1'], 'from the oldest message of the new life')
})

t.test('a cursor from another store (a restarted memory store) answers from the oldest message with a gap', async (t) => {
  const before = await makeApp(t)
  await before.longpoll.push('a', 'before restart')
  const { cursor } = await get(before, 'channel=a')
  const after = await makeApp(t)
  await after.longpoll.push('a', 'after restart')
  const body = await get(after, `channel=a&cursor=${cursor}`)
  t.equal(body.gap, true)
  t.same(body.messages.map((m: any) => m.data), ['after restart'])
})

t.test('a timeout above maxTimeout is clamped', async (t) => {
  const app = await makeApp(t, { maxTimeout: 150, timeout: 100 })
  const started = Date.now()
  const res = await app.inject({ method: 'GET', url: '/lp/poll?channel=a&timeout=999999999' })
  const took = Date.now() - started
  t.equal(res.json().status, 'timeout')
  t.ok(took >= 140 && took < 5000, `answered after the clamp, not the asked timeout (${took} ms)`)
})
