// LongPollWorker on RedisQueueStore and RedisNotifier (a real redis-server): competing workers on two instances,
// jobs longer than their lease, a failing job retried; and workers riding out a Redis restart.
import t from 'tap'
import type { Test } from 'tap'
import { LongPollClientError, LongPollWorker, type LongPollJob } from '../lib/client/index.js'
import { RedisNotifier, RedisQueueStore, RedisStore } from '../lib/index.js'
import { serve, until, type Served } from './helpers/app.js'
import { deleteByPrefix, runPrefix, startRedis, type RedisServer } from './helpers/redis.js'
import { recorder } from './helpers/worker.js'

async function instance (t: Test, server: RedisServer, prefix: string): Promise<Served> {
  const redis = server.client(t)
  return await serve(t, {
    store: new RedisStore({ redis, prefix }),
    notifier: new RedisNotifier({ redis, prefix }),
    queueStore: new RedisQueueStore({ redis, prefix, commandTimeout: 2_000 }),
    retryAfter: 1
  })
}

t.test('three workers over two instances: every job handled once, long ones kept by extending, a failure retried', async (t) => {
  const server = await startRedis(t)
  const prefix = runPrefix()
  const cleaner = server.client(t)
  t.teardown(() => deleteByPrefix(cleaner, prefix))
  const a = await instance(t, server, prefix)
  const b = await instance(t, server, prefix)
  const queue = 'renders'
  const total = 120
  const handled = new Map<number, number[]>() // job number → attempts that ran it
  let failedOnce = false
  const requests = recorder()
  const handler = async (job: LongPollJob<{ n: number }>): Promise<void> => {
    const { n } = job.data
    handled.set(n, [...(handled.get(n) ?? []), job.attempt])
    // Every 20th job runs longer than the 1.5 s lease: only its extends keep it from a competing worker. (The
    // lease leaves 750 ms for each extend to be answered: room for a loaded test machine.)
    if (n % 20 === 0) await new Promise((resolve) => setTimeout(resolve, 2000))
    if (n === 7 && !failedOnce) {
      failedOnce = true
      throw new Error('transient failure')
    }
  }
  const workers = [a.base, a.base, b.base].map((base) => new LongPollWorker({ url: base, queue, concurrency: 4, lease: 1500, fetch: requests.fetch, handler }))
  t.teardown(() => Promise.all(workers.map((worker) => worker.stop())))
  for (const worker of workers) void worker.start()
  for (let n = 0; n < total; n++) await (n % 2 === 0 ? a : b).app.longpoll.queue(queue).enqueue({ n })
  await requests.waitForAcked(total, 30_000)
  await Promise.all(workers.map((worker) => worker.stop()))

  t.equal(handled.size, total, 'every job handled')
  const twice = [...handled].filter(([n, attempts]) => n !== 7 && attempts.length !== 1)
  t.same(twice, [], 'no job handled twice: the long ones kept their leases')
  t.same(handled.get(7), [1, 2], 'the failed job ran again, as attempt 2')
  t.equal(requests.answered('nack').length, 1)
  t.match(requests.answered('nack')[0]?.body, { error: 'transient failure' })
  t.ok(requests.answered('extend').length >= 12, `the long jobs were extended (${requests.answered('extend').length} extends)`)
  t.ok([...requests.answered('ack'), ...requests.answered('extend')].every((s) => s.status === 200), 'no ack or extend refused')
  t.equal(requests.acked(), total, 'every job acked once')
  t.same(await a.app.longpoll.queue(queue).stats(), { waiting: 0, delayed: 0, leased: 0, dead: 0 }, 'the queue is empty')
})

t.test('workers ride out a Redis restart: claims refused meanwhile, backed off, then jobs enqueued after it are handled', async (t) => {
  const server = await startRedis(t)
  const prefix = runPrefix()
  const cleaner = server.client(t)
  t.teardown(() => deleteByPrefix(cleaner, prefix))
  const a = await instance(t, server, prefix)
  const queue = 'restart'
  const seen: string[] = []
  const errors: unknown[] = []
  const requests = recorder()
  const worker = new LongPollWorker<string>({
    url: a.base,
    queue,
    fetch: requests.fetch,
    minDelay: 50,
    timeout: 1000, // claims come back every second, so some are refused while Redis is away
    handler: (job) => { seen.push(job.data) },
    onError: (error) => { errors.push(error) }
  })
  t.teardown(() => worker.stop())
  void worker.start()
  await a.app.longpoll.queue(queue).enqueue('before')
  await requests.waitFor('ack', 1) // the job enqueued before the restart is done and gone
  t.same(seen, ['before'])
  await server.kill()
  await until(() => errors.length >= 1, 20_000, 'a failed claim reported')
  await server.start()
  // The instance's client reconnects by itself; enqueue once it is back (before that, enqueue fails).
  const deadline = Date.now() + 20_000
  for (;;) {
    try {
      await a.app.longpoll.queue(queue).enqueue('after')
      break
    } catch (err) {
      if (Date.now() > deadline) throw err
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  }
  await until(() => seen.length === 2, 30_000, 'the job enqueued after the restart')
  t.same(seen, ['before', 'after'])
  t.ok(errors.length >= 1, `the outage was reported (${errors.length} errors), not fatal`)
  t.ok(errors.every((e) => e instanceof LongPollClientError && e.status === 503), 'as 503s (the store unreachable), retried')
  t.notOk(worker.stopped, 'the worker is still running')
})
