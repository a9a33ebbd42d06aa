// Chat rooms over long polling: `npm start`, then open http://127.0.0.1:3000 in three tabs.
//
// The server is the plugin plus two files: the page (index.html) and the browser build of
// `fastify-longpoll/client`. The page pushes with POST /lp/push and follows its room with the client.
import { readdir, readFile } from 'node:fs/promises'
import { dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import Fastify from 'fastify'
import longpoll from 'fastify-longpoll'

/**
 * The channels a page follows, in one poll: its room `room:<name>`, the `lobby` where every page says who is
 * here, and `user:<nick>` for whispers to that nickname. The page checks the same rules before it joins.
 */
export const CHAT_CHANNEL = /^(room:[A-Za-z0-9_-]{1,40}|lobby|user:[A-Za-z0-9_-]{1,32})$/

/**
 * The chat app, not yet listening. Options: `logger` (Fastify's logger option, default true) and
 * `longpoll` (extra plugin options, e.g. a Redis store).
 */
export async function build ({ logger = true, longpoll: longpollOptions = {} } = {}) {
  const app = Fastify({ logger, forceCloseConnections: true })

  await app.register(longpoll, {
    prefix: '/lp',
    channelPattern: CHAT_CHANNEL,
    maxMessageBytes: 4096, // a nickname and a line of text
    maxMessages: 500, // the backlog a new visitor of a room sees
    ...longpollOptions
  })

  // The page and the client modules are read once, here: restart the server after a rebuild.
  const page = await readFile(new URL('./index.html', import.meta.url), 'utf8')
  // The package's own browser build (dist/esm/client/*.js): ES modules that import only each other.
  const clientDir = dirname(fileURLToPath(import.meta.resolve('fastify-longpoll/client')))
  const modules = new Map()
  for (const file of await readdir(clientDir)) {
    if (file.endsWith('.js')) {
      const source = await readFile(`${clientDir}/${file}`, 'utf8')
      modules.set(file, source.replace(/^\/\/# sourceMappingURL=.*$/m, ''))
    }
  }

  app.get('/', async (request, reply) => {
    return reply.type('text/html; charset=utf-8').header('cache-control', 'no-cache').send(page)
  })
  app.get('/client/:file', async (request, reply) => {
    const source = modules.get(request.params.file) // only the files read above: no path from the request
    if (source === undefined) return reply.code(404).send({ message: 'no such module' })
    return reply.type('text/javascript; charset=utf-8').header('cache-control', 'no-cache').send(source)
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
  app.log.info(`chat: open ${address} in three tabs, pick rooms and nicknames`)
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
