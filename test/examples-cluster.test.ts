// examples/cluster: three processes of one server on one Redis (started here, on a free port). A message
// pushed through instance a reaches the followers held on b and c, once each, in order.
import t from 'tap'
import { fork } from 'node:child_process'
import { once } from 'node:events'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { runPrefix, startRedis } from './helpers/redis.js'

const root = new URL('../', import.meta.url)
if (!existsSync(new URL('dist/esm/index.js', root))) {
  throw new Error('dist/ is missing: the examples import the built package; run `npm run build` first')
}

interface Instance { name: string, address: string, stats: { pushed: number, delivered: number, answered: number } }
// A plain JavaScript example: a computed specifier keeps the type checker out of it.
const { run } = await import(new URL('examples/cluster/run.js', root).href) as {
  run: (options: { redisUrl: string, prefix: string, messages: number, everyMs: number, serverLog?: (name: string, line: string) => void }) =>
  Promise<{ sent: string[], received: Record<string, string[]>, instances: Instance[] }>
}

t.test('pushed through one instance, delivered by the others, once each and in order', async (t) => {
  const redis = await startRedis(t)
  const serverLines: string[] = []
  const { sent, received, instances } = await run({
    redisUrl: redis.url,
    prefix: runPrefix(),
    messages: 10,
    everyMs: 20,
    serverLog: (name, line) => serverLines.push(`[${name}] ${line}`)
  })
  t.equal(sent.length, 10)
  t.same(received, { b: sent, c: sent }, 'each follower got every message once, in push order')
  const byName = Object.fromEntries(instances.map((instance) => [instance.name, instance.stats]))
  t.match(byName, {
    a: { pushed: 10, delivered: 0 },
    b: { pushed: 0, delivered: 10 },
    c: { pushed: 0, delivered: 10 }
  })
  t.same(serverLines.filter((line) => /"level":(50|60)/.test(line)), [], 'no errors logged by the instances')
})

t.test('says what is missing when there is no Redis', async (t) => {
  await t.rejects(run({ redisUrl: 'redis://127.0.0.1:1', prefix: runPrefix(), messages: 1, everyMs: 0 }), /No Redis at redis:\/\/127\.0\.0\.1:1/)
})

t.test('cores.js: node:cluster workers share one port; a push through one worker reaches polls held by every worker', async (t) => {
  const redis = await startRedis(t)
  const env: NodeJS.ProcessEnv = { ...process.env, REDIS_URL: redis.url, LONGPOLL_PREFIX: runPrefix(), WORKERS: '2', PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'warn' }
  delete env.NODE_OPTIONS // the workers run the example as a user would, not under the test runner's loaders
  const primary = fork(fileURLToPath(new URL('examples/cluster/cores.js', root)), [], { env, execArgv: [], stdio: ['ignore', 'ignore', 'pipe', 'ipc'] })
  const exited = new Promise((resolve) => primary.once('exit', resolve))
  t.teardown(async () => {
    primary.kill('SIGTERM')
    await exited
  })
  const [{ address, workers }] = await once(primary, 'message') as [{ address: string, workers: number }]
  t.equal(workers, 2)

  // Fresh connections (no keep-alive): the primary hands them to the workers in turn.
  const get = async (path: string) => await (await fetch(`${address}${path}`, { headers: { connection: 'close' } })).json()
  const names = new Set<string>()
  for (let i = 0; i < 20 && names.size < 2; i++) names.add((await get('/instance') as { name: string }).name)
  t.same([...names].sort(), ['w0', 'w1'], 'both workers answer on the one port')

  // Four polls on fresh connections land on both workers; then one push.
  const channel = `cores-${Date.now()}`
  const polls = Array.from({ length: 4 }, async () => await get(`/lp/poll?channel=${channel}&timeout=30000`) as { messages: Array<{ data: unknown }> })
  const deadline = Date.now() + 20_000
  /** Each worker's held polls, read over the port (no event crosses the processes to wait on). */
  const held = async () => {
    const byWorker = new Map<string, number>()
    for (let i = 0; i < 20 && byWorker.size < 2; i++) {
      const { name, stats } = await get('/instance') as { name: string, stats: { heldPolls: number } }
      byWorker.set(name, stats.heldPolls)
    }
    return byWorker
  }
  let byWorker = await held()
  while ([...byWorker.values()].reduce((a, b) => a + b, 0) < 4 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50))
    byWorker = await held()
  }
  t.equal(byWorker.get('w0')! + byWorker.get('w1')!, 4, 'the four polls are held')
  t.ok(byWorker.get('w0')! > 0 && byWorker.get('w1')! > 0, `held by both workers (${JSON.stringify(Object.fromEntries(byWorker))})`)
  const pushed = await fetch(`${address}/lp/push`, { method: 'POST', headers: { 'content-type': 'application/json', connection: 'close' }, body: JSON.stringify({ channel, data: { text: 'to all cores' } }) })
  t.equal(pushed.status, 200)
  const answers = await Promise.all(polls)
  t.same(answers.map((a) => a.messages.map((m) => m.data)), Array(4).fill([{ text: 'to all cores' }]), 'every poll, on either worker, got the message once')
})
