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

t.test('serves the page and the browser build of the client', async (t) => {
  const app = await chat.build({ logger: false })
  t.teardown(() => app.close())

  const page = await app.inject('/')
  t.equal(page.statusCode, 200)
  t.match(page.headers['content-type'], /^text\/html/)
  t.match(page.body, '"fastify-longpoll/client": "/client.js"', 'the page imports the client by its package name')
  t.notMatch(page.body, /innerHTML/, 'the page never writes HTML from data')

  const client = await app.inject('/client.js')
  t.equal(client.statusCode, 200)
  t.match(client.headers['content-type'], /^text\/javascript/)
  t.match(client.body, /export class LongPollClient/)
  t.notMatch(client.body, /^\s*import\s/m, 'one module, no imports of its own')
  t.notMatch(client.body, /sourceMappingURL/)
})

t.test('rooms are channels room:<name>; messages are small', async (t) => {
  const app = await chat.build({ logger: false })
  t.teardown(() => app.close())
  const push = (channel: string, data: unknown) => app.inject({ method: 'POST', url: '/lp/push', payload: { channel, data } })

  t.equal((await push('room:lobby', { nick: 'ann', text: 'hi' })).statusCode, 200)
  t.equal((await push('lobby', { nick: 'ann', text: 'hi' })).statusCode, 400)
  t.equal((await push('room:lobby', { nick: 'ann', text: 'x'.repeat(5000) })).statusCode, 413)
  const backlog = (await app.inject('/lp/poll?channel=room:lobby')).json()
  t.match(backlog, { status: 'ok', messages: [{ data: { nick: 'ann', text: 'hi' } }] })
})
