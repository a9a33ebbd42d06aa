// LongPollClient in Node against a real server: cursor kept, for-await, stop(), backoff, Retry-After.
import t from 'tap'
import { LongPollClient, LongPollClientError, parseRetryAfter, type LongPollClientState } from '../lib/client/index.js'
import { heldPolls, serve } from './helpers/app.js'

t.test('it yields the backlog then live messages, in order, and keeps the cursor', async (t) => {
  const { app, base } = await serve(t)
  const first = await app.longpoll.push('feed', 'backlog-1')
  await app.longpoll.push('feed', 'backlog-2')
  const client = new LongPollClient<string>({ url: base, channel: 'feed', timeout: 10_000 })
  const seen: string[] = []
  for await (const message of client) {
    seen.push(message.data)
    t.equal(client.cursor, message.id, 'the cursor follows each message handed out')
    if (seen.length === 2) void heldPolls(app, 1).then(() => app.longpoll.push('feed', 'live'))
    if (seen.length === 3) client.stop()
  }
  t.same(seen, ['backlog-1', 'backlog-2', 'live'])
  t.equal(client.endReason, 'stopped')
  t.not(client.cursor, first.id)
})

t.test('it resumes from a cursor given to the constructor', async (t) => {
  const { app, base } = await serve(t)
  const { id } = await app.longpoll.push('feed', 1)
  await app.longpoll.push('feed', 2)
  const client = new LongPollClient({ url: `${base}/`, channel: 'feed', cursor: id })
  const seen: unknown[] = []
  for await (const message of client) {
    seen.push(message.data)
    client.stop()
  }
  t.same(seen, [2], 'only the message after the cursor (an iteration that yields nothing fails here)')
})

t.test('stop() ends an iteration waiting on a held poll at once', async (t) => {
  const { app, base } = await serve(t)
  const client = new LongPollClient({ url: base, channel: 'quiet', cursor: 'latest', timeout: 60_000 })
  const iteration = (async () => { for await (const _ of client) t.fail('no message expected') })()
  await heldPolls(app, 1)
  const started = Date.now()
  client.stop()
  await iteration
  t.ok(Date.now() - started < 10_000, 'ended long before the 60 s hold')
  t.equal(client.state, 'stopped')
  await heldPolls(app, 0) // the abort released the poll held on the server
  t.equal(app.longpoll.stats().aborted, 1)
})

t.test('a disconnected channel ends the iteration', async (t) => {
  const { app, base } = await serve(t)
  const client = new LongPollClient({ url: base, channel: 'room', cursor: 'latest' })
  const iteration = (async () => { for await (const _ of client) t.fail('no message expected') })()
  await heldPolls(app, 1)
  await app.longpoll.disconnect('room')
  await iteration
  t.equal(client.endReason, 'disconnected')
  t.equal(client.state, 'stopped')
})

t.test('503 with Retry-After: it waits at least that long, then retries', async (t) => {
  const { app, base } = await serve(t, { maxHeldPolls: 0, retryAfter: 1 })
  const states: Array<[LongPollClientState, number | undefined]> = []
  const client = new LongPollClient({
    url: base,
    channel: 'busy',
    minDelay: 10,
    onState: (state, detail) => {
      states.push([state, detail?.delay])
      if (states.filter(([s]) => s === 'reconnecting').length === 2) client.stop()
    }
  })
  const started = Date.now()
  for await (const _ of client) t.fail('no message expected')
  const retries = states.filter(([s]) => s === 'reconnecting')
  t.equal(retries.length, 2)
  for (const [, delay] of retries) t.ok((delay as number) >= 1000, `delay ${delay} honours Retry-After: 1`)
  t.ok(Date.now() - started >= 1000, 'really waited')
  t.equal(app.longpoll.stats().rejected, 2)
})

t.test('network errors: exponential backoff with jitter, growing to maxDelay', async (t) => {
  const { app, base } = await serve(t)
  await app.close() // nothing listens on this port any more
  const delays: number[] = []
  const client = new LongPollClient({
    url: base,
    channel: 'gone',
    minDelay: 5,
    maxDelay: 40,
    onState: (state, detail) => {
      if (state === 'reconnecting') delays.push(detail?.delay as number)
      if (delays.length === 6) client.stop()
    }
  })
  for await (const _ of client) t.fail('no message expected')
  t.equal(delays.length, 6)
  const ceilings = [5, 10, 20, 40, 40, 40]
  delays.forEach((delay, i) => t.ok(delay >= (ceilings[i] as number) / 2 && delay <= (ceilings[i] as number), `retry ${i}: ${delay.toFixed(1)} ms within [${(ceilings[i] as number) / 2}, ${ceilings[i]}]`))
})

t.test('a 4xx that retrying cannot cure rejects the iteration with a coded error', async (t) => {
  const { base } = await serve(t)
  const client = new LongPollClient({ url: base, channel: 'not a valid channel' })
  await t.rejects((async () => { for await (const _ of client) t.fail('no message expected') })(), LongPollClientError)
  const denied = new LongPollClient({ url: base, channel: 'x', cursor: 'bogus' })
  await t.rejects((async () => { for await (const _ of denied) t.fail('no message expected') })(), { status: 400, code: 'FST_LONGPOLL_BAD_CURSOR' })
})

t.test('options are checked, and only one iteration runs at a time', async (t) => {
  t.throws(() => new LongPollClient({ url: 'http://x', channel: '' }), TypeError)
  t.throws(() => new LongPollClient({ url: 42 as never, channel: 'a' }), TypeError)
  const client = new LongPollClient({ url: 'http://127.0.0.1:9', channel: 'a', minDelay: 1000 })
  const first = client[Symbol.asyncIterator]()
  const pending = first.next()
  await t.rejects(client[Symbol.asyncIterator]().next(), /one iteration/)
  client.stop()
  t.same(await pending, { done: true, value: undefined })
})

t.test('Retry-After parsing: seconds or an HTTP date', async (t) => {
  t.equal(parseRetryAfter('3'), 3000)
  t.equal(parseRetryAfter(null), undefined)
  t.equal(parseRetryAfter('soon'), undefined)
  const inFive = parseRetryAfter(new Date(Date.now() + 5000).toUTCString()) as number
  t.ok(inFive > 3000 && inFive <= 5000)
})

t.test('the client module has no Node-only import', async (t) => {
  const { readFile } = await import('node:fs/promises')
  const source = await readFile(new URL('../lib/client/index.ts', import.meta.url), 'utf8')
  t.notMatch(source, /from\s+['"](node:|fs|path|http|https|net|events|buffer|stream)/)
  t.notMatch(source, /require\(/)
})

t.test('in a quiet channel it reports connecting, then live at once (not after a whole hold)', async (t) => {
  const { app, base } = await serve(t)
  const states: LongPollClientState[] = []
  let live = (): void => {}
  const isLive = new Promise<void>((resolve) => { live = resolve })
  const client = new LongPollClient({
    url: base,
    channel: 'quiet',
    timeout: 30_000,
    onState: (state) => {
      states.push(state)
      if (state === 'live') live()
    }
  })
  const started = Date.now()
  const iteration = (async () => { for await (const _ of client) t.fail('no message expected') })()
  await isLive
  t.ok(Date.now() - started < 5000, 'live long before the 30 s hold ends')
  await heldPolls(app, 1) // and then it holds a long poll
  client.stop()
  await iteration
  t.same(states, ['connecting', 'live', 'stopped'])
})

t.test('a relative url resolves against the page location in a browser', async (t) => {
  const { app, base } = await serve(t)
  await app.longpoll.push('page', 'hello')
  const origin = new URL(base).origin
  ;(globalThis as { location?: { href: string } }).location = { href: `${origin}/chat/room` }
  t.teardown(() => { delete (globalThis as { location?: unknown }).location })
  const client = new LongPollClient({ url: '/lp', channel: 'page' })
  const seen: unknown[] = []
  for await (const message of client) {
    seen.push(message.data)
    client.stop()
  }
  t.same(seen, ['hello'], 'reached the server through the page-relative url')
})
