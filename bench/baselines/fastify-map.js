// The tutorial baseline: long polling the way a Fastify tutorial writes it. An async route returns a Promise
// that a push resolves, kept in a Map of resolvers per channel; Fastify validates the query and body with
// JSON schemas and serializes every answer itself (JSON.stringify per reply, no response schema).
//
// Tutorials usually stop at "resolve every waiter with the new message", which loses messages pushed while a
// client is between two polls. The bench checks for loss, so this version keeps the last messages of each
// channel and honours the same cursors as the others (`<epoch>.<seq>`, `latest`, limit) — the least a
// tutorial route must do to speak the protocol, and no more.
import Fastify from 'fastify'

const RETAIN = 1000
const MAX_TIMEOUT = 60_000
const channelSchema = { type: 'string', pattern: '^[A-Za-z0-9._:@-]{1,200}$' }

export async function start ({ host = '127.0.0.1', port = 0, backlog = 4096 } = {}) {
  const app = Fastify({ logger: false })
  /** name -> { epoch, seq, messages } */
  const channels = new Map()
  /** name -> Set of resolvers of held polls */
  const waiters = new Map()
  let held = 0

  function channelFor (name) {
    let ch = channels.get(name)
    if (ch === undefined) {
      ch = { epoch: Math.random().toString(36).slice(2, 12), seq: 0, messages: [] }
      channels.set(name, ch)
    }
    return ch
  }

  function read (ch, afterSeq, limit) {
    const first = ch.messages.length > 0 ? ch.messages[0].seq : ch.seq + 1
    const from = Math.max(afterSeq, first - 1)
    const slice = ch.messages.slice(from + 1 - first, from + 1 - first + limit)
    const messages = slice.map((m) => ({ id: `${ch.epoch}.${m.seq}`, data: m.data, time: m.time }))
    const cursor = `${ch.epoch}.${slice.length > 0 ? slice[slice.length - 1].seq : from}`
    return { messages, cursor, gap: afterSeq < first - 1 }
  }

  app.get('/poll', {
    schema: {
      querystring: {
        type: 'object',
        required: ['channel'],
        properties: {
          channel: channelSchema,
          cursor: { type: 'string', pattern: '^(latest|[A-Za-z0-9_-]{1,32}\\.(0|[1-9][0-9]{0,15}))$' },
          timeout: { type: 'integer', minimum: 0, default: 25_000 },
          limit: { type: 'integer', minimum: 1, maximum: 100, default: 100 }
        }
      }
    }
  }, async (request, reply) => {
    const { channel, cursor, timeout, limit } = request.query
    const ch = channelFor(channel)
    let afterSeq = 0
    let gap = false
    if (cursor === 'latest') afterSeq = ch.seq
    else if (cursor !== undefined) {
      const [epoch, seq] = cursor.split('.')
      if (epoch !== ch.epoch) gap = true
      else if (Number(seq) > ch.seq) return reply.code(400).send(new Error('cursor past the newest message'))
      else afterSeq = Number(seq)
    }
    const now = read(ch, afterSeq, limit)
    reply.header('cache-control', 'no-store')
    if (now.messages.length > 0 || timeout === 0) {
      return { status: now.messages.length > 0 ? 'ok' : 'timeout', messages: now.messages, cursor: now.cursor, ...(gap || now.gap ? { gap: true } : {}) }
    }
    return new Promise((resolve) => {
      let set = waiters.get(channel)
      if (set === undefined) waiters.set(channel, (set = new Set()))
      const done = (status) => {
        clearTimeout(timer)
        request.raw.removeListener('close', onClose)
        set.delete(done)
        if (set.size === 0 && waiters.get(channel) === set) waiters.delete(channel)
        held--
        if (status === null) return resolve(reply) // client went away: nothing to send
        const answer = status === 'ok' ? read(channelFor(channel), afterSeq, limit) : { messages: [], cursor: now.cursor }
        resolve({ status, messages: answer.messages, cursor: answer.cursor, ...(gap || now.gap ? { gap: true } : {}) })
      }
      const onClose = () => done(null)
      const timer = setTimeout(() => done('timeout'), Math.min(timeout, MAX_TIMEOUT))
      request.raw.on('close', onClose)
      set.add(done)
      held++
    })
  })

  app.post('/push', {
    schema: { body: { type: 'object', required: ['channel', 'data'], properties: { channel: channelSchema, data: {} } } }
  }, async (request) => {
    const { channel, data } = request.body
    const ch = channelFor(channel)
    const message = { seq: ++ch.seq, data, time: Date.now() }
    ch.messages.push(message)
    if (ch.messages.length > RETAIN) ch.messages.shift()
    const set = waiters.get(channel)
    if (set !== undefined) for (const done of set) done('ok')
    return { id: `${ch.epoch}.${message.seq}` }
  })

  app.delete('/disconnect', {
    schema: { querystring: { type: 'object', required: ['channel'], properties: { channel: channelSchema } } }
  }, async (request) => {
    const { channel } = request.query
    channels.delete(channel)
    const set = waiters.get(channel)
    if (set !== undefined) for (const done of set) done('disconnected')
    return { channel, status: 'disconnected' }
  })

  await app.listen({ host, port, backlog })
  return {
    port: app.server.address().port,
    held: () => held,
    async close () {
      for (const set of waiters.values()) for (const done of set) done(null)
      app.server.closeAllConnections()
      await app.close()
    }
  }
}
