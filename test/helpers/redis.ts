// Real redis-server processes for the tests: started on free loopback ports, without persistence, in a temp
// dir, and stopped in teardown. No mock stands in for Redis in any test that claims Redis behaviour.
import { spawn, execFile, execFileSync, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createConnection, createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { promisify } from 'node:util'
import type { Test } from 'tap'
import { Cluster, Redis } from 'ioredis'
import { push, serve, type Served } from './app.js'
import { RedisNotifier, RedisStore, type LongPollOptions, type RedisNotifierOptions, type RedisStoreOptions } from '../../lib/index.js'

const execFileAsync = promisify(execFile)

function requireRedis (): void {
  for (const command of ['redis-server', 'redis-cli']) {
    try {
      execFileSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' })
    } catch {
      throw new Error(`${command} is not installed: the Redis tests need a real Redis (Debian: apt-get install redis-server)`)
    }
  }
}

/** A key prefix of its own per test run, so tests sharing a server never see each other's keys. */
export function runPrefix (): string {
  return `lptest-${randomBytes(4).toString('hex')}:`
}

/** A free loopback port whose cluster bus port (port + 10000) is free as well. */
export async function freePort (): Promise<number> {
  for (;;) {
    const port = await listenOnce(0)
    if (port + 10_000 < 65_536 && await listenOnce(port + 10_000).then(() => true, () => false)) return port
  }
}

async function listenOnce (port: number): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(port, '127.0.0.1', () => {
      const { port: bound } = server.address() as { port: number }
      server.close(() => resolve(bound))
    })
  })
}

/** Resolves once the server answers PING (over a raw socket: no client library in the way). */
async function waitForPing (port: number, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = createConnection({ port, host: '127.0.0.1' })
      let data = ''
      socket.setTimeout(1_000, () => { socket.destroy(); resolve(false) })
      socket.on('connect', () => socket.write('PING\r\n'))
      socket.on('data', (chunk) => {
        data += chunk.toString()
        if (data.includes('\r\n')) { socket.destroy(); resolve(data.startsWith('+PONG')) }
      })
      socket.on('error', () => resolve(false))
    })
    if (ok) return
    if (Date.now() > deadline) throw new Error(`redis-server on port ${port} did not answer PING within ${ms} ms`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

export class RedisServer {
  /** A shell that owns redis-server and kills it when our stdin closes, so no server outlives the test process. */
  private wrapper: ChildProcess | null = null
  private pid = 0
  readonly dir: string

  constructor (readonly port: number, private readonly extraArgs: string[] = []) {
    this.dir = mkdtempSync(join(tmpdir(), 'lp-redis-'))
  }

  get url (): string {
    return `redis://127.0.0.1:${this.port}`
  }

  async start (): Promise<void> {
    const args = [
      '--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
      '--dir', this.dir, '--logfile', '', '--loglevel', 'warning', ...this.extraArgs
    ]
    const wrapper = spawn('sh', ['-c', 'redis-server "$@" >/dev/null & pid=$!; echo $pid; read _; kill -9 $pid 2>/dev/null; wait $pid', 'sh', ...args], { stdio: ['pipe', 'pipe', 'ignore'] })
    this.wrapper = wrapper
    this.pid = await new Promise<number>((resolve, reject) => {
      wrapper.stdout?.once('data', (chunk: Buffer) => resolve(Number.parseInt(chunk.toString(), 10)))
      wrapper.once('exit', () => reject(new Error('redis-server exited at once')))
    })
    await waitForPing(this.port)
  }

  /** SIGKILL: the server vanishes the way a crashed or partitioned Redis does. */
  async kill (): Promise<void> {
    const wrapper = this.wrapper
    if (wrapper === null) return
    this.wrapper = null
    const exited = new Promise((resolve) => wrapper.once('exit', resolve))
    try {
      process.kill(this.pid, 'SIGKILL')
    } catch {}
    wrapper.stdin?.end() // the shell reaps the server and exits
    await exited
  }

  /** SIGSTOP / SIGCONT: a Redis that hangs (a stalled host, a long fork) while its sockets stay open. */
  pause (): void {
    if (this.wrapper !== null) process.kill(this.pid, 'SIGSTOP')
  }

  resume (): void {
    if (this.wrapper !== null) process.kill(this.pid, 'SIGCONT')
  }

  async stop (): Promise<void> {
    await this.kill()
    rmSync(this.dir, { recursive: true, force: true })
  }

  /** A client of the test's own (not the plugin's): closed in teardown. */
  client (t: Test, options: Record<string, unknown> = {}): Redis {
    const redis = new Redis(this.port, '127.0.0.1', { maxRetriesPerRequest: 3, ...options })
    redis.on('error', () => {}) // expected while a test kills the server; the assertions look at behaviour
    t.teardown(() => { redis.disconnect() })
    return redis
  }
}

/** Starts a redis-server for the test (file) and stops it in teardown. */
export async function startRedis (t: Test): Promise<RedisServer> {
  requireRedis()
  const server = new RedisServer(await freePort())
  t.teardown(() => server.stop())
  await server.start()
  return server
}

export interface LocalCluster {
  servers: RedisServer[]
  ports: number[]
  client (t: Test, options?: Record<string, unknown>): Cluster
}

/** Three masters (`--cluster-enabled yes`), slots assigned by `redis-cli --cluster create`, no replicas. */
export async function startCluster (t: Test): Promise<LocalCluster> {
  requireRedis()
  const servers: RedisServer[] = []
  t.teardown(async () => { await Promise.all(servers.map((server) => server.stop())) })
  for (let i = 0; i < 3; i++) {
    const port = await freePort()
    servers.push(new RedisServer(port, ['--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${port}.conf`, '--cluster-node-timeout', '5000']))
  }
  await Promise.all(servers.map((server) => server.start()))
  const ports = servers.map((server) => server.port)
  await execFileAsync('redis-cli', ['--cluster', 'create', ...ports.map((port) => `127.0.0.1:${port}`), '--cluster-replicas', '0', '--cluster-yes'])
  // Slots are assigned; wait until every node agrees the cluster is up.
  const deadline = Date.now() + 20_000
  for (const port of ports) {
    for (;;) {
      const { stdout } = await execFileAsync('redis-cli', ['-p', String(port), 'cluster', 'info'])
      if (stdout.includes('cluster_state:ok')) break
      if (Date.now() > deadline) throw new Error(`the local cluster did not reach cluster_state:ok: ${stdout}`)
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  }
  return {
    servers,
    ports,
    client (t) {
      const cluster = new Cluster(ports.map((port) => ({ host: '127.0.0.1', port })), { redisOptions: { maxRetriesPerRequest: 3 } })
      cluster.on('error', () => {})
      t.teardown(() => { cluster.disconnect() })
      return cluster
    }
  }
}

/** Deletes every key under a prefix (SCAN, never FLUSHALL: the server may be shared). */
export async function deleteByPrefix (redis: Redis, prefix: string): Promise<void> {
  let cursor = '0'
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000)
    cursor = next
    if (keys.length > 0) await redis.del(...keys)
  } while (cursor !== '0')
}

export interface RedisApp extends Served {
  /** The client the app's store and notifier were given (the user's client: the plugin never closes it). */
  redis: Redis | Cluster
  notifierLog: Array<{ level: string, msg: string }>
}

export interface RedisAppMore {
  /** ioredis options of the instance's client (its notifier's subscriber is a duplicate, so it inherits them). */
  client?: Record<string, unknown>
  store?: Partial<RedisStoreOptions>
}

/**
 * One instance of a user's app on Redis: a listening Fastify app with RedisStore and RedisNotifier over a
 * client of its own, as a separate process would have.
 */
export async function redisApp (t: Test, connect: RedisServer | LocalCluster, prefix: string, options: LongPollOptions = {}, notifierOptions: Partial<RedisNotifierOptions> = {}, more: RedisAppMore = {}): Promise<RedisApp> {
  const redis = connect.client(t, more.client)
  const notifierLog: RedisApp['notifierLog'] = []
  const log = {
    error: (_: object, msg: string) => { notifierLog.push({ level: 'error', msg }) },
    warn: (_: object, msg: string) => { notifierLog.push({ level: 'warn', msg }) },
    info: (_: object, msg: string) => { notifierLog.push({ level: 'info', msg }) }
  }
  const served = await serve(t, {
    store: new RedisStore({ redis, prefix, ...more.store }),
    notifier: new RedisNotifier({ redis, prefix, log, ...notifierOptions }),
    ...options
  })
  return { ...served, redis, notifierLog }
}

/** Pushes until the store answers again after an outage; every answer before that must be a 503. */
export async function pushWhenBack (t: Test, app: Served, channel: string, data: unknown, ms = 30_000): Promise<string> {
  const deadline = Date.now() + ms
  for (;;) {
    const res = await push(app.base, channel, data)
    if (res.status === 200) return res.body.id
    t.equal(res.status, 503, 'while the store is not back, a push answers 503')
    if (Date.now() > deadline) throw new Error('the store did not come back')
    await new Promise((resolve) => setTimeout(resolve, 50)) // retry pacing, as a client would back off
  }
}
