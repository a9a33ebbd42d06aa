// Queues on a real local Redis Cluster (three masters): the queue store conformance suite, the queue namespace
// of the notifier (sharded pub/sub), and jobs of queues on every master enqueued on one instance and claimed on
// another.
import t from 'tap'
import type { Cluster } from 'ioredis'
import { serve, until } from './helpers/app.js'
import { heldClaims } from './helpers/queue-suite.js'
import { ack, claim, enqueue } from './helpers/queue.js'
import { runPrefix, startCluster, type LocalCluster } from './helpers/redis.js'
import { queueNotifierConformance, queueStoreConformance } from '../lib/conformance/index.js'
import { RedisNotifier, RedisQueueStore, RedisStore } from '../lib/index.js'
import { queueKey } from '../lib/redis/keys.js'
import type { Test } from 'tap'

async function instance (t: Test, cluster: LocalCluster, prefix: string): Promise<Awaited<ReturnType<typeof serve>> & { redis: Cluster }> {
  const redis = cluster.client(t)
  const served = await serve(t, {
    store: new RedisStore({ redis, prefix }),
    notifier: new RedisNotifier({ redis, prefix }),
    queueStore: new RedisQueueStore({ redis, prefix })
  })
  return { ...served, redis }
}

t.test('Redis Cluster', async (t) => {
  const cluster = await startCluster(t)
  const prefix = runPrefix()
  const a = await instance(t, cluster, prefix)
  const b = await instance(t, cluster, prefix)
  const observer = cluster.client(t)
  await observer.ping()

  // Queues until every master owns two: a queue's keys and its shard channel share the slot of `{<queue>}`.
  const queues: string[] = []
  const perMaster = new Map<string, number>()
  for (let i = 0; perMaster.size < 3 || [...perMaster.values()].some((n) => n < 2); i++) {
    const queue = `cluster.q.${i}`
    const slot = await observer.cluster('KEYSLOT', queueKey(prefix, queue, 'waiting')) as number
    const node = (observer.slots[slot] as string[])[0] as string
    if ((perMaster.get(node) ?? 0) >= 2) continue
    perMaster.set(node, (perMaster.get(node) ?? 0) + 1)
    queues.push(queue)
  }
  t.equal(perMaster.size, 3, 'queues on all three masters')

  t.test('claims held on B are woken by enqueues on A, for queues on every master; acks settle them', async (t) => {
    const held = queues.map((queue) => claim(b.base, queue, { timeout: 30_000 }))
    await until(() => heldClaims(b) === queues.length, 15_000, 'held claims')
    for (const queue of queues) await claim(b.base, queue, { timeout: 0 }) // see queue-redis.test.ts: first claims done
    const started = Date.now()
    const ids = []
    for (const queue of queues) ids.push((await enqueue(a.base, queue, { queue })).body.id)
    const answers = await Promise.all(held)
    t.ok(Date.now() - started < 10_000, 'woken, not timed out')
    for (const [i, answer] of answers.entries()) {
      t.same(answer.body.jobs.map((job: any) => [job.id, job.data]), [[ids[i], { queue: queues[i] }]], String(queues[i]))
      t.same((await ack(a.base, queues[i] as string, { receipt: answer.body.jobs[0].receipt })).body, { acked: 1 })
    }
  })

  t.test('the queue store conformance suite on the cluster', async (t) => {
    queueStoreConformance({ name: 'RedisQueueStore on Cluster', test: (name, fn) => t.test(name, fn), createStore: () => new RedisQueueStore({ redis: cluster.client(t), prefix }), concurrency: 100 })
  })

  t.test('the queue namespace of the notifier on the cluster', async (t) => {
    queueNotifierConformance({ name: 'RedisNotifier on Cluster', test: (name, fn) => t.test(name, fn), createNotifier: () => new RedisNotifier({ redis: cluster.client(t), prefix }) })
  })
})
