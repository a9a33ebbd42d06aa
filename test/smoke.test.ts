import t from 'tap'
import { heldPolls, poll, push, serve } from './helpers/app.js'

t.test('a held poll is woken by a push', async (t) => {
  const { app, base } = await serve(t)
  const held = poll(base, { channel: 'a', cursor: 'latest', timeout: 10_000 })
  await heldPolls(app, 1)
  const pushed = await push(base, 'a', { hello: 'world' })
  t.equal(pushed.status, 200)
  const answer = await held
  t.equal(answer.body.status, 'ok')
  t.same(answer.body.messages.map((m: any) => m.data), [{ hello: 'world' }])
  t.equal(answer.body.messages[0].id, pushed.body.id)
})
