// The Node floor: the smallest honest implementation of the long-poll protocol (../../shared/contract.md, as
// far as the bench exercises it) on bare node:http. Same routes (/poll, /push, /disconnect), same JSON shapes,
// cursors bound to a channel's life (`<epoch>.<seq>`), `latest`, limit, a Map of held polls per channel, one
// timer per held poll, and aborts (a client that goes away releases its poll). No framework, no validation
// library, no store abstraction, no notifier: what any plugin has to beat to be worth its features.
//
// Like a hand-written server would, it keeps `data` as the parsed value and serializes each answer with
// JSON.stringify, once per answered poll.
import http from 'node:http'

const CHANNEL = /^[A-Za-z0-9._:@-]{1,200}$/
const CURSOR = /^([A-Za-z0-9_-]{1,32})\.(0|[1-9][0-9]{0,15})$/
const RETAIN = 1000 // messages kept per channel
const MAX_TIMEOUT = 60_000
const DEFAULT_TIMEOUT = 25_000
const MAX_BATCH = 100
const MAX_BODY = 65_536 + 1024
const JSON_HEADERS = { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' }

export async function start ({ host = '127.0.0.1', port = 0, backlog = 4096 } = {}) {
  /** name -> { epoch, seq, messages: [{ seq, data, time }], polls: Set<poll> } */
  const channels = new Map()
  let held = 0

  function channelFor (name) {
    let ch = channels.get(name)
    if (ch === undefined) {
      ch = { epoch: Math.random().toString(36).slice(2, 12), seq: 0, messages: [], polls: new Set() }
      channels.set(name, ch)
    }
    return ch
  }

  /** Messages after `after` (a seq), at most `limit`, and whether some were trimmed in between. */
  function after (ch, afterSeq, limit) {
    const first = ch.messages.length > 0 ? ch.messages[0].seq : ch.seq + 1
    const from = Math.max(afterSeq, first - 1)
    const out = ch.messages.slice(from + 1 - first, from + 1 - first + limit)
    return { out, gap: afterSeq < first - 1, cursorSeq: out.length > 0 ? out[out.length - 1].seq : from }
  }

  function answer (res, ch, status, messages, cursorSeq, gap) {
    const body = {
      status,
      messages: messages.map((m) => ({ id: `${ch.epoch}.${m.seq}`, data: m.data, time: m.time })),
      cursor: `${ch.epoch}.${cursorSeq}`
    }
    if (gap) body.gap = true
    res.writeHead(200, JSON_HEADERS)
    res.end(JSON.stringify(body))
  }

  function fail (res, statusCode, message) {
    const error = statusCode === 400 ? 'Bad Request' : statusCode === 404 ? 'Not Found' : statusCode === 413 ? 'Payload Too Large' : 'Error'
    res.writeHead(statusCode, JSON_HEADERS)
    res.end(JSON.stringify({ statusCode, code: 'BAD_REQUEST', error, message }))
  }

  function release (poll) {
    clearTimeout(poll.timer)
    poll.res.removeListener('close', poll.onClose)
    poll.ch.polls.delete(poll)
    held--
  }

  function poll (req, res, query) {
    const name = query.get('channel')
    if (name === null || !CHANNEL.test(name)) return fail(res, 400, 'invalid channel')
    const cursor = query.get('cursor')
    const timeoutText = query.get('timeout')
    const limitText = query.get('limit')
    const timeout = timeoutText === null ? DEFAULT_TIMEOUT : Number(timeoutText)
    const limit = limitText === null ? MAX_BATCH : Number(limitText)
    if (!Number.isSafeInteger(timeout) || timeout < 0) return fail(res, 400, 'invalid timeout')
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_BATCH) return fail(res, 400, 'invalid limit')
    const ch = channelFor(name)
    let afterSeq = 0
    let gap = false
    if (cursor === 'latest') afterSeq = ch.seq
    else if (cursor !== null) {
      const m = CURSOR.exec(cursor)
      if (m === null) return fail(res, 400, 'invalid cursor')
      if (m[1] !== ch.epoch) gap = true // another life of the channel: from the oldest retained message
      else if (Number(m[2]) > ch.seq) return fail(res, 400, 'cursor past the newest message')
      else afterSeq = Number(m[2])
    }
    const found = after(ch, afterSeq, limit)
    if (found.out.length > 0 || timeout === 0) {
      return answer(res, ch, found.out.length > 0 ? 'ok' : 'timeout', found.out, found.cursorSeq, gap || found.gap)
    }
    const p = { res, ch, afterSeq: found.cursorSeq, limit, gap: gap || found.gap, timer: null, onClose: null }
    p.onClose = () => release(p)
    p.timer = setTimeout(() => {
      release(p)
      answer(res, ch, 'timeout', [], p.afterSeq, p.gap)
    }, Math.min(timeout, MAX_TIMEOUT))
    res.on('close', p.onClose)
    ch.polls.add(p)
    held++
  }

  function push (req, res) {
    const chunks = []
    let size = 0
    req.on('data', (chunk) => {
      size += chunk.length
      if (size <= MAX_BODY) chunks.push(chunk)
    })
    req.on('end', () => {
      if (size > MAX_BODY) return fail(res, 413, 'body too large')
      let body
      try {
        body = JSON.parse(Buffer.concat(chunks).toString())
      } catch {
        return fail(res, 400, 'malformed JSON')
      }
      if (body === null || typeof body !== 'object' || typeof body.channel !== 'string' || !CHANNEL.test(body.channel)) return fail(res, 400, 'invalid channel')
      if (body.data === undefined) return fail(res, 400, 'missing data')
      const ch = channelFor(body.channel)
      const message = { seq: ++ch.seq, data: body.data, time: Date.now() }
      ch.messages.push(message)
      if (ch.messages.length > RETAIN) ch.messages.shift()
      for (const p of ch.polls) {
        const found = after(ch, p.afterSeq, p.limit)
        release(p)
        answer(p.res, ch, 'ok', found.out, found.cursorSeq, p.gap || found.gap)
      }
      res.writeHead(200, JSON_HEADERS)
      res.end(JSON.stringify({ id: `${ch.epoch}.${message.seq}` }))
    })
  }

  function disconnect (req, res, query) {
    const name = query.get('channel')
    if (name === null || !CHANNEL.test(name)) return fail(res, 400, 'invalid channel')
    const ch = channels.get(name)
    if (ch !== undefined) {
      channels.delete(name)
      for (const p of ch.polls) {
        release(p)
        answer(p.res, ch, 'disconnected', [], p.afterSeq, p.gap)
      }
    }
    res.writeHead(200, JSON_HEADERS)
    res.end(JSON.stringify({ channel: name, status: 'disconnected' }))
  }

  const server = http.createServer((req, res) => {
    const q = req.url.indexOf('?')
    const path = q === -1 ? req.url : req.url.slice(0, q)
    const query = new URLSearchParams(q === -1 ? '' : req.url.slice(q + 1))
    if (req.method === 'GET' && path === '/poll') return poll(req, res, query)
    if (req.method === 'POST' && path === '/push') return push(req, res)
    if (req.method === 'DELETE' && path === '/disconnect') return disconnect(req, res, query)
    req.resume()
    fail(res, 404, 'not found')
  })
  // Fastify's defaults, so that every server under test treats idle and held sockets alike.
  server.keepAliveTimeout = 72_000
  server.requestTimeout = 0

  await new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen({ host, port, backlog }, resolve)
  })

  return {
    port: server.address().port,
    held: () => held,
    async close () {
      for (const ch of channels.values()) for (const p of ch.polls) { release(p); p.res.destroy() }
      server.closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
    }
  }
}
