// A redis-server of the bench's own, on a free loopback port with no persistence, and what the benches read
// from it: its CPU (INFO cpu), the commands it ran (INFO commandstats, reset with CONFIG RESETSTAT) and its memory.
import { execFileSync, spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import { own, sleep, withTimeout } from './processes.js'
import { rootDir } from './config.js'

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
 * Starts redis-server under a shell watchdog: if the bench dies without cleaning up (even SIGKILLed), the shell's
 * stdin closes, `read` returns and it kills the server. The bench's own exit handler kills it by pid as well.
 * `args`: more redis-server options, e.g. ['--maxclients', '1000'].
 */
export async function startRedis ({ args = [] } = {}) {
  const port = await freePort()
  const script = `redis-server --port ${port} --bind 127.0.0.1 --save '' --appendonly no --loglevel warning ${args.join(' ')} & r=$!; echo $r; trap 'kill $r 2>/dev/null' EXIT; read _; kill $r 2>/dev/null; wait $r`
  const sh = spawn('sh', ['-c', script], { stdio: ['pipe', 'pipe', 'inherit'] })
  let pid = 0
  const release = own({
    kill () {
      if (pid > 0) process.kill(pid, 'SIGKILL')
      sh.stdin.end()
    }
  })
  pid = await withTimeout(new Promise((resolve) => {
    sh.stdout.once('data', (chunk) => resolve(Number(String(chunk).trim().split('\n')[0])))
  }), 10_000, 'redis-server pid')
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
      await sleep(100)
    }
  }
  if (client === undefined) {
    release()
    try { process.kill(pid, 'SIGKILL') } catch {}
    sh.stdin.end()
    throw new Error(`redis-server on port ${port} did not answer`)
  }
  const inScripts = scriptCommands()
  return {
    url,
    port,
    pid,
    client,
    /** redis-server's CPU (user + system, µs) from INFO cpu (getrusage: µs resolution). */
    async cpuUs () {
      const text = await client.info('cpu')
      const field = (name) => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(text)?.[1] ?? 0)
      return (field('used_cpu_user') + field('used_cpu_sys')) * 1e6
    },
    async resetStats () {
      await client.config('RESETSTAT')
    },
    /**
     * Commands since the last RESETSTAT, the bench's own INFO and CONFIG left out: `{ sent, total, scripts,
     * byName }`. INFO commandstats also counts what Lua scripts run (`redis.call('RPUSH', …)`): `total` includes
     * those, `sent` leaves them out (the commands the servers sent: round trips), `scripts` counts
     * EVAL/EVALSHA/FCALL calls.
     */
    async commands () {
      const text = await client.info('commandstats')
      const byName = {}
      let total = 0
      let scripted = 0
      let scripts = 0
      for (const line of text.split('\n')) {
        const m = /^cmdstat_([^:]+):calls=(\d+)/.exec(line.trim())
        if (m === null || m[1] === 'info' || m[1].startsWith('config')) continue
        const calls = Number(m[2])
        byName[m[1]] = calls
        total += calls
        if (inScripts.has(m[1])) scripted += calls
        if (/^(eval|evalsha|eval_ro|evalsha_ro|fcall|fcall_ro)$/.test(m[1])) scripts += calls
      }
      return { sent: total - scripted, total, scripts, byName }
    },
    /** `used_memory` (bytes) and the pub/sub channels and shard channels with a subscriber (INFO). */
    async memory () {
      const text = await client.info()
      const field = (name) => Number(new RegExp(`^${name}:(\\d+)`, 'm').exec(text)?.[1] ?? 0)
      return { usedMemory: field('used_memory'), pubsubChannels: field('pubsub_channels'), shardChannels: field('pubsubshard_channels') }
    },
    async stop () {
      client.disconnect()
      const exited = new Promise((resolve) => sh.once('exit', resolve))
      sh.stdin.end() // the watchdog stops redis-server
      await Promise.race([exited, sleep(3000)])
      try { process.kill(pid, 'SIGKILL') } catch {} // already gone, normally
      release()
    }
  }
}

/** The commands the built package's Lua scripts run (found in dist/esm/redis/scripts.js). */
function scriptCommands () {
  const names = new Set()
  try {
    for (const m of readFileSync(path.join(rootDir, 'dist/esm/redis/scripts.js'), 'utf8').matchAll(/redis\.p?call\(\s*['"]([A-Za-z]+)['"]/g)) names.add(m[1].toLowerCase())
  } catch {}
  return names
}

export function redisServerInstalled () {
  try {
    execFileSync('sh', ['-c', 'command -v redis-server'], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}
