// LongPollClient over many channels on a real Redis with two instances: polls on one, pushes and disconnects on
// the other, and a client resuming on the other instance from its cursors — every message once, in order.
import t from 'tap'
import { LongPollClient, type LongPollMessage } from '../lib/client/index.js'
import { heldPolls, until } from './helpers/app.js'
import { redisApp, runPrefix, startRedis } from './helpers/redis.js'

const server = await startRedis(t)

const on = <T>(seen: Array<LongPollMessage<T>>, channel: string): T[] => seen.filter((m) => m.channel === channel).map((m) => m.data)

t.test('pushed on one instance, polled on the other, then resumed on the other from the cursors', async (t) => {
  const prefix = runPrefix()
  const one = await redisApp(t, server, prefix)
  const two = await redisApp(t, server, prefix)
  const channels = ['r0', 'r1', 'r2', 'r3']
  const pushed = new Map(channels.map((c) => [c, [] as number[]]))
  const seen: Array<LongPollMessage<number>> = []
  const follow = (base: string, cursor?: Record<string, string>): { client: LongPollClient<number>, done: Promise<void> } => {
    const client = new LongPollClient<number>({ url: base, channels, timeout: 20_000, limit: 5, ...(cursor === undefined ? {} : { cursor }) })
    const done = (async () => { for await (const message of client) seen.push(message) })()
    return { client, done }
  }
  const pushSome = async (at: string, from: number, to: number): Promise<void> => {
    for (let i = from; i < to; i++) {
      const channel = channels[(i * 7) % 4] as string
      const response = await fetch(`${at}/push`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ channel, data: i }) })
      t.equal(response.status, 200)
      pushed.get(channel)?.push(i)
    }
  }

  const first = follow(one.base)
  await heldPolls(one.app, 1)
  await pushSome(two.base, 0, 100)
  await until(() => seen.length === 100, 15_000, 'the first 100 through instance one')
  first.client.stop()
  await first.done
  const cursors = first.client.cursors
  await pushSome(two.base, 100, 150) // while no client is connected

  const second = follow(two.base, cursors)
  await pushSome(one.base, 150, 200)
  await until(() => seen.length === 200, 15_000, 'all 200')
  for (const c of channels) t.same(on(seen, c), pushed.get(c), `${c}: every message once, in order, across instances`)

  // A disconnect through instance one ends that channel only for the client held on instance two.
  await heldPolls(two.app, 1)
  const response = await fetch(`${one.base}/disconnect?channel=r2`, { method: 'DELETE' })
  t.ok(response.ok)
  await until(() => !second.client.channels.includes('r2'), 15_000, 'r2 dropped')
  t.same(second.client.channels, ['r0', 'r1', 'r3'])
  await heldPolls(two.app, 1)
  await pushSome(one.base, 200, 204)
  await until(() => seen.length === 203, 15_000, 'three more on the other channels')
  t.same(on(seen, 'r2'), pushed.get('r2')?.filter((i) => i < 200), 'nothing of r2 after its disconnect')
  second.client.stop()
  await second.done
})
