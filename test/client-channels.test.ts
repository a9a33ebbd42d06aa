// LongPollClient following many channels in one poll, against a real server over HTTP: the wire, per-channel
// cursors, subscribe/unsubscribe while iterating, per-channel gaps and disconnects, and `share` outside a browser.
import t from 'tap'
import { LongPollClient, LongPollClientError, type LongPollMessage } from '../lib/client/index.js'
import { canShare } from '../lib/client/shared.js'
import { heldPolls, serve, until } from './helpers/app.js'

/** The global fetch, recording each URL asked for (the requests are real). */
function recording (): { fetch: typeof fetch, urls: URL[] } {
  const urls: URL[] = []
  return { urls, fetch: async (input, init) => { urls.push(new URL(String(input))); return await fetch(input, init) } }
}

/** Iterates `client` in the background; `seen` fills as messages are handed out. */
function consume<T> (client: LongPollClient<T>, onMessage: (message: LongPollMessage<T>) => void = () => {}): { seen: Array<LongPollMessage<T>>, done: Promise<void> } {
  const seen: Array<LongPollMessage<T>> = []
  const done = (async () => {
    for await (const message of client) {
      seen.push(message)
      onMessage(message)
    }
  })()
  return { seen, done }
}

const on = <T>(seen: Array<LongPollMessage<T>>, channel: string): T[] => seen.filter((m) => m.channel === channel).map((m) => m.data)

t.test('one channel: the wire is v1\'s (channel=C&cursor=K), and messages carry their channel', async (t) => {
  const { app, base } = await serve(t)
  const { id } = await app.longpoll.push('solo', 1)
  await app.longpoll.push('solo', 2)
  const { fetch, urls } = recording()
  const client = new LongPollClient<number>({ url: base, channel: 'solo', cursor: id, timeout: 5000, fetch })
  const { seen, done } = consume(client, () => client.stop())
  await done
  t.same(seen, [{ id: seen[0]?.id, data: 2, time: seen[0]?.time, channel: 'solo' }])
  t.equal(urls[0]?.search, `?channel=solo&cursor=${encodeURIComponent(id)}&timeout=0`)
  t.same(client.channels, ['solo'])
  t.equal(client.cursor, seen[0]?.id)
  t.same(client.cursors, { solo: seen[0]?.id })
})

t.test('many channels: one held poll, each channel\'s backlog, messages carry their channel, in order per channel', async (t) => {
  const { app, base } = await serve(t)
  for (const [channel, data] of [['a', 1], ['b', 1], ['a', 2], ['c', 1], ['a', 3]] as const) await app.longpoll.push(channel, data)
  const { fetch, urls } = recording()
  const client = new LongPollClient<number | string>({ url: base, channels: ['a', 'b', 'c'], timeout: 10_000, fetch })
  const { seen, done } = consume(client, (message) => {
    if (seen.length === 5) void heldPolls(app, 1).then(() => app.longpoll.push('b', 'live'))
    if (message.data === 'live') client.stop()
  })
  await done
  t.same(on(seen, 'a'), [1, 2, 3])
  t.same(on(seen, 'b'), [1, 'live'])
  t.same(on(seen, 'c'), [1])
  t.equal(seen.length, 6)
  t.same(urls[0]?.searchParams.getAll('channel'), ['a', 'b', 'c'], 'one poll, channel repeated')
  t.equal(urls[0]?.searchParams.get('cursor'), null, 'every channel from its oldest: no cursor')
  const held = urls[urls.length - 1] as URL
  t.equal(held.searchParams.get('cursor')?.split(',').length, 3, 'then the aligned cursor')
  t.equal(client.cursor?.split(',').length, 3)
  t.same(Object.keys(client.cursors), ['a', 'b', 'c'])
})

t.test('the aligned cursor, or the cursors record, resumes a new client without loss or duplicate', async (t) => {
  const { app, base } = await serve(t)
  await app.longpoll.push('a', 1)
  await app.longpoll.push('b', 1)
  const first = new LongPollClient<number>({ url: base, channels: ['a', 'b'] })
  const one = consume(first, () => { if (one.seen.length === 2) first.stop() })
  await one.done
  await app.longpoll.push('b', 2)
  await app.longpoll.push('a', 2)
  for (const cursor of [first.cursor as string, first.cursors]) {
    const next = new LongPollClient<number>({ url: base, channels: ['a', 'b'], cursor })
    const two = consume(next, () => { if (two.seen.length === 2) next.stop() })
    await two.done
    t.same(two.seen.map((m) => [m.channel, m.data]).sort(), [['a', 2], ['b', 2]])
  }
})

t.test('a channel starting at latest gets only what is pushed after it, next to channels with a backlog', async (t) => {
  const { app, base } = await serve(t)
  await app.longpoll.push('old', 'backlog')
  await app.longpoll.push('new', 'before')
  const client = new LongPollClient<string>({ url: base, channels: ['old', 'new'], cursor: { new: 'latest' }, timeout: 10_000 })
  const { seen, done } = consume(client, (message) => {
    if (message.data === 'backlog') void heldPolls(app, 1).then(() => app.longpoll.push('new', 'after'))
    if (message.data === 'after') client.stop()
  })
  await done
  t.same(seen.map((m) => [m.channel, m.data]), [['old', 'backlog'], ['new', 'after']])
})

t.test('subscribe while a poll is held: it is aborted and made again at once, with the backlog from the cursor', async (t) => {
  const { app, base } = await serve(t)
  const ids: string[] = []
  for (const i of [1, 2, 3]) ids.push((await app.longpoll.push('later', i)).id)
  const client = new LongPollClient<number>({ url: base, channel: 'first', cursor: 'latest', timeout: 60_000 })
  let subscribedAt = 0
  const { seen, done } = consume(client, () => { if (seen.length === 3) client.stop() })
  await heldPolls(app, 1)
  subscribedAt = Date.now()
  client.subscribe('later', { cursor: ids[0] as string })
  await until(() => seen.length >= 2, 10_000, 'the backlog of the new channel')
  t.ok(Date.now() - subscribedAt < 5000, 'long before the 60 s hold would have ended')
  t.same(on(seen, 'later'), [2, 3])
  t.equal(app.longpoll.stats().aborted, 1, 'the held poll was aborted')
  await heldPolls(app, 1)
  await app.longpoll.push('first', 'live')
  await done
  t.same(seen.map((m) => [m.channel, m.data]), [['later', 2], ['later', 3], ['first', 'live']])
  t.same(client.channels, ['first', 'later'])
})

t.test('unsubscribe while iterating: nothing more of that channel, even already received; the others lose nothing', async (t) => {
  const { app, base } = await serve(t)
  for (const i of [1, 2, 3]) {
    await app.longpoll.push('keep', i)
    await app.longpoll.push('drop', i)
  }
  const client = new LongPollClient<number | string>({ url: base, channels: ['keep', 'drop'], timeout: 60_000, limit: 10 })
  const { seen, done } = consume(client, (message) => {
    if (message.channel === 'drop') client.unsubscribe('drop') // the answer still holds drop 2 and 3
    if (message.data === 'end') client.stop()
  })
  await until(() => on(seen, 'keep').length === 3, 10_000, 'the backlog of keep')
  await heldPolls(app, 1)
  t.same(client.channels, ['keep'])
  await app.longpoll.push('drop', 4)
  await app.longpoll.push('keep', 'end')
  await done
  t.same(on(seen, 'drop'), [1], 'the first message of drop only')
  t.same(on(seen, 'keep'), [1, 2, 3, 'end'])
  t.notOk('drop' in client.cursors)
})

t.test('300 pushes over 5 channels while channels are dropped and taken up again from their cursors: each exactly once, in order', async (t) => {
  const { app, base } = await serve(t)
  const channels = ['c0', 'c1', 'c2', 'c3', 'c4']
  let seed = 42 // mulberry32: a reproducible run
  const random = (n: number): number => {
    seed = (seed + 0x6D2B79F5) | 0
    let x = Math.imul(seed ^ (seed >>> 15), 1 | seed)
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x
    return (((x ^ (x >>> 14)) >>> 0) % n)
  }
  const pushed = new Map(channels.map((c) => [c, [] as number[]]))
  const client = new LongPollClient<number>({ url: base, channels: channels.slice(0, 3), timeout: 30_000, limit: 7 })
  const parked = new Map<string, string | undefined>() // unsubscribed channel → the cursor to take it up from
  for (const c of channels.slice(3)) parked.set(c, undefined)
  const { seen, done } = consume(client)
  let changes = 0

  for (let i = 0; i < 300; i++) {
    const channel = channels[random(5)] as string
    await app.longpoll.push(channel, i)
    pushed.get(channel)?.push(i)
    if (random(4) === 0) {
      if (random(3) === 0) await heldPolls(app, 1) // some changes meet a held poll, others an answer on its way
      const target = channels[random(5)] as string
      if (parked.has(target)) {
        const cursor = parked.get(target)
        parked.delete(target)
        client.subscribe(target, cursor === undefined ? {} : { cursor })
        changes++
      } else if (client.channels.length > 1) {
        parked.set(target, client.cursors[target])
        client.unsubscribe(target)
        changes++
      }
    }
    if (random(3) === 0) await new Promise((resolve) => setImmediate(resolve)) // let polls and answers interleave
  }
  for (const [target, cursor] of parked) client.subscribe(target, cursor === undefined ? {} : { cursor })
  for (const c of channels) await app.longpoll.push(c, -1)
  await until(() => seen.filter((m) => m.data === -1).length === 5, 20_000, 'the last message of every channel')
  client.stop()
  await done
  for (const c of channels) t.same(on(seen, c), [...pushed.get(c) as number[], -1], `${c}: every message once, in order`)
  t.ok(changes >= 40, `${changes} subscribes and unsubscribes`)
  t.ok(app.longpoll.stats().aborted > 0, `${app.longpoll.stats().aborted} held polls aborted by them`)
})

t.test('a gap is reported for the channel that had it, only', async (t) => {
  const { app, base } = await serve(t, { maxMessages: 3 })
  const { id } = await app.longpoll.push('trimmed', 0)
  const intact = await app.longpoll.push('intact', 0)
  for (const i of [1, 2, 3, 4, 5]) await app.longpoll.push('trimmed', i)
  await app.longpoll.push('intact', 1)
  const gaps: string[] = []
  const client = new LongPollClient<number>({ url: base, channels: ['trimmed', 'intact'], cursor: { trimmed: id, intact: intact.id }, onGap: (channel) => gaps.push(channel) })
  const { seen, done } = consume(client, () => { if (seen.length === 4) client.stop() })
  await done
  t.same(gaps, ['trimmed'])
  t.same(on(seen, 'trimmed'), [3, 4, 5])
  t.same(on(seen, 'intact'), [1])
})

t.test('a disconnected channel ends for that channel only; the last one ends the iteration', async (t) => {
  const { app, base } = await serve(t)
  const disconnected: string[] = []
  const client = new LongPollClient<string>({ url: base, channels: ['room', 'inbox', 'lobby'], cursor: 'latest,latest,latest', timeout: 30_000, onDisconnect: (channel) => disconnected.push(channel) })
  const { seen, done } = consume(client)
  await heldPolls(app, 1)
  await app.longpoll.disconnect('room')
  await until(() => disconnected.length === 1, 10_000, 'room disconnected')
  t.same(client.channels, ['inbox', 'lobby'])
  await heldPolls(app, 1)
  await app.longpoll.push('inbox', 'still here')
  await until(() => seen.length === 1, 10_000, 'a message on inbox')
  t.equal(client.endReason, undefined)
  await heldPolls(app, 1)
  await app.longpoll.disconnect('inbox')
  await until(() => disconnected.length === 2, 10_000, 'inbox disconnected')
  await heldPolls(app, 1)
  await app.longpoll.disconnect('lobby')
  await done
  t.same(disconnected, ['room', 'inbox', 'lobby'])
  t.same(seen.map((m) => [m.channel, m.data]), [['inbox', 'still here']])
  t.equal(client.endReason, 'disconnected')
  t.equal(client.state, 'stopped')
})

t.test('with no channel, it polls nothing until a subscribe', async (t) => {
  const { app, base } = await serve(t)
  const { fetch, urls } = recording()
  const client = new LongPollClient<number>({ url: base, channels: [], timeout: 30_000, fetch })
  const { seen, done } = consume(client, () => client.stop())
  await app.longpoll.push('late', 1)
  client.subscribe('late')
  await done
  t.same(seen.map((m) => [m.channel, m.data]), [['late', 1]])
  t.same(urls.map((url) => url.searchParams.getAll('channel')), [['late']], 'its first poll is for the channel subscribed')
})

t.test('share where Web Locks or BroadcastChannel are missing (Node 20): a poll of its own', { skip: canShare() ? 'this runtime has both: share shares' : false }, async (t) => {
  const { app, base } = await serve(t)
  await app.longpoll.push('node', 1)
  const { fetch, urls } = recording()
  const client = new LongPollClient<number>({ url: base, channel: 'node', share: true, fetch })
  const { seen, done } = consume(client, () => client.stop())
  await done
  t.same(on(seen, 'node'), [1])
  t.ok(urls.length > 0, 'through its own fetch')
})

t.test('a channel the server refuses, subscribed while iterating, rejects the iteration with a coded error', async (t) => {
  const { app, base } = await serve(t)
  const client = new LongPollClient({ url: base, channel: 'fine', cursor: 'latest', timeout: 30_000 })
  const { done } = consume(client)
  await heldPolls(app, 1)
  client.subscribe('not a valid channel')
  await t.rejects(done, LongPollClientError)
  await heldPolls(app, 0)
})

t.test('options: channel or channels, distinct names, a cursor entry per channel', async (t) => {
  t.throws(() => new LongPollClient({ url: 'http://x', channel: 'a', channels: ['b'] } as never), /not both/)
  t.throws(() => new LongPollClient({ url: 'http://x', channels: 'a' } as never), TypeError)
  t.throws(() => new LongPollClient({ url: 'http://x', channels: ['a', 'a'] }), /twice/)
  t.throws(() => new LongPollClient({ url: 'http://x', channels: ['a', ''] }), TypeError)
  t.throws(() => new LongPollClient({ url: 'http://x', channels: ['a', 'b'], cursor: 'k.1' }), /1 entries for 2 channels/)
  t.throws(() => new LongPollClient({ url: 'http://x', channels: ['a'], cursor: { b: 'k.1' } }), /not in "channels"/)
  const client = new LongPollClient({ url: 'http://x', channels: ['a', 'b'], cursor: ',k.4' })
  t.same(client.cursors, { b: 'k.4' })
  t.equal(client.cursor, ',k.4')
  t.throws(() => client.subscribe(''), TypeError)
  t.throws(() => client.subscribe('c', { cursor: 'a,b' }), TypeError)
  client.subscribe('c', { cursor: 'latest' })
  client.subscribe('c', { cursor: 'k.9' }) // already followed: no change
  t.same(client.channels, ['a', 'b', 'c'])
  t.same(client.cursors, { b: 'k.4', c: 'latest' })
  client.unsubscribe('a')
  client.unsubscribe('nope')
  t.same(client.channels, ['b', 'c'])
})

t.test('the client modules have no Node-only import', async (t) => {
  const { readdir, readFile } = await import('node:fs/promises')
  const dir = new URL('../lib/client/', import.meta.url)
  for (const file of await readdir(dir)) {
    const source = await readFile(new URL(file, dir), 'utf8')
    t.notMatch(source, /from\s+['"](node:|fs|path|http|https|net|events|buffer|stream)/, file)
    t.notMatch(source, /require\(/, file)
  }
})
