// examples/chat without a browser: what the server serves and which channels it accepts.
// (test/browser.test.ts runs the page itself in Chromium.)
import t from 'tap'
import { existsSync } from 'node:fs'
import type { FastifyInstance } from 'fastify'

const root = new URL('../', import.meta.url)
if (!existsSync(new URL('dist/esm/client/index.js', root))) {
  throw new Error('dist/ is missing: the examples import the built package; run `npm run build` first')
}
// A plain JavaScript example: a computed specifier keeps the type checker out of it.
const chat = await import(new URL('examples/chat/server.js', root).href) as {
  build: (options?: { logger?: boolean }) => Promise<FastifyInstance>
}

t.test('serves the page and the browser build of the client, module by module', async (t) => {
  const app = await chat.build({ logger: false })
  t.teardown(() => app.close())

  const page = await app.inject('/')
  t.equal(page.statusCode, 200)
  t.match(page.headers['content-type'], /^text\/html/)
  t.match(page.body, '"fastify-longpoll/client": "/client/index.js"', 'the page imports the client by its package name')
  t.match(page.body, /share: true/, 'the tabs share one poll')
  t.notMatch(page.body, /innerHTML/, 'the page never writes HTML from data')

  const client = await app.inject('/client/index.js')
  t.equal(client.statusCode, 200)
  t.match(client.headers['content-type'], /^text\/javascript/)
  t.match(client.body, /export class LongPollClient/)
  t.notMatch(client.body, /sourceMappingURL/)
  // Its imports are its sibling modules, each served too; nothing else can be fetched through the route.
  const imports = [...client.body.matchAll(/^\s*import\s[^'"]*['"]([^'"]+)['"]/gm)].map((match) => match[1] as string)
  t.ok(imports.length > 0)
  for (const specifier of imports) {
    t.match(specifier, /^\.\/[a-z-]+\.js$/, `${specifier} is a sibling module`)
    t.equal((await app.inject(`/client/${specifier.slice(2)}`)).statusCode, 200)
  }
  t.equal((await app.inject('/client/..%2Fpackage.json')).statusCode, 404)
  t.equal((await app.inject('/client/index.d.ts')).statusCode, 404)
})

t.test('the channels are room:<name>, lobby and user:<nick>; messages are small', async (t) => {
  const app = await chat.build({ logger: false })
  t.teardown(() => app.close())
  const push = (channel: string, data: unknown) => app.inject({ method: 'POST', url: '/lp/push', payload: { channel, data } })

  t.equal((await push('room:lobby', { nick: 'ann', text: 'hi' })).statusCode, 200)
  t.equal((await push('lobby', { nick: 'ann', room: 'lobby', here: true })).statusCode, 200)
  t.equal((await push('user:ann', { from: 'bob', to: 'ann', text: 'psst' })).statusCode, 200)
  t.equal((await push('elsewhere', { nick: 'ann', text: 'hi' })).statusCode, 400)
  t.equal((await push('user:a b', { text: 'hi' })).statusCode, 400)
  t.equal((await push('room:lobby', { nick: 'ann', text: 'x'.repeat(5000) })).statusCode, 413)
  const backlog = (await app.inject('/lp/poll?channel=room:lobby')).json()
  t.match(backlog, { status: 'ok', messages: [{ data: { nick: 'ann', text: 'hi' } }] })
})
