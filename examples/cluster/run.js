// Starts three instances of server.js (three processes, three ports) on one Redis, follows a channel through
// instances b and c, pushes through instance a, and prints what each instance delivered.
//
//   node examples/cluster/run.js            # needs a redis-server; REDIS_URL, default redis://127.0.0.1:6379
import { fork } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { Redis } from 'ioredis'
import { LongPollClient } from 'fastify-longpoll/client'

const SERVER = fileURLToPath(new URL('./server.js', import.meta.url))

/**
 * Runs the demo and resolves to `{ channel, sent, received, instances }`: `received` maps each follower's
 * instance to the texts it got, `instances` is each instance's `{ name, address, stats }` at the end.
 */
export async function run ({
  redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
  prefix = process.env.LONGPOLL_PREFIX,
  messages = 10,
  everyMs = 100,
  log = () => {},
  serverLog = () => {}
} = {}) {
  await checkRedis(redisUrl)
  const children = []
  try {
    const [a, b, c] = await Promise.all(['a', 'b', 'c'].map((name) => startInstance(name, { redisUrl, prefix }, children, serverLog)))
    log(`instances: a ${a.address}, b ${b.address}, c ${c.address} — sharing ${redisUrl}`)

    // A fresh channel per run, so that a Redis used before holds no backlog for it.
    const channel = `orders-${randomBytes(4).toString('hex')}`
    const followers = [b, c].map((instance) => follow(instance, channel, messages, log))
    // Held polls on b and c first, so that what follows are live wake-ups across instances, not a backlog read.
    await Promise.all([b, c].map((instance) => until(async () => (await stats(instance)).heldPolls >= 1)))
    log(`followers are waiting on b and c; pushing ${messages} messages through a, one every ${everyMs} ms`)

    const sent = []
    for (let i = 1; i <= messages; i++) {
      const text = `order #${i}`
      log(`a  <- push ${text}`)
      const response = await fetch(`${a.address}/lp/push`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ channel, data: { text, sentAt: Date.now() } })
      })
      if (!response.ok) throw new Error(`push through a answered ${response.status}: ${await response.text()}`)
      sent.push(text)
      if (i < messages) await new Promise((resolve) => setTimeout(resolve, everyMs))
    }

    const received = Object.fromEntries(await Promise.all(followers))
    const instances = await Promise.all([a, b, c].map(async ({ name, address }) => ({ name, address, stats: await stats({ address }) })))
    return { channel, sent, received, instances }
  } finally {
    await Promise.all(children.map(stopInstance))
  }
}

async function checkRedis (url) {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null })
  redis.on('error', () => {})
  try {
    await redis.connect()
    await redis.ping()
  } catch (err) {
    throw new Error(`No Redis at ${url} (${err.message}). Start one (redis-server) or set REDIS_URL.`)
  } finally {
    redis.disconnect()
  }
}

/** Forks one instance on a free port; resolves once it listens and told us its address. */
function startInstance (name, { redisUrl, prefix }, children, serverLog) {
  const env = { ...process.env, NAME: name, PORT: '0', HOST: '127.0.0.1', REDIS_URL: redisUrl, LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn' }
  if (prefix !== undefined) env.LONGPOLL_PREFIX = prefix
  const child = fork(SERVER, [], { env, execArgv: [], stdio: ['ignore', 'pipe', 'pipe', 'ipc'] })
  children.push(child)
  for (const stream of [child.stdout, child.stderr]) {
    stream.setEncoding('utf8')
    stream.on('data', (chunk) => { for (const line of chunk.split('\n')) if (line !== '') serverLog(name, line) })
  }
  return new Promise((resolve, reject) => {
    child.once('message', (message) => resolve({ name, address: message.address }))
    child.once('exit', (code) => reject(new Error(`instance ${name} exited with code ${code} before listening`)))
    child.once('error', reject)
  })
}

async function stopInstance (child) {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise((resolve) => child.once('exit', resolve))
  child.kill('SIGTERM')
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000)
  await exited
  clearTimeout(timer)
}

/** Follows `channel` through one instance until `count` messages came; resolves to [name, texts]. */
async function follow (instance, channel, count, log) {
  const texts = []
  const client = new LongPollClient({ url: `${instance.address}/lp`, channel })
  for await (const { data } of client) {
    texts.push(data.text)
    log(`${instance.name}  -> delivered ${data.text} (${Date.now() - data.sentAt} ms after the push)`)
    if (texts.length === count) break
  }
  return [instance.name, texts]
}

async function stats ({ address }) {
  const response = await fetch(`${address}/instance`)
  return (await response.json()).stats
}

/** Re-checks `condition` every 20 ms: here it asks a server for its state, which has no event to wait on. */
async function until (condition, ms = 10_000) {
  const deadline = Date.now() + ms
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('timed out waiting for the followers to be held')
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

export function table (instances) {
  const lines = [
    '| instance | address                | pushed | delivered | polls answered |',
    '|----------|------------------------|-------:|----------:|---------------:|'
  ]
  for (const { name, address, stats } of instances) {
    lines.push(`| ${name.padEnd(8)} | ${address.padEnd(22)} | ${String(stats.pushed).padStart(6)} | ${String(stats.delivered).padStart(9)} | ${String(stats.answered).padStart(14)} |`)
  }
  return lines.join('\n')
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  try {
    const result = await run({
      log: (line) => console.log(line),
      serverLog: (name, line) => console.log(`[${name}] ${line}`)
    })
    console.log(`\n${table(result.instances)}\n`)
    let ok = true
    for (const [name, texts] of Object.entries(result.received)) {
      const same = JSON.stringify(texts) === JSON.stringify(result.sent)
      ok &&= same
      console.log(`follower on ${name}: ${texts.length} of ${result.sent.length} messages, ${same ? 'all, once each, in push order' : `MISMATCH: ${JSON.stringify(texts)}`}`)
    }
    process.exitCode = ok ? 0 : 1
  } catch (err) {
    console.error(err.message)
    process.exitCode = 1
  }
}
