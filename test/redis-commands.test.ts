// What the Redis store and notifier cost, counted by Redis itself (INFO commandstats, which also counts the
// commands a Lua script runs). The README states these numbers; this test is where they come from.
import t from 'tap'
import type { Redis } from 'ioredis'
import { heldPolls, poll, push } from './helpers/app.js'
import { redisApp, runPrefix, startRedis, type RedisApp } from './helpers/redis.js'

type Counts = Record<string, number>

t.test('Redis commands per push, per delivered message, and for a fan-out', async (t) => {
  const server = await startRedis(t)
  const prefix = runPrefix()
  const a = await redisApp(t, server, prefix)
  const b = await redisApp(t, server, prefix)
  const observer = server.client(t)
  const apps = [a, b]

  async function commandstats (): Promise<Counts> {
    const info = await observer.info('commandstats')
    const counts: Counts = {}
    for (const [, name, calls] of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) counts[name as string] = Number(calls)
    // The measuring itself: the observer's INFO / CONFIG, and the PINGs that settle each connection.
    for (const name of ['info', 'config|resetstat', 'ping']) delete counts[name]
    return counts
  }

  /** Every command each app's connection sent has run once a PING sent after it is answered. */
  async function settle (): Promise<void> {
    await Promise.all(apps.map((app) => (app.redis as Redis).ping()))
    await new Promise((resolve) => setImmediate(resolve))
  }

  async function measure (what: () => Promise<unknown>): Promise<Counts> {
    // A channel of an earlier phase unsubscribes `linger` (2 s) after its last poll: wait until none is left, so
    // that its UNSUBSCRIBE is not counted here.
    for (let i = 0; i < 200 && (await observer.pubsub('CHANNELS', `${prefix}*`) as string[]).length > 0; i++) {
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    await settle()
    await observer.config('RESETSTAT')
    await what()
    await settle()
    return await commandstats()
  }

  const total = (counts: Counts): number => Object.values(counts).reduce((sum, n) => sum + n, 0)
  const roundTrips = (counts: Counts): number => (counts.evalsha ?? 0) + (counts.eval ?? 0) + (counts.publish ?? 0) + (counts.del ?? 0)

  /** Polls B with a concrete cursor and waits until they are held (their first read answered). */
  async function hold (app: RedisApp, channel: string, n: number): Promise<Array<ReturnType<typeof poll>>> {
    const cursor = (await poll(app.base, { channel, cursor: 'latest', timeout: 0 })).body.cursor
    const polls = Array.from({ length: n }, () => poll(app.base, { channel, cursor, timeout: 30_000 }))
    await heldPolls(app.app, n)
    await settle()
    return polls
  }

  // Warm-up: the scripts are loaded (the first call is an EVAL after NOSCRIPT) and the channels exist.
  for (const channel of ['cost.push', 'cost.one', 'cost.fanout', 'cost.repoll', 'cost.gone', 'cost.disconnect', 'cost.read']) {
    await a.app.longpoll.push(channel, 'warm-up')
    await poll(b.base, { channel, timeout: 0 })
  }
  await a.app.longpoll.disconnect('cost.gone') // loads the delete script

  const pushCost = await measure(() => a.app.longpoll.push('cost.push', { n: 1 }))
  t.comment(`one push: ${JSON.stringify(pushCost)}`)
  // The script's INFO server (the run id, for guarantee 6) is not in the counts: the measuring's own INFO shares its name.
  t.same(pushCost, { evalsha: 1, time: 1, hmget: 1, hincrby: 1, rpush: 1, lindex: 1, pexpire: 2, publish: 1 },
    'a push costs 10 commands in 2 round trips: the append script (TIME HMGET INFO HINCRBY RPUSH LINDEX PEXPIRE×2) and a PUBLISH')
  t.equal(roundTrips(pushCost), 2)

  const one = await hold(b, 'cost.one', 1)
  const oneCost = await measure(async () => {
    await push(a.base, 'cost.one', 'to one poll')
    await Promise.all(one)
  })
  const deliveryCost = subtract(oneCost, pushCost)
  t.comment(`delivering it to a poll held on another instance: ${JSON.stringify(deliveryCost)}`)
  t.same(deliveryCost, { evalsha: 1, hmget: 1, pttl: 1, lindex: 1, lrange: 1 },
    'waking a held poll costs one read script: 5 commands in 1 round trip')

  const fanout = await hold(b, 'cost.fanout', 50)
  const fanoutCost = await measure(async () => {
    await push(a.base, 'cost.fanout', 'to fifty polls')
    const answers = await Promise.all(fanout)
    t.equal(answers.filter((answer) => answer.body.messages.length === 1).length, 50, 'all 50 polls received it')
  })
  t.comment(`a push to 50 polls held on one instance: ${JSON.stringify(fanoutCost)}`)
  t.same(fanoutCost, oneCost, 'a fan-out to 50 polls costs exactly what a push to one poll costs: O(1) in the number of polls')

  // A client that re-polls after each answer: within presenceWindow its channel stays subscribed between its polls.
  const rounds = 20
  const repoll = async (app: RedisApp, channel: string): Promise<void> => {
    let cursor = (await poll(app.base, { channel, cursor: 'latest', timeout: 0 })).body.cursor
    for (let i = 0; i < rounds; i++) {
      const next = poll(app.base, { channel, cursor, timeout: 30_000 })
      await heldPolls(app.app, 1)
      await settle()
      await push(a.base, channel, i)
      const answer = await next
      cursor = answer.body.cursor
      await heldPolls(app.app, 0)
    }
  }
  const lingering = await measure(() => repoll(b, 'cost.repoll'))
  t.comment(`${rounds} messages to a re-polling client, presenceWindow 2000 ms: ${JSON.stringify(lingering)}`)
  t.equal(lingering.subscribe ?? 0, 1, 'one SUBSCRIBE for the whole conversation')
  t.equal(lingering.unsubscribe ?? 0, 0, 'no UNSUBSCRIBE between polls')
  const perMessage = total(lingering) / rounds
  t.comment(`per message delivered to a re-polling client: ${perMessage} commands (push 10, wake-up read 5, the next poll's first read 3, plus its short poll and the one SUBSCRIBE spread over ${rounds})`)

  // The re-poll's first read: a client back within presenceWindow (its channel still subscribed) with a cursor at
  // the newest message. What the README's "a poll that finds nothing new" row states.
  const repolled = await hold(b, 'cost.read', 1) // held before the push, or the push could answer it at once
  await push(a.base, 'cost.read', 'answer')
  const [answered] = await Promise.all(repolled)
  await settle()
  await observer.config('RESETSTAT')
  const controller = new AbortController()
  const next = poll(b.base, { channel: 'cost.read', cursor: answered?.body.cursor as string, timeout: 30_000 }, { signal: controller.signal }).catch(() => null)
  await heldPolls(b.app, 1) // its read went out on B's connection right after it was attached
  await settle()
  const readCost = await commandstats()
  t.comment(`a re-poll's first read: ${JSON.stringify(readCost)}`)
  t.same(readCost, { evalsha: 1, hmget: 1, pttl: 1 }, 'a poll that finds nothing new costs one read script: 3 commands in 1 round trip, no SUBSCRIBE')
  controller.abort()
  await next
  await heldPolls(b.app, 0)

  // A disconnect of a channel with messages: the delete script drops both keys and leaves a tombstone, then the
  // disconnect event goes out.
  const disconnectCost = await measure(async () => {
    t.equal((await fetch(`${a.base}/disconnect?channel=cost.disconnect`, { method: 'DELETE' })).status, 200)
  })
  t.comment(`a disconnect: ${JSON.stringify(disconnectCost)}`)
  t.same(disconnectCost, { evalsha: 1, del: 1, time: 1, hset: 1, pexpire: 1, publish: 1 },
    'a disconnect costs 6 commands in 2 round trips: the delete script (EVALSHA → DEL TIME HSET PEXPIRE) and a PUBLISH')

  const eager = await redisApp(t, server, prefix, { presenceWindow: 0 })
  apps.push(eager)
  let noLinger = await measure(() => repoll(eager, 'cost.eager'))
  // The last UNSUBSCRIBE goes out on the notifier's own connection, which settle() cannot ping.
  for (let i = 0; i < 200 && (noLinger.unsubscribe ?? 0) < rounds; i++) noLinger = await commandstats()
  t.comment(`the same with presenceWindow 0: ${JSON.stringify(noLinger)}`)
  t.equal(noLinger.subscribe, rounds, 'without a presence window: a SUBSCRIBE per message')
  t.equal(noLinger.unsubscribe, rounds, 'and an UNSUBSCRIBE per message')
})

function subtract (from: Counts, minus: Counts): Counts {
  const out: Counts = {}
  for (const [name, n] of Object.entries(from)) {
    const left = n - (minus[name] ?? 0)
    if (left !== 0) out[name] = left
  }
  return out
}
