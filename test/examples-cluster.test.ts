// examples/cluster: three processes of one server on one Redis (started here, on a free port). A message
// pushed through instance a reaches the followers held on b and c, once each, in order.
import t from 'tap'
import { existsSync } from 'node:fs'
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
