// After app.close(), nothing the plugin made keeps the process alive: a real process exits by itself.
import t from 'tap'
import { fork } from 'node:child_process'
import { once } from 'node:events'
import { resolve } from 'node:path'

t.test('a process holding polls exits by itself once its app is closed', async (t) => {
  // The fixture imports the built package by name, as a user would (`npm test` builds first).
  const child = fork(resolve(import.meta.dirname, 'fixtures', 'exit-after-close.mjs'), { stdio: 'pipe' })
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  const [{ port }] = await once(child, 'message') as [{ port: number }]
  const base = `http://127.0.0.1:${port}/lp`
  const held = Array.from({ length: 50 }, (_, i) => fetch(`${base}/poll?channel=c${i % 5}&timeout=60000`).then(async (r) => ({ status: r.status, retryAfter: r.headers.get('retry-after') })))
  for (let held = 0; held < 50;) { // ask the child until it holds all 50
    child.send('stats')
    const [reply] = await once(child, 'message') as [{ stats: { heldPolls: number } }]
    held = reply.stats.heldPolls
  }
  child.send('close')
  const answers = await Promise.all(held)
  t.ok(answers.every((a) => a.status === 503 && a.retryAfter === '1'), 'every held poll answered 503 with Retry-After')
  const started = Date.now()
  const [code] = await Promise.race([
    once(child, 'exit'),
    new Promise((_resolve, reject) => setTimeout(() => reject(new Error('the process did not exit within 10 s of close')), 10_000).unref())
  ]) as [number]
  t.equal(code, 0)
  t.ok(Date.now() - started < 10_000)
})
