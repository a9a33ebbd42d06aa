// app.longpoll.pushMany on a real local Redis Cluster (three masters): the shared suite on two instances, and a
// batch over channels of every master costs one script per master (INFO commandstats on each node).
import t from 'tap'
import { Redis } from 'ioredis'
import { redisApp, runPrefix, startCluster } from './helpers/redis.js'
import { pushManySuite, SUITE_OPTIONS } from './helpers/push-many.js'
import { keySlot } from '../lib/redis/keys.js'

t.test('Redis Cluster', async (t) => {
  const cluster = await startCluster(t)
  const prefix = runPrefix()
  const a = await redisApp(t, cluster, prefix, SUITE_OPTIONS)
  const b = await redisApp(t, cluster, prefix, SUITE_OPTIONS)
  const observer = cluster.client(t)
  await observer.ping()

  t.test('keySlot agrees with CLUSTER KEYSLOT', async (t) => {
    for (const key of [`${prefix}{a}:meta`, `${prefix}{user-42}:msgs`, 'no-tag', '{}empty-tag', 'x{}{y}', 'ü{ñ}', `${prefix}{${'z'.repeat(200)}}:key:k`]) {
      t.equal(keySlot(key), await observer.cluster('KEYSLOT', key), key)
    }
  })

  pushManySuite(t, { instances: [a, b], name: 'cluster' })

  t.test('a batch over channels of all three masters: one EVALSHA per master, one SPUBLISH per channel', async (t) => {
    const nodes = cluster.ports.map((port) => {
      const node = new Redis(port, '127.0.0.1')
      node.on('error', () => {})
      t.teardown(() => { node.disconnect() })
      return node
    })
    const channels = Array.from({ length: 20 }, (_, i) => `cluster.count.${i}`)
    const masters = new Set(channels.map((channel) => (observer.slots[keySlot(`${prefix}{${channel}}:meta`)] as string[])[0]))
    t.equal(masters.size, 3, 'the channels live on all three masters')
    const batch = channels.flatMap((channel) => [{ channel, data: 1 }, { channel, data: 2 }])
    await a.app.longpoll.pushMany(batch.map(({ channel, data }) => ({ channel: `${channel}.warm`, data }))) // loads the script on every node
    await Promise.all(nodes.map((node) => node.config('RESETSTAT')))
    const results = await a.app.longpoll.pushMany(batch)
    await Promise.all(nodes.map((node) => node.ping()))
    let spublish = 0
    for (const [i, node] of nodes.entries()) {
      const info = await node.info('commandstats')
      const evalsha = Number(/^cmdstat_evalsha:calls=(\d+)/m.exec(info)?.[1] ?? 0)
      t.equal(evalsha, 1, `node ${cluster.ports[i] as number}: one script`)
      t.notMatch(info, /^cmdstat_eval:/m, 'no script reloaded')
      spublish += Number(/^cmdstat_spublish:calls=(\d+)/m.exec(info)?.[1] ?? 0)
    }
    t.equal(spublish, channels.length, 'one event per channel')
    for (const [i, channel] of channels.entries()) {
      const [first, second] = [results[2 * i], results[2 * i + 1]]
      t.equal(Number(second?.id.split('.')[1]), Number(first?.id.split('.')[1]) + 1, `${channel}: consecutive seqs`)
    }
  })
})
