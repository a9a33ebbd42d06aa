// Contract §1.4 on the memory store and notifier: many channels in one poll.
import t from 'tap'
import Fastify from 'fastify'
import swagger from '@fastify/swagger'
import longpoll, { MemoryStore } from '../lib/index.js'
import { serve, until } from './helpers/app.js'
import { manyChannelSuite, pollMany, ReadWatch, watchReads } from './helpers/many.js'
import { gatedStore } from './helpers/stores.js'

manyChannelSuite(t, async (t, options = {}) => {
  const reads = new ReadWatch()
  const served = await serve(t, { store: watchReads(new MemoryStore(), reads), ...options })
  return { pollAt: served, pushAt: served, reads }
})

t.test('maxChannels bounds the channels of one poll', async (t) => {
  const { base } = await serve(t, { maxChannels: 3 })
  const query = (k: number): string => Array.from({ length: k }, (_, i) => `channel=c${i}`).join('&')
  t.equal((await fetch(`${base}/poll?${query(3)}&timeout=0`)).status, 200)
  const over = await fetch(`${base}/poll?${query(4)}&timeout=0`)
  t.equal(over.status, 400)
  t.equal((await over.json()).code, 'FST_ERR_VALIDATION')
})

t.test('maxChannels is validated at register', async (t) => {
  await t.rejects(serve(t, { maxChannels: 0 }), { code: 'FST_LONGPOLL_INVALID_OPTION', message: /maxChannels/ })
})

// Without readMany, these also take the hub's path for stores that lack it: one `read` per channel, together.
t.test('a push on any channel while the poll\'s reads are in flight makes it read again, not hold', async (t) => {
  const gated = gatedStore({ readMany: false })
  const { app, base } = await serve(t, { store: gated.store })
  const channels = ['dirty.a', 'dirty.b', 'dirty.c']
  const cursors: string[] = []
  for (const channel of channels) cursors.push((await app.longpoll.push(channel, 'old')).id)
  const held = pollMany(base, channels, { timeout: 30_000, cursor: cursors.join(',') })
  await until(() => gated.waiting() === 3, 10_000, 'the poll\'s three reads to be in flight')
  const { id } = await app.longpoll.push('dirty.c', 'new') // lands after the reads ran, before they answered
  gated.release()
  await until(() => gated.waiting() === 3, 10_000, 'the second round of reads')
  gated.release()
  const { body } = await held
  t.equal(body.status, 'ok', 'answered by the re-read, not at the timeout')
  t.same(body.messages.map((m: any) => [m.channel, m.id]), [['dirty.c', id]])
})

t.test('a disconnect before the first reads answered: answered once the cursor is concrete, with the other channels\' messages', async (t) => {
  const gated = gatedStore({ readMany: false })
  const { app, base } = await serve(t, { store: gated.store })
  await app.longpoll.push('early.a', 'a1')
  await app.longpoll.push('early.b', 'b1')
  const held = pollMany(base, ['early.a', 'early.b'], { timeout: 30_000 })
  await until(() => gated.waiting() === 2, 10_000, 'the poll\'s two reads to be in flight')
  await app.longpoll.disconnect('early.b')
  gated.release()
  const { body } = await held
  t.equal(body.status, 'disconnected')
  t.same(body.disconnected, ['early.b'])
  t.same(body.messages.map((m: any) => [m.channel, m.data]), [['early.a', 'a1']], 'a\'s message kept, b\'s dropped with its life')
  t.equal(body.cursor.split(',').length, 2)
  t.equal(app.longpoll.stats().heldPolls, 0)
})

t.test('the OpenAPI document describes the repeated channel parameter', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(swagger, { openapi: { info: { title: 't', version: '1' } } })
  await app.register(longpoll, { prefix: '/lp', maxChannels: 7 })
  await app.ready()
  const document = app.swagger() as any
  const parameter = document.paths['/lp/poll'].get.parameters.find((p: any) => p.name === 'channel')
  t.equal(parameter.in, 'query')
  t.equal(parameter.required, true)
  const array = parameter.schema.anyOf.find((s: any) => s.type === 'array')
  t.equal(array.maxItems, 7, 'up to maxChannels')
  t.equal(array.uniqueItems, true)
  t.ok(parameter.schema.anyOf.some((s: any) => s.type === 'string'), 'or one channel')
})
