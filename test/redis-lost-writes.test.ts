// Guarantee 6 against real Redis processes that lose acknowledged writes: a Redis restarted from an older
// snapshot, and a replica promoted before it had the newest writes. The client whose cursor is past what
// survived gets gap: true and then every new message, none with an id it saw; the client whose cursor is within
// what survived gets the rest of the survivors and the new messages, no gap; no answer is a 400.
import t, { type Test } from 'tap'
import net from 'node:net'
import { heldPolls, poll, push } from './helpers/app.js'
import { freePort, pushWhenBack, redisApp, RedisServer, runPrefix, startRedis, type RedisApp } from './helpers/redis.js'

/** Polls a channel that never gets a message until the instance's store answers again (503 until then). */
async function untilServing (t: Test, app: RedisApp): Promise<void> {
  const deadline = Date.now() + 30_000
  for (;;) {
    const res = await poll(app.base, { channel: 'lost.probe', timeout: 0 })
    if (res.status === 200) return
    t.equal(res.status, 503, 'while the store is not back, a poll answers 503')
    if (Date.now() > deadline) throw new Error('the store did not come back')
    await new Promise((resolve) => setTimeout(resolve, 50)) // retry pacing, as a client would back off
  }
}

/**
 * A TCP forwarder standing where a load balancer or a virtual IP stands in front of Redis: the instances
 * connect to it, and a failover points it at the promoted replica (dropping the connections to the old master).
 */
async function forwarder (t: Test, target: number): Promise<{ port: number, point: (port: number) => void }> {
  let to = target
  const sockets = new Set<net.Socket>()
  const server = net.createServer((client) => {
    const upstream = net.connect(to, '127.0.0.1')
    for (const socket of [client, upstream]) {
      sockets.add(socket)
      socket.on('close', () => sockets.delete(socket))
      socket.on('error', () => { client.destroy(); upstream.destroy() })
    }
    client.pipe(upstream).pipe(client)
  })
  const port = await freePort()
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve))
  t.teardown(async () => {
    for (const socket of sockets) socket.destroy()
    await new Promise((resolve) => server.close(resolve))
  })
  return {
    port,
    point (port: number) {
      to = port
      for (const socket of sockets) socket.destroy()
    }
  }
}

interface Deployment {
  /** The two instances of the app, A and B. */
  a: RedisApp
  b: RedisApp
  /** Called after message 50 is stored everywhere it will survive, before 51–60 are pushed. */
  freeze: () => Promise<void>
  /** Loses what was written after freeze() and brings a Redis back that the instances reach. */
  lose: () => Promise<void>
}

async function lostWrites (t: Test, deploy: (t: Test) => Promise<Deployment>): Promise<void> {
  const { a, b, freeze, lose } = await deploy(t)
  const channel = 'lost.writes'
  const ids: string[] = []
  for (let i = 1; i <= 50; i++) ids.push((await push(a.base, channel, i)).body.id)
  await freeze()
  for (let i = 51; i <= 60; i++) ids.push((await push(i % 2 === 0 ? a.base : b.base, channel, i)).body.id)
  const epoch = (ids[59] as string).split('.')[0] as string

  // A made-up cursor before the loss is answered for its sender alone: a position past the newest is a 400,
  // another life's a gap; neither forks the channel, so every other client's ids stay what they were.
  t.equal((await poll(b.base, { channel, cursor: `${epoch}.999`, timeout: 0 })).status, 400, 'a made-up cursor past the newest message, with nothing lost, is a 400')
  const other = await poll(b.base, { channel, cursor: 'madeup.5', timeout: 0, limit: 1 })
  t.same({ gap: other.body.gap, first: other.body.messages[0]?.data }, { gap: true, first: 1 }, 'a made-up epoch reads from the oldest, with a gap')
  const unchanged = await poll(a.base, { channel, cursor: ids[58] as string, timeout: 0 })
  t.same(unchanged.body.messages.map((m: any) => m.id), [ids[59]], 'the other clients\' ids are untouched')

  await lose()
  await untilServing(t, a)
  await untilServing(t, b)

  const seen = new Set(ids)
  const ahead = poll(a.base, { channel, cursor: ids[59] as string, timeout: 30_000 }) // at 60: 51–60 are gone
  const within = poll(b.base, { channel, cursor: ids[29] as string, timeout: 30_000 }) // at 30: 31–50 survived
  const fresh: string[] = []
  for (let i = 1; i <= 3; i++) fresh.push(await pushWhenBack(t, i % 2 === 0 ? a : b, channel, `new ${i}`))
  t.ok(fresh.every((id) => !seen.has(id)), `no id handed out after the loss equals one handed out before it (${fresh.join(' ')})`)

  const first = await ahead
  t.equal(first.status, 200, 'the client ahead of what survived: never a 400')
  t.equal(first.body.gap, true, 'it is told it missed messages')
  const got = first.body.messages.map((m: any) => m.data)
  let cursor = first.body.cursor
  for (let i = 0; got.length < 3 && i < 10; i++) {
    const next = await poll(a.base, { channel, cursor, timeout: 10_000 })
    t.notOk(next.body.gap, 'one gap, then none')
    got.push(...next.body.messages.map((m: any) => m.data))
    cursor = next.body.cursor
  }
  t.same(got, ['new 1', 'new 2', 'new 3'], 'and then every new message, in order, once')
  t.ok(first.body.messages.every((m: any) => !seen.has(m.id)), 'none with an id it saw')

  const rest = await within
  t.equal(rest.status, 200)
  t.notOk(rest.body.gap, 'the client within what survived: no gap')
  const survivors = rest.body.messages.map((m: any) => m.data)
  const survivorIds = rest.body.messages.map((m: any) => m.id)
  cursor = rest.body.cursor
  for (let i = 0; survivors.length < 23 && i < 10; i++) {
    const next = await poll(b.base, { channel, cursor, timeout: 10_000, limit: 100 })
    t.notOk(next.body.gap, 'no gap')
    survivors.push(...next.body.messages.map((m: any) => m.data))
    survivorIds.push(...next.body.messages.map((m: any) => m.id))
    cursor = next.body.cursor
  }
  t.same(survivorIds.slice(0, 20), ids.slice(30, 50), 'the messages that survived keep their ids')
  t.same(survivors, [...Array.from({ length: 20 }, (_, i) => 31 + i), 'new 1', 'new 2', 'new 3'], '31–50, then the new messages, in order, once')

  const beginner = await poll(b.base, { channel, timeout: 0, limit: 100 })
  t.same(beginner.body.messages.map((m: any) => m.data), [...Array.from({ length: 50 }, (_, i) => i + 1), 'new 1', 'new 2', 'new 3'], 'a new client reads what survived and what came after')
  t.same(beginner.body.messages.map((m: any) => m.id), [...ids.slice(0, 50), ...fresh], 'under the ids they were given')
}

t.test('a Redis restarted from an older snapshot', async (t) => {
  await lostWrites(t, async (t) => {
    const server = await startRedis(t)
    const prefix = runPrefix()
    const admin = server.client(t)
    return {
      a: await redisApp(t, server, prefix),
      b: await redisApp(t, server, prefix),
      freeze: async () => { await admin.save() }, // dump.rdb in the server's dir: messages 1–50
      lose: async () => {
        await server.kill() // SIGKILL: no save on the way down, so 51–60 exist nowhere
        await server.start() // loads dump.rdb
      }
    }
  })
})

t.test('a replica promoted before it had the newest writes', async (t) => {
  await lostWrites(t, async (t) => {
    const master = await startRedis(t)
    const replica = new RedisServer(await freePort(), ['--replicaof', '127.0.0.1', String(master.port)])
    t.teardown(() => replica.stop())
    await replica.start()
    const front = await forwarder(t, master.port)
    const prefix = runPrefix()
    const viaFront = new RedisServer(front.port) // only its client(): the instances connect through the forwarder
    t.teardown(() => viaFront.stop())
    const masterAdmin = master.client(t)
    const replicaAdmin = replica.client(t)
    return {
      a: await redisApp(t, viaFront, prefix),
      b: await redisApp(t, viaFront, prefix),
      freeze: async () => {
        t.equal(await masterAdmin.wait(1, 10_000), 1, 'the replica has messages 1–50')
        // The replication link cut (the replica now follows a port nobody listens on): it keeps 1–50, lags from here.
        await replicaAdmin.replicaof('127.0.0.1', String(await freePort()))
      },
      lose: async () => {
        await master.kill()
        await replicaAdmin.replicaof('NO', 'ONE')
        front.point(replica.port)
      }
    }
  })
})

t.test('a held poll ahead of what survived is answered by the first new message, with the gap', async (t) => {
  const server = await startRedis(t)
  const prefix = runPrefix()
  const admin = server.client(t)
  const a = await redisApp(t, server, prefix)
  const b = await redisApp(t, server, prefix)
  const channel = 'lost.held'
  await push(a.base, channel, 1)
  await admin.save()
  const lost = (await push(a.base, channel, 2)).body.id
  const held = poll(b.base, { channel, cursor: lost, timeout: 30_000 })
  await heldPolls(b.app, 1)
  await server.kill()
  await server.start()
  const id = await pushWhenBack(t, a, channel, 'after')
  const answer = await held
  t.same({ status: answer.status, gap: answer.body.gap, data: answer.body.messages.map((m: any) => m.data) }, { status: 200, gap: true, data: ['after'] })
  t.not(id, lost, 'the new message has an id of its own')
})
