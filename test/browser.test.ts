// The chat example in a real Chromium: the browser build of fastify-longpoll/client, the page's rendering,
// and the client's promise — every message once, in order, across going offline, reloads and a restarted server.
import t, { type Test } from 'tap'
import { existsSync, mkdirSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import type { AddressInfo } from 'node:net'
import type { FastifyInstance } from 'fastify'
import type { Browser, BrowserContext, Page } from 'playwright-core'
import { launchChromium } from './helpers/chromium.js'
import { heldPolls } from './helpers/app.js'

const root = new URL('../', import.meta.url)
if (!existsSync(new URL('dist/esm/client/index.js', root))) {
  throw new Error('dist/ is missing: the examples import the built package; run `npm run build` first')
}
// The example is plain JavaScript; a computed specifier keeps the type checker out of it.
const chat = await import(new URL('examples/chat/server.js', root).href) as {
  build: (options?: { logger?: boolean }) => Promise<FastifyInstance>
}

const WAIT = { timeout: 30_000 }

let app = await chat.build({ logger: false })
await app.listen({ port: 0, host: '127.0.0.1' })
const { port } = app.server.address() as AddressInfo
const origin = `http://127.0.0.1:${port}`
t.teardown(() => app.close()) // whichever app is current: the restart test replaces it

const browser: Browser = await launchChromium(t)

interface Tab { page: Page, context: BrowserContext, errors: Error[] }

/** One tab in its own browser context (so it can go offline alone), in `room` as `nick`. */
async function join (tt: Test, room: string, nick: string): Promise<Tab> {
  const context = await browser.newContext()
  tt.teardown(() => context.close())
  const page = await context.newPage()
  const errors: Error[] = []
  page.on('pageerror', (err) => errors.push(err))
  await page.goto(`${origin}/?room=${room}&nick=${nick}`)
  await page.waitForFunction(() => document.body.dataset.state !== undefined, null, WAIT)
  return { page, context, errors }
}

async function say (tab: Tab, text: string): Promise<void> {
  await tab.page.fill('#text', text)
  await tab.page.press('#text', 'Enter')
}

async function texts (tab: Tab): Promise<string[]> {
  return tab.page.locator('#messages li.message .text').allTextContents()
}

/** Waits until the tab's newest message is `text`. */
async function lastIs (tab: Tab, text: string): Promise<void> {
  await tab.page.waitForFunction((text) => {
    const all = document.querySelectorAll('#messages li.message .text')
    return all[all.length - 1]?.textContent === text
  }, text, WAIT)
}

async function state (tab: Tab, wanted: string): Promise<void> {
  await tab.page.waitForFunction((wanted) => document.body.dataset.state === wanted, wanted, WAIT)
}

/**
 * Proves that `reader` shows exactly `expected`: `writer` sends a last message and, once it has arrived,
 * everything before it must be `expected` — anything duplicated or out of order would sit in between.
 */
async function showsExactly (tt: Test, reader: Tab, writer: Tab, expected: string[], sentinel: string): Promise<void> {
  await say(writer, sentinel)
  await lastIs(reader, sentinel)
  tt.same(await texts(reader), [...expected, sentinel])
}

t.test('two tabs in one room exchange messages both ways, user text shown as text', async (t) => {
  const alice = await join(t, 'both-ways', 'alice')
  const bob = await join(t, 'both-ways', 'bob')

  await say(alice, 'hello from alice')
  await lastIs(bob, 'hello from alice')
  await say(bob, 'hi alice, bob here')
  await lastIs(alice, 'hi alice, bob here')
  const html = '<img src=x onerror="document.body.dataset.pwned=1"> & <b>bold</b>'
  await say(bob, html)
  await lastIs(alice, html)

  const expected = ['hello from alice', 'hi alice, bob here', html]
  t.same(await texts(alice), expected)
  t.same(await texts(bob), expected)
  t.same(await alice.page.locator('#messages li.message .nick').allTextContents(), ['alice', 'bob', 'bob'])
  t.equal(await alice.page.locator('#messages img, #messages b').count(), 0, 'no markup from user text')
  t.equal(await alice.page.evaluate(() => document.body.dataset.pwned), undefined)
  await state(alice, 'live')
  t.equal(await alice.page.locator('#state').textContent(), 'live')
  t.same([...alice.errors, ...bob.errors], [], 'no page errors')
})

t.test('the join form leads into a room', async (t) => {
  const context = await browser.newContext()
  t.teardown(() => context.close())
  const page = await context.newPage()
  await page.goto(`${origin}/`)
  await page.locator('#join').waitFor({ state: 'visible', timeout: WAIT.timeout })
  t.equal(await page.locator('#chat').isVisible(), false)
  await page.fill('#join input[name=room]', 'form-room')
  await page.fill('#join input[name=nick]', 'dora')
  await page.click('#join button')
  await page.waitForURL(/room=form-room&nick=dora/, WAIT)
  await page.locator('#chat').waitFor({ state: 'visible', timeout: WAIT.timeout })
  t.equal(await page.locator('#where').textContent(), '#form-room as dora')
  t.equal(await page.locator('#join').isVisible(), false)
})

t.test('a tab that was offline receives every message sent meanwhile, once each, in order', async (t) => {
  const alice = await join(t, 'offline', 'alice')
  const bob = await join(t, 'offline', 'bob')
  await say(alice, 'before')
  await lastIs(bob, 'before')

  await bob.context.setOffline(true)
  const during = ['during 1', 'during 2', 'during 3', 'during 4', 'during 5', 'during 6']
  // Bob's held poll is answered with "during 1", but the answer never reaches the offline tab: the client
  // must not advance its cursor, and shows that it is reconnecting, with its backoff delay.
  await say(alice, during[0]!)
  await state(bob, 'reconnecting')
  await bob.page.waitForFunction(() => /^reconnecting/.test(document.getElementById('state')!.textContent!), null, WAIT)
  // (Chromium sometimes lets the answer already in flight through; then the next poll is the one that fails.)
  const seenOffline = await texts(bob)
  t.ok(seenOffline.length <= 2, `the offline tab shows ${JSON.stringify(seenOffline)}`)
  for (const text of during.slice(1)) await say(alice, text)
  await lastIs(alice, 'during 6')
  t.same(await texts(bob), seenOffline, 'nothing more reached the offline tab')
  t.equal(await bob.page.evaluate(() => document.body.dataset.state), 'reconnecting')

  await bob.context.setOffline(false)
  await lastIs(bob, 'during 6')
  await state(bob, 'live')
  await showsExactly(t, bob, alice, ['before', ...during], 'after')
  await lastIs(alice, 'after')
  t.same(await texts(alice), ['before', ...during, 'after'])
  t.same([...alice.errors, ...bob.errors], [], 'no page errors')
})

t.test('a reload keeps the conversation without duplicates; a newcomer sees the backlog', async (t) => {
  const alice = await join(t, 'reload', 'alice')
  const bob = await join(t, 'reload', 'bob')
  const before = ['Anyone tried the long-poll chat?', 'Yes, it reconnects by itself.', 'Reload me!']
  await say(alice, before[0]!)
  await lastIs(bob, before[0]!)
  await say(bob, before[1]!)
  await lastIs(alice, before[1]!)
  await say(alice, before[2]!)
  await lastIs(bob, before[2]!)

  await bob.page.reload()
  await lastIs(bob, before[2]!)
  t.same(await texts(bob), before, 'the conversation is back after the reload')
  await showsExactly(t, bob, alice, before, 'Welcome back, bob')

  const carol = await join(t, 'reload', 'carol')
  await lastIs(carol, 'Welcome back, bob')
  t.same(await texts(carol), [...before, 'Welcome back, bob'], 'a newcomer gets the room backlog')

  await say(bob, 'Hi carol — <script> stays text')
  await lastIs(alice, 'Hi carol — <script> stays text')
  await state(alice, 'live')
  mkdirSync(new URL('test-artifacts/', root), { recursive: true })
  await alice.page.screenshot({ path: fileURLToPath(new URL('test-artifacts/chat.png', root)) })
  t.same([...alice.errors, ...bob.errors, ...carol.errors], [], 'no page errors')
})

t.test('when the server restarts on the same port, tabs reconnect and keep what they showed', async (t) => {
  const alice = await join(t, 'restart', 'alice')
  const bob = await join(t, 'restart', 'bob')
  await say(alice, 'before the restart')
  await lastIs(bob, 'before the restart')
  await state(bob, 'live')

  // Closing answers held polls with 503 + Retry-After; then the port refuses connections for a while.
  await app.close()
  await Promise.all([state(alice, 'reconnecting'), state(bob, 'reconnecting')])
  app = await chat.build({ logger: false })
  await app.listen({ port, host: '127.0.0.1' })

  // The memory store started a new life: old cursors are answered from its start, with a gap notice.
  await say(alice, 'after the restart')
  await lastIs(bob, 'after the restart')
  await showsExactly(t, bob, alice, ['before the restart', 'after the restart'], 'still here')
  await lastIs(alice, 'still here')
  t.same(await texts(alice), ['before the restart', 'after the restart', 'still here'])
  t.match(await bob.page.locator('#messages li.notice').allTextContents(), [/missed/])
  await state(bob, 'live')
  t.same([...alice.errors, ...bob.errors], [], 'no page errors')
})

t.test('three tabs of one browser, in two rooms, hold one poll between them; each shows its own room and whispers', async (t) => {
  const context = await browser.newContext()
  t.teardown(() => context.close())
  const tab = async (room: string, nick: string): Promise<Tab> => {
    const page = await context.newPage()
    const errors: Error[] = []
    page.on('pageerror', (err) => errors.push(err))
    await page.goto(`${origin}/?room=${room}&nick=${nick}`)
    await state({ page, context, errors }, 'live')
    return { page, context, errors }
  }
  const ann = await tab('one-poll', 'ann')
  const ben = await tab('one-poll', 'ben')
  const cat = await tab('elsewhere', 'cat')
  // Everyone is in the lobby's "who is here" of every tab, whatever its room.
  for (const each of [ann, ben, cat]) {
    await each.page.waitForFunction(() => ['ann in #one-poll', 'ben in #one-poll', 'cat in #elsewhere']
      .every((who) => Array.from(document.querySelectorAll('#here .person')).some((p) => p.textContent === who)), null, WAIT)
  }
  await say(ann, 'hi ben')
  await lastIs(ben, 'hi ben')
  await say(cat, 'anyone elsewhere?')
  await lastIs(cat, 'anyone elsewhere?')
  await say(ann, '/w cat psst, cat')
  await cat.page.waitForFunction(() => document.querySelector('#messages li.whisper .text')?.textContent === 'psst, cat', null, WAIT)
  await ann.page.waitForFunction(() => document.querySelector('#messages li.whisper .text')?.textContent === 'psst, cat', null, WAIT)
  await showsExactly(t, ann, ben, ['hi ben'], 'bye ann')
  t.same(await texts(ben), ['hi ben', 'bye ann'])
  t.same(await texts(cat), ['anyone elsewhere?'], 'cat sees only its room')
  t.equal(await ben.page.locator('#messages li.whisper').count(), 0, 'a whisper reaches only its two ends')
  // Not three: the tabs hold one poll between them (the poll may be between two holds just now, so wait for it).
  await heldPolls(app, 1)
  t.equal(app.longpoll.stats().heldPolls, 1, 'one held poll for the three tabs')
  t.same([...ann.errors, ...ben.errors, ...cat.errors], [], 'no page errors')
})
