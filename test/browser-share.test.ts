// `share: true` in a real Chromium: the pages of one origin (one browser context) hold one poll between them,
// whichever page leads, and each page receives exactly the messages of its own channels, once each, in order.
import t, { type Test } from 'tap'
import { existsSync } from 'node:fs'
import { readdir, readFile } from 'node:fs/promises'
import type { AddressInfo } from 'node:net'
import Fastify from 'fastify'
import type { Browser, BrowserContext, Page } from 'playwright-core'
import longpoll from '../lib/index.js'
import { launchChromium } from './helpers/chromium.js'
import { until } from './helpers/app.js'

const root = new URL('../', import.meta.url)
const clientDir = new URL('dist/esm/client/', root)
if (!existsSync(new URL('index.js', clientDir))) {
  throw new Error('dist/ is missing: the browser loads the built client; run `npm run build` first')
}

const WAIT = { timeout: 30_000 }

// A page that follows channels through a shared client, records what it receives, and names itself on its polls.
const PAGE = `<!doctype html><meta charset="utf-8"><title>share</title><link rel="icon" href="data:,">
<script type="module">
import { LongPollClient } from '/client/index.js'
const name = new URLSearchParams(location.search).get('name')
window.received = []
window.states = []
window.gaps = []
window.follow = (channels, cursor) => {
  const client = new LongPollClient({
    url: '/lp', channels, cursor, share: true, timeout: 20000, minDelay: 50,
    headers: { 'x-page': name },
    onState: (state) => window.states.push(state),
    onGap: (channel) => window.gaps.push(channel)
  })
  window.client = client
  ;(async () => { for await (const m of client) window.received.push([m.channel, m.data]) })()
    .catch((err) => { window.failed = String(err) })
}
window.ready = true
</script>`

const app = Fastify({ forceCloseConnections: true })
t.teardown(() => app.close())
/** Every poll the server got: which page sent it (the leading one), and when. */
const polls: Array<{ page: string, url: string, at: number }> = []
app.addHook('onRequest', async (request) => {
  if (request.url.startsWith('/lp/poll')) polls.push({ page: String(request.headers['x-page']), url: request.url, at: Date.now() })
})
await app.register(longpoll, { prefix: '/lp' })
const modules = new Map<string, string>()
for (const file of await readdir(clientDir)) {
  if (file.endsWith('.js')) modules.set(file, await readFile(new URL(file, clientDir), 'utf8'))
}
app.get('/', async (request, reply) => reply.type('text/html').send(PAGE))
app.get<{ Params: { file: string } }>('/client/:file', async (request, reply) => {
  const source = modules.get(request.params.file)
  if (source === undefined) return reply.code(404).send()
  return reply.type('text/javascript').send(source)
})
await app.listen({ port: 0, host: '127.0.0.1' })
const origin = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`

const browser: Browser = await launchChromium(t)

interface Tab { name: string, page: Page, errors: Error[] }

async function open (context: BrowserContext, name: string): Promise<Tab> {
  const page = await context.newPage()
  const errors: Error[] = []
  page.on('pageerror', (err) => errors.push(err))
  await page.goto(`${origin}/?name=${name}`)
  await page.waitForFunction(() => (window as any).ready === true, null, WAIT)
  return { name, page, errors }
}

async function follow (tab: Tab, channels: string[], cursor?: Record<string, string>): Promise<void> {
  await tab.page.evaluate(([channels, cursor]) => (window as any).follow(channels, cursor), [channels, cursor] as const)
}

async function received (tab: Tab): Promise<Array<[string, unknown]>> {
  return tab.page.evaluate(() => (window as any).received)
}

/** What `tab` received on `channel`, once it has received `count` messages there. */
async function receivedOn (tab: Tab, channel: string, count: number): Promise<unknown[]> {
  await tab.page.waitForFunction(([channel, count]) => (window as any).received.filter((m: [string]) => m[0] === channel).length >= count, [channel, count] as const, WAIT)
  return (await received(tab)).filter(([c]) => c === channel).map(([, data]) => data)
}

async function live (tab: Tab): Promise<void> {
  await tab.page.waitForFunction(() => (window as any).states.includes('live'), null, WAIT)
}

/** The page the server's newest poll came from: the leading page. */
function leader (): string {
  return (polls[polls.length - 1] as { page: string }).page
}

/** Waits until one poll is held, and it follows exactly `channels`. */
async function holding (channels: string[]): Promise<void> {
  const wanted = [...channels].sort().join(',')
  await until(() => {
    const last = polls[polls.length - 1]
    if (last === undefined || app.longpoll.stats().heldPolls !== 1) return false
    const asked = new URL(last.url, origin).searchParams.getAll('channel').sort().join(',')
    return asked === wanted && !/timeout=0(&|$)/.test(last.url)
  }, 15_000, `one held poll on ${wanted}`)
}

async function newContext (tt: Test): Promise<BrowserContext> {
  const context = await browser.newContext()
  tt.teardown(() => context.close())
  polls.length = 0
  return context
}

const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i)

t.test('a page alone polls for itself through the shared client', async (t) => {
  const context = await newContext(t)
  const solo = await open(context, 'solo')
  await app.longpoll.push('alone', 1)
  await follow(solo, ['alone'])
  t.same(await receivedOn(solo, 'alone', 1), [1])
  await holding(['alone'])
  await app.longpoll.push('alone', 2)
  t.same(await receivedOn(solo, 'alone', 2), [1, 2])
  t.same([...new Set(polls.map((poll) => poll.page))], ['solo'])
  t.same(solo.errors, [])
})

t.test('three pages, overlapping channels: the server holds one poll, each page gets exactly its messages', async (t) => {
  const context = await newContext(t)
  const tabs = [await open(context, 'p1'), await open(context, 'p2'), await open(context, 'p3')] as const
  const wants = { p1: ['x', 'y'], p2: ['y', 'z'], p3: ['z'] } as Record<string, string[]>
  for (const tab of tabs) await follow(tab, wants[tab.name] as string[])
  for (const tab of tabs) await live(tab)
  await holding(['x', 'y', 'z'])
  const pollers = new Set(polls.map((poll) => poll.page))
  t.equal(pollers.size, 1, `only the leading page polls (${[...pollers].join(', ')})`)

  for (const i of range(1, 20)) {
    for (const channel of ['x', 'y', 'z']) await app.longpoll.push(channel, i)
    t.ok(app.longpoll.stats().heldPolls <= 1, 'never more than one poll held')
  }
  for (const tab of tabs) {
    for (const channel of ['x', 'y', 'z']) {
      if (wants[tab.name]?.includes(channel)) t.same(await receivedOn(tab, channel, 20), range(1, 20), `${tab.name} got ${channel} once each, in order`)
    }
  }
  // A last message on each channel proves nothing else arrived before it (a duplicate would sit in between).
  for (const channel of ['x', 'y', 'z']) await app.longpoll.push(channel, 'end')
  for (const tab of tabs) {
    const channels = wants[tab.name] as string[]
    for (const channel of channels) t.same(await receivedOn(tab, channel, 21), [...range(1, 20), 'end'])
    t.equal((await received(tab)).length, 21 * channels.length, `${tab.name} got nothing of other channels`)
  }
  await holding(['x', 'y', 'z'])
  t.same([...new Set(polls.map((poll) => poll.page))], [...pollers], 'still one page polling')
  t.same(tabs.flatMap((tab) => tab.errors), [])
})

t.test('the leading page closes while pushes continue: another leads, nothing lost, nothing twice', async (t) => {
  const context = await newContext(t)
  const tabs = [await open(context, 'q1'), await open(context, 'q2'), await open(context, 'q3')]
  const wants: Record<string, string[]> = { q1: ['feed', 'extra'], q2: ['feed'], q3: ['extra', 'feed'] }
  for (const tab of tabs) await follow(tab, wants[tab.name] as string[])
  for (const tab of tabs) await live(tab)
  await holding(['feed', 'extra'])
  const first = leader()
  const leading = tabs.find((tab) => tab.name === first) as Tab
  const others = tabs.filter((tab) => tab !== leading)

  let closedAt = 0
  for (const i of range(1, 60)) {
    await app.longpoll.push('feed', i)
    await app.longpoll.push('extra', i)
    if (i === 20) {
      await receivedOn(others[0] as Tab, 'feed', 20)
      closedAt = Date.now()
      await leading.page.close()
    }
    // Pushes keep coming while the lead passes, about one per 10 ms (the scenario, not a wait for an event).
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  for (const tab of others) {
    for (const channel of wants[tab.name] as string[]) {
      t.same(await receivedOn(tab, channel, 60), range(1, 60), `${tab.name}: every message of ${channel} once, in order`)
    }
  }
  await app.longpoll.push('feed', 'end')
  await app.longpoll.push('extra', 'end')
  for (const tab of others) {
    const channels = wants[tab.name] as string[]
    for (const channel of channels) t.same(await receivedOn(tab, channel, 61), [...range(1, 60), 'end'])
    t.equal((await received(tab)).length, 61 * channels.length, `${tab.name}: nothing else`)
  }

  await holding(['feed', 'extra'])
  const next = leader()
  t.not(next, first, `${next} leads now`)
  const takeover = (polls.find((poll) => poll.page === next && poll.at >= closedAt) as { at: number }).at - closedAt
  t.ok(takeover < 5000, `the new leader polled ${takeover} ms after the old one closed`)
  t.same(new Set(polls.filter((poll) => poll.at >= closedAt).map((poll) => poll.page)), new Set([next]), 'then only the new leader polls')
  t.same(others.flatMap((tab) => tab.errors), [])
})

t.test('pages subscribing at runtime with backlog cursors get their backlogs once; the others nothing twice', async (t) => {
  const context = await newContext(t)
  const tabs = [await open(context, 'r1'), await open(context, 'r2'), await open(context, 'r3')]
  const [r1, r2, r3] = tabs as [Tab, Tab, Tab]
  const ids: string[] = []
  for (const i of range(1, 5)) ids.push((await app.longpoll.push('backlog', i)).id)
  for (const tab of tabs) await follow(tab, ['side'])
  for (const tab of tabs) await live(tab)
  await app.longpoll.push('side', 1)

  await r1.page.evaluate((cursor) => (window as any).client.subscribe('backlog', { cursor }), ids[1] as string)
  t.same(await receivedOn(r1, 'backlog', 3), [3, 4, 5])
  await holding(['side', 'backlog'])
  await app.longpoll.push('side', 2)
  // r2 asks for less of the backlog, r3 for all of it: the leader polls from the earliest, the others skip.
  await r2.page.evaluate((cursor) => (window as any).client.subscribe('backlog', { cursor }), ids[3] as string)
  t.same(await receivedOn(r2, 'backlog', 1), [5])
  await r3.page.evaluate(() => (window as any).client.subscribe('backlog'))
  t.same(await receivedOn(r3, 'backlog', 5), [1, 2, 3, 4, 5])
  await holding(['side', 'backlog'])
  await app.longpoll.push('side', 3)

  await app.longpoll.push('backlog', 6)
  t.same(await receivedOn(r1, 'backlog', 4), [3, 4, 5, 6], 'r1: its backlog, then live, nothing twice')
  t.same(await receivedOn(r2, 'backlog', 2), [5, 6])
  t.same(await receivedOn(r3, 'backlog', 6), [1, 2, 3, 4, 5, 6])
  await app.longpoll.push('backlog', 'end')
  await app.longpoll.push('side', 'end')
  for (const [tab, count] of [[r1, 5], [r2, 3], [r3, 7]] as const) {
    await receivedOn(tab, 'backlog', count)
    t.same(await receivedOn(tab, 'side', 4), [1, 2, 3, 'end'], `${tab.name}: the other channel, nothing lost or twice`)
    t.equal((await received(tab)).length, count + 4, `${tab.name}: nothing more`)
  }
  t.equal(new Set(polls.filter((poll) => !/cursor=latest/.test(poll.url)).map((poll) => poll.page)).size, 1, 'one page polls')
  t.same(tabs.flatMap((tab) => tab.errors), [])
})

// Headless Chromium does not freeze a page on request (CDP's Page.setWebLifecycleState leaves a visible page
// running, and headless pages are always visible), so this dispatches the Page Lifecycle events themselves: what
// is tested is that a page told it is being frozen gives up the lead at once and, resumed, rejoins as a follower.
t.test('on its freeze event the leading page hands the lead over; on resume it follows again, nothing lost or twice', async (t) => {
  const context = await newContext(t)
  const tabs = [await open(context, 's1'), await open(context, 's2'), await open(context, 's3')]
  for (const tab of tabs) await follow(tab, ['cold'])
  for (const tab of tabs) await live(tab)
  await holding(['cold'])
  const first = leader()
  const frozen = tabs.find((tab) => tab.name === first) as Tab
  await app.longpoll.push('cold', 1)
  for (const tab of tabs) await receivedOn(tab, 'cold', 1)

  const frozenAt = Date.now()
  await frozen.page.evaluate(() => document.dispatchEvent(new Event('freeze')))
  await until(() => polls.some((poll) => poll.at >= frozenAt && poll.page !== first) && app.longpoll.stats().heldPolls === 1, 15_000, 'another page leading')
  const next = leader()
  t.not(next, first, `${next} leads while ${first} is frozen`)
  for (const i of range(2, 10)) await app.longpoll.push('cold', i)
  for (const tab of tabs) t.same(await receivedOn(tab, 'cold', 10), range(1, 10), `${tab.name}`)

  await frozen.page.evaluate(() => document.dispatchEvent(new Event('resume')))
  for (const i of range(11, 20)) await app.longpoll.push('cold', i)
  await app.longpoll.push('cold', 'end')
  for (const tab of tabs) t.same(await receivedOn(tab, 'cold', 21), [...range(1, 20), 'end'], `${tab.name}: once each, in order`)
  await holding(['cold'])
  t.same(new Set(polls.filter((poll) => poll.at >= frozenAt).map((poll) => poll.page)), new Set([next]), `${next} keeps the lead`)
  t.same(tabs.flatMap((tab) => tab.errors), [])
})

t.test('answers posted again, late or twice (a stale leader), change nothing; latest means after the subscribe', async (t) => {
  const context = await newContext(t)
  const tabs = [await open(context, 'u1'), await open(context, 'u2'), await open(context, 'u3')]
  const [u1, u2, u3] = tabs as [Tab, Tab, Tab]
  // u3 listens to the group's BroadcastChannel like a tab would, keeping every note it hears.
  await u3.page.evaluate((name) => {
    const bus = new BroadcastChannel(name)
    ;(window as any).notes = []
    bus.onmessage = (event) => (window as any).notes.push(event.data)
    ;(window as any).bus = bus
  }, `fastify-longpoll ${origin}/lp/poll`)
  for (const i of range(1, 3)) await app.longpoll.push('hot', i)
  await follow(u1, ['hot'])
  await follow(u2, ['hot'])
  t.same(await receivedOn(u1, 'hot', 3), [1, 2, 3])
  t.same(await receivedOn(u2, 'hot', 3), [1, 2, 3])
  await holding(['hot'])
  await u3.page.evaluate(() => (window as any).client?.stop())
  await follow(u3, ['hot'], { hot: 'latest' })
  await live(u3)
  await holding(['hot'])
  for (const i of range(4, 6)) await app.longpoll.push('hot', i)
  t.same(await receivedOn(u3, 'hot', 3), [4, 5, 6], 'latest: nothing of the backlog')
  t.same(await receivedOn(u1, 'hot', 6), range(1, 6))

  // Every answer heard so far, posted again twice, oldest first, as a leader that was frozen might.
  const replayed = await u3.page.evaluate(() => {
    const deliveries = (window as any).notes.filter((note: { type: string }) => note.type === 'deliver')
    for (const note of [...deliveries, ...deliveries]) (window as any).bus.postMessage(note)
    return deliveries.length
  })
  t.ok(replayed >= 2, `${replayed} answers posted again`)
  await app.longpoll.push('hot', 'end')
  t.same(await receivedOn(u1, 'hot', 7), [...range(1, 6), 'end'], 'u1: nothing twice')
  t.same(await receivedOn(u2, 'hot', 7), [...range(1, 6), 'end'], 'u2: nothing twice')
  t.same(await receivedOn(u3, 'hot', 4), [4, 5, 6, 'end'], 'u3: nothing twice')
  t.same(tabs.flatMap((tab) => tab.errors), [])
})
