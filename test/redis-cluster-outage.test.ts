// A Redis Cluster master lost and back, several times, while 50 channels have polls held: ioredis keeps its own
// list of the shard-subscribed channels (to re-send SSUBSCRIBE after a reset), and the notifier's re-subscription
// must not add to it at each outage. Real local Cluster (three masters), real SIGKILL and restart.
import t from 'tap'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import type { Cluster } from 'ioredis'
import { heldPolls, poll, push } from './helpers/app.js'
import { redisApp, runPrefix, startCluster, type LocalCluster, type RedisServer } from './helpers/redis.js'
import { RedisNotifier } from '../lib/index.js'

const execFileAsync = promisify(execFile)
const CHANNELS = 50
const OUTAGE_MS = Number(process.env.OUTAGE_MS ?? 5_000)

/**
 * Entries in ioredis's own re-subscribe list of a sharded-subscriber Cluster: `ClusterSubscriberGroup.channels`,
 * slot → channel names, concatenated by every SSUBSCRIBE sent through the Cluster (ioredis 5.x, cluster/index.js
 * → addChannels). A test of an ioredis internal: if ioredis renames it, this fails loudly rather than passing.
 */
function resubscribeList (notifier: RedisNotifier): number {
  const subscriber = (notifier as unknown as { subscriber: Cluster | null }).subscriber
  const group = (subscriber as unknown as { shardedSubscribers?: { channels?: unknown } }).shardedSubscribers
  if (!(group?.channels instanceof Map)) throw new Error('ioredis no longer keeps ClusterSubscriberGroup.channels: update this test')
  let n = 0
  for (const names of (group.channels as Map<number, string[]>).values()) n += names.length
  return n
}

async function clusterOk (cluster: LocalCluster): Promise<void> {
  const deadline = Date.now() + 60_000
  for (const port of cluster.ports) {
    for (;;) {
      const { stdout } = await execFileAsync('redis-cli', ['-p', String(port), 'cluster', 'info'])
      if (stdout.includes('cluster_state:ok')) break
      if (Date.now() > deadline) throw new Error(`the cluster did not come back: ${stdout}`)
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  }
}

/** Pushes until the store answers: while the node (or the cluster's state) is not back, pushes answer 503. */
async function pushWhenBack (base: string, channel: string, data: unknown): Promise<string> {
  const deadline = Date.now() + 60_000
  for (;;) {
    const res = await push(base, channel, data)
    if (res.status === 200) return res.body.id
    if (res.status !== 503) throw new Error(`push answered ${res.status}: ${JSON.stringify(res.body)}`)
    if (Date.now() > deadline) throw new Error('the store did not come back')
    await new Promise((resolve) => setTimeout(resolve, 100)) // retry pacing, as a client would back off
  }
}

/**
 * Every channel is shard-subscribed on its master, as Redis itself counts (PUBSUB SHARDNUMSUB, asked of every
 * node by redis-cli: a client's own view of the nodes may still miss the one just restarted).
 */
async function untilSubscribed (cluster: LocalCluster, prefix: string, channels: string[]): Promise<void> {
  const names = channels.map((channel) => `${prefix}{${channel}}`)
  const deadline = Date.now() + 20_000
  for (;;) {
    const counts = new Map<string, number>()
    for (const port of cluster.ports) {
      const lines = (await execFileAsync('redis-cli', ['-p', String(port), 'pubsub', 'shardnumsub', ...names])).stdout.trim().split('\n')
      for (let i = 0; i + 1 < lines.length; i += 2) counts.set(lines[i] as string, (counts.get(lines[i] as string) ?? 0) + Number(lines[i + 1]))
    }
    const missing = names.filter((name) => (counts.get(name) ?? 0) === 0)
    if (missing.length === 0) return
    if (Date.now() > deadline) throw new Error(`Redis never listed every channel as shard-subscribed: missing ${missing.join(' ')}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

t.test('Cluster: a master lost for 5 s and back, three times, with 50 channels held', async (t) => {
  const cluster = await startCluster(t)
  const prefix = runPrefix()
  const a = await redisApp(t, cluster, prefix)
  const notifier = new RedisNotifier({ redis: cluster.client(t), prefix })
  const b = await redisApp(t, cluster, prefix, { notifier })
  const observer = cluster.client(t)
  await observer.ping()
  const owner = async (channel: string): Promise<number> => {
    const slot = await observer.cluster('KEYSLOT', `${prefix}{${channel}}:meta`) as number
    return Number(((observer.slots[slot] as string[])[0] as string).split(':')[1])
  }
  const channels = Array.from({ length: CHANNELS }, (_, i) => `outage.${i}`)
  const cursors = new Map<string, string>()
  for (const channel of channels) cursors.set(channel, (await poll(b.base, { channel, cursor: 'latest', timeout: 0 })).body.cursor)

  /** A client polling on with its cursor until it gets a message; a 503 (its read caught by the outage) is retried. */
  const client = async (channel: string): Promise<Array<{ id: string }>> => {
    for (;;) {
      const answer = await poll(b.base, { channel, cursor: cursors.get(channel) as string, timeout: 120_000 })
      if (answer.status === 503) {
        await new Promise((resolve) => setTimeout(resolve, 200)) // the client's back-off
        continue
      }
      if (answer.status !== 200) throw new Error(`${channel}: poll answered ${answer.status}: ${JSON.stringify(answer.body)}`)
      cursors.set(channel, answer.body.cursor)
      if (answer.body.messages.length > 0) return answer.body.messages
    }
  }

  t.equal(resubscribeList(notifier), 0, 'nothing subscribed yet')
  for (let round = 0; round < 3; round++) {
    const server = cluster.servers[round] as RedisServer
    const received = channels.map(client)
    for (const receiving of received) receiving.catch(() => {}) // a failed test stops here; its teardown ends them
    await heldPolls(b.app, CHANNELS)
    await untilSubscribed(cluster, prefix, channels)
    t.equal(resubscribeList(notifier), CHANNELS, `round ${round}: one entry per channel before the outage`)
    const fresh: string[] = []
    for (let i = 0; fresh.length < 3; i++) {
      const channel = `fresh.${round}.${i}`
      if (await owner(channel) === server.port) fresh.push(channel)
    }
    await server.kill()
    const outage = Date.now()
    // Polls on new channels of the lost master during the outage: their SSUBSCRIBE fails.
    const refused = await Promise.all(fresh.map(async (channel) => await poll(b.base, { channel, cursor: 'latest', timeout: 60_000 })))
    t.same(refused.map((answer) => answer.status), fresh.map(() => 503), `round ${round}: a new poll on the lost master's channels answers 503`)
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, OUTAGE_MS - (Date.now() - outage)))) // the outage measured
    await server.start()
    await clusterOk(cluster)
    const ids = await Promise.all(channels.map(async (channel) => await pushWhenBack(a.base, channel, { channel, round })))
    const answers = await Promise.all(received)
    for (const [i, messages] of answers.entries()) {
      t.same(messages.map((m) => m.id), [ids[i]], `round ${round}, ${channels[i] as string}: the message pushed after the outage is delivered`)
    }
    const entries = resubscribeList(notifier)
    t.comment(`round ${round}: ioredis's re-subscribe list after a ${OUTAGE_MS} ms outage: ${entries} entries for ${CHANNELS} channels`)
    t.equal(entries, CHANNELS, `round ${round}: ioredis's re-subscribe list holds each channel once (${entries} entries)`)
  }

  // No outage now: what wakes these polls is the shard subscriptions themselves, not a resync's read.
  const received = channels.map(client)
  await heldPolls(b.app, CHANNELS)
  await untilSubscribed(cluster, prefix, channels)
  const ids = await Promise.all(channels.map(async (channel) => (await push(a.base, channel, 'after the outages')).body.id))
  t.same((await Promise.all(received)).map((messages) => messages.map((m) => m.id)), ids.map((id) => [id]), 'after three outages, a push wakes every channel\'s poll')
  t.equal(resubscribeList(notifier), CHANNELS)
})
