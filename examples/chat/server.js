// Chat rooms over long polling: `npm start`, then open http://127.0.0.1:3000 in two tabs.
//
// The server is the plugin plus two files: the page (index.html) and the browser build of
// `fastify-longpoll/client`. The page pushes with POST /lp/push and follows its room with the client.
import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import Fastify from 'fastify'
import longpoll from 'fastify-longpoll'

/** A room is the channel `room:<name>`; the page checks the same rule before it joins. */
export const ROOM_CHANNEL = /^room:[A-Za-z0-9_-]{1,40}$/

/**
 * The chat app, not yet listening. Options: `logger` (Fastify's logger option, default true) and
 * `longpoll` (extra plugin options, e.g. a Redis store).
 */
export async function build ({ logger = true, longpoll: longpollOptions = {} } = {}) {
  const app = Fastify({ logger, forceCloseConnections: true })

  await app.register(longpoll, {
    prefix: '/lp',
    channelPattern: ROOM_CHANNEL,
    maxMessageBytes: 4096, // a nickname and a line of text
    maxMessages: 500, // the backlog a new visitor of a room sees
    ...longpollOptions
  })

  // The page and the client module are read once, here: restart the server after a rebuild.
  const page = await readFile(new URL('./index.html', import.meta.url), 'utf8')
  // The package's own browser build (dist/esm/client/index.js): one ES module with no imports.
  const client = await readFile(fileURLToPath(import.meta.resolve('fastify-longpoll/client')), 'utf8')

  app.get('/', async (request, reply) => {
    return reply.type('text/html; charset=utf-8').header('cache-control', 'no-cache').send(page)
  })
  app.get('/client.js', async (request, reply) => {
    return reply.type('text/javascript; charset=utf-8').header('cache-control', 'no-cache')
      .send(client.replace(/^\/\/# sourceMappingURL=.*$/m, ''))
  })
  return app
}

/** Builds and listens; `PORT` and `HOST` default to 127.0.0.1:3000. Returns the app. */
export async function start ({
  port = Number(process.env.PORT ?? 3000),
  host = process.env.HOST ?? '127.0.0.1',
  ...options
} = {}) {
  const app = await build({ logger: { level: process.env.LOG_LEVEL ?? 'info' }, ...options })
  const address = await app.listen({ port, host })
  app.log.info(`chat: open ${address} in two tabs, pick a room and a nickname`)
  for (const signal of ['SIGINT', 'SIGTERM']) {
    process.once(signal, () => {
      app.log.info({ signal }, 'chat: closing')
      app.close().then(() => process.exit(0), (err) => {
        app.log.error({ err }, 'chat: close failed')
        process.exit(1)
      })
    })
  }
  return app
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  await start()
}
