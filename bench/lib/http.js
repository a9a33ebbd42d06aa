// The bench's HTTP client: raw http.request over keep-alive agents, one socket per held poll. No fetch/undici
// layer, so client costs stay small and alike for every server under test.
import http from 'node:http'

/** A keep-alive agent that opens as many sockets as there are concurrent requests (one per held poll). */
export function pollAgent () {
  return new http.Agent({ keepAlive: true, maxSockets: Infinity, maxFreeSockets: 20_000, scheduling: 'lifo' })
}

/** A keep-alive agent with a bounded pool, for pushes. */
export function pushAgent (sockets = 32) {
  return new http.Agent({ keepAlive: true, maxSockets: sockets, maxFreeSockets: sockets, scheduling: 'lifo' })
}

/**
 * One request. Resolves with { status, body (text), at (performance.now() when the body ended) }.
 * `onConnected` is called once the request's socket is connected (at once for a reused socket). The promise's
 * `req` is the ClientRequest.
 */
export function request (agent, base, method, path, body, onConnected) {
  let sent
  const answer = new Promise((resolve, reject) => {
    const headers = body === undefined ? undefined : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }
    const req = http.request({ agent, host: base.host, port: base.port, localAddress: base.localAddress, method, path: base.prefix + path, headers }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (chunk) => { text += chunk })
      res.on('end', () => resolve({ status: res.statusCode, body: text, at: performance.now() }))
      res.on('error', reject)
    })
    req.on('error', reject)
    if (onConnected !== undefined) {
      req.once('socket', (socket) => {
        if (socket.connecting) socket.once('connect', onConnected)
        else onConnected()
      })
    }
    req.end(body)
    sent = req
  })
  answer.req = sent // the ClientRequest: a caller that retries can end it first
  return answer
}

/**
 * 'http://127.0.0.1:1234/lp' -> { host, port, prefix: '/lp', url }; `localAddress` (e.g. 127.0.0.2) is the
 * source address of its connections (each source address has its own ephemeral ports).
 */
export function parseBase (url, localAddress) {
  const u = new URL(url)
  return { host: u.hostname, port: Number(u.port), prefix: u.pathname.replace(/\/$/, ''), url, localAddress }
}
