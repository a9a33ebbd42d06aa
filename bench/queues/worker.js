// The workers under test, forked by bench/queues/run.js into a process of their own (so their CPU is their own).
// Every handler tells the parent the moment it starts a job: `{ type: 'started', n, at }`, `at` in the
// machine's clock (performance.timeOrigin + performance.now(), sub-millisecond, shared by the processes).
//
//   kind longpoll  — LongPollWorker (fastify-longpoll/client) against the plugin's queue routes
//   kind shortpoll — GET /next_job in a loop, sleeping `sleepMs` after an empty answer
//   kind bullmq    — a BullMQ Worker on the same Redis
import process from 'node:process'
import { performance } from 'node:perf_hooks'

if (typeof process.send !== 'function') {
  console.error('bench/queues/worker.js is forked by bench/queues/run.js (it needs an IPC channel)')
  process.exit(2)
}
process.on('disconnect', () => process.exit(0))

const now = () => performance.timeOrigin + performance.now()
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
const started = (n) => process.send({ type: 'started', n, at: now() })

let stopAll = async () => {}
let errors = 0

async function startLongPoll ({ base, queue, workers, concurrency }) {
  const { LongPollWorker } = await import('fastify-longpoll/client')
  const list = Array.from({ length: workers }, () => new LongPollWorker({
    url: base,
    queue,
    concurrency,
    minDelay: 50,
    handler: (job) => { started(job.data.n) },
    onError: () => { errors++ }
  }))
  for (const worker of list) worker.start().catch(() => { errors++ })
  stopAll = () => Promise.all(list.map((worker) => worker.stop()))
}

async function startShortPoll ({ base, workers, sleepMs }) {
  const state = { running: true } // stopAll() turns it off
  const loop = async () => {
    while (state.running) {
      try {
        const response = await fetch(`${base}/next_job`)
        if (response.status === 200) {
          const job = await response.json()
          started(job.data.n)
          continue // a job: ask again at once
        }
        await response.arrayBuffer()
      } catch {
        errors++
      }
      if (state.running) await sleep(sleepMs)
    }
  }
  const loops = Array.from({ length: workers }, loop)
  stopAll = async () => {
    state.running = false
    await Promise.all(loops)
  }
}

async function startBullMQ ({ queue, workers, concurrency, redisUrl }) {
  const { Worker } = await import('bullmq')
  const { port, hostname } = new URL(redisUrl)
  const list = Array.from({ length: workers }, () => new Worker(queue, async (job) => { started(job.data.n) }, {
    connection: { host: hostname, port: Number(port), maxRetriesPerRequest: null },
    concurrency,
    removeOnComplete: true, // done jobs are gone, as after an ack
    removeOnFail: { count: 1000 }
  }))
  for (const worker of list) worker.on('error', () => { errors++ })
  await Promise.all(list.map((worker) => worker.waitUntilReady()))
  stopAll = () => Promise.all(list.map((worker) => worker.close()))
}

process.on('message', async (msg) => {
  try {
    if (msg?.cmd === 'start') {
      const start = { longpoll: startLongPoll, shortpoll: startShortPoll, bullmq: startBullMQ }[msg.kind]
      if (start === undefined) throw new Error(`unknown worker kind ${msg.kind}`)
      await start(msg)
      process.send({ id: msg.id, result: { ok: true } })
    } else if (msg?.cmd === 'stats') {
      process.send({ id: msg.id, result: { cpu: process.cpuUsage(), errors } })
    } else if (msg?.cmd === 'stop') {
      await stopAll()
      process.send({ id: msg.id, result: { errors } })
      process.exit(0)
    }
  } catch (err) {
    process.send({ id: msg?.id, type: 'failed', message: err.stack ?? String(err) })
  }
})
process.send({ type: 'ready' })
