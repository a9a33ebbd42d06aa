// The bench's HTTP client: raw http.request over keep-alive agents, one socket per held poll. No fetch/undici
// layer, so client costs stay small and alike for every server under test.
import http from 'node:http'

// `keepAlive` also turns on TCP keep-alive probes, after `keepAliveMsecs` (default 1 s) of silence: 100,000 held
// polls sent 100,000 probes a second, the loopback dropped packets under them (/proc/net/softnet_stat), and
// connections were given up on one side (ETIMEDOUT) while the other still held them. A held poll is silent by
// design: the bench's sockets probe after an hour.
const probeAfterMs = 3_600_000

/** A keep-alive agent that opens as many sockets as there are concurrent requests (one per held poll). */
export function pollAgent () {
  return new http.Agent({ keepAlive: true, keepAliveMsecs: probeAfterMs, maxSockets: Infinity, maxFreeSockets: 20_000, scheduling: 'lifo' })
}

/** A keep-alive agent with a bounded pool, for pushes. */
export function pushAgent (sockets = 32) {
  return new http.Agent({ keepAlive: true, keepAliveMsecs: probeAfterMs, maxSockets: sockets, maxFreeSockets: sockets, scheduling: 'lifo' })
}

/**
 * One request. Resolves with { status, body (text), at (performance.now() when the body ended) }.
 * `onConnected` is called once the request's socket is connected (at once for a reused socket); `headers` are
 * sent besides the body's. The promise's `req` is the ClientRequest.
 */
export function request (agent, base, method, path, body, { onConnected, headers: extra } = {}) {
  let sent
  const answer = new Promise((resolve, reject) => {
    const headers = body === undefined ? extra : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...extra }
    const req = http.request({ agent, host: base.host, port: base.port, ...source(base), method, path: base.prefix + path, headers }, (res) => {
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

// A connection from a given source address names its source port too. Left to the kernel (bind to the address,
// port 0), each new connection searches the address's bound ports for a free one: at 14,000 connections per
// address that search was half of the machine's CPU in the scale bench (perf: inet_bind2_bucket_find). Each
// client process has a source address of its own, so it hands out that address's ports itself, in turn; a port
// still taken (a connection that lives on, or another program's socket) fails with EADDRINUSE, and the caller
// retries with the next one. A request that reuses a kept-alive socket leaves its port unused.
const firstPort = 10_000
const lastPort = 65_535
const nextPort = new Map() // source address -> the next port to hand out

function source (base) {
  if (base.localAddress === undefined) return {}
  const port = nextPort.get(base.localAddress) ?? firstPort
  nextPort.set(base.localAddress, port === lastPort ? firstPort : port + 1)
  return { localAddress: base.localAddress, localPort: port }
}
