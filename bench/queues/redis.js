// A redis-server of the bench's own on a free loopback port (no persistence), and what the queue bench reads
// from it: INFO cpu and INFO commandstats.
import { spawn } from 'node:child_process'
import net from 'node:net'

async function freePort () {
  return await new Promise((resolve, reject) => {
    const server = net.createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address()
      server.close(() => resolve(port))
    })
  })
}

/**
 * Starts redis-server under a shell watchdog: when the bench exits (even killed), the shell's stdin closes,
 * `read` returns, and it kills the server. Resolves to `{ url, client, stop() }`.
 */
export async function startRedis () {
  const port = await freePort()
  const script = `redis-server --port ${port} --bind 127.0.0.1 --save '' --appendonly no --loglevel warning & r=$!; trap 'kill $r 2>/dev/null' EXIT; read _; kill $r 2>/dev/null; wait $r`
  const sh = spawn('sh', ['-c', script], { stdio: ['pipe', 'ignore', 'inherit'] })
  const { Redis } = await import('ioredis')
  const url = `redis://127.0.0.1:${port}`
  let client
  for (let i = 0; i < 100 && client === undefined; i++) {
    const candidate = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null })
    candidate.on('error', () => {}) // refused until redis-server listens: retried
    try {
      await candidate.connect()
      await candidate.ping()
      client = candidate
    } catch {
      candidate.disconnect()
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  }
  if (client === undefined) {
    sh.stdin.end()
    throw new Error(`redis-server on port ${port} did not answer`)
  }
  return {
    url,
    client,
    async stop () {
      client.disconnect()
      const exited = new Promise((resolve) => sh.once('exit', resolve))
      sh.stdin.end()
      await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 3000))])
      sh.kill('SIGKILL')
    }
  }
}

/** Redis's own CPU (user + system, µs) from INFO cpu. */
export async function redisCpuUs (client) {
  const text = await client.info('cpu')
  const field = (name) => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(text)?.[1] ?? 0)
  return (field('used_cpu_user') + field('used_cpu_sys')) * 1e6
}

/**
 * Commands since the last CONFIG RESETSTAT, the bench's own INFO and CONFIG left out: `{ total, scripts,
 * byName }`. `total` counts what Lua scripts run as well (INFO commandstats counts both); `scripts` counts the
 * EVAL/EVALSHA/FCALL calls themselves.
 */
export async function redisCommands (client) {
  const text = await client.info('commandstats')
  const byName = {}
  let total = 0
  let scripts = 0
  for (const line of text.split('\n')) {
    const m = /^cmdstat_([^:]+):calls=(\d+)/.exec(line.trim())
    if (m === null || m[1] === 'info' || m[1].startsWith('config')) continue
    const calls = Number(m[2])
    byName[m[1]] = calls
    total += calls
    if (/^(eval|evalsha|eval_ro|evalsha_ro|fcall|fcall_ro)$/.test(m[1])) scripts += calls
  }
  return { total, scripts, byName }
}
