// Follows one job two ways at once and counts the HTTP requests each makes:
//   long poll  — LongPollClient on the job's channel: one request per progress report
//   short poll — GET /jobs/:id every 2 s: one request per interval, whatever happened
//
//   node examples/job-status/compare.js                      # starts its own server, a 60 s job
//   node examples/job-status/compare.js --duration 10 --steps 4 --interval 0.5
//   node examples/job-status/compare.js --url http://127.0.0.1:3000   # against a running server.js
import { parseArgs } from 'node:util'
import { fileURLToPath } from 'node:url'
import { LongPollClient } from 'fastify-longpoll/client'
import { build } from './server.js'

/**
 * Submits one job and follows it both ways until it is done. Resolves to
 * `{ job, longPoll, shortPoll }`, each side `{ requests, updates, versions, meanDelayMs, maxDelayMs }`.
 */
export async function compare ({ url, durationMs = 60_000, steps = 10, intervalMs = 2_000, log = () => {} } = {}) {
  let app
  if (url === undefined) {
    app = await build({ logger: false })
    url = await app.listen({ port: 0, host: '127.0.0.1' })
  }
  try {
    const response = await fetch(`${url}/jobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ durationMs, steps })
    })
    if (response.status !== 202) throw new Error(`POST /jobs answered ${response.status}: ${await response.text()}`)
    const job = await response.json()
    log(`job ${job.id}: ${durationMs / 1000} s, ${steps} progress reports; long poll on ${job.channel}, short poll ${job.status} every ${intervalMs / 1000} s`)
    const started = Date.now()
    const [longPoll, shortPoll] = await Promise.all([
      followWithLongPoll(url, job, (line) => log(`${seconds(started)}  long poll   ${line}`)),
      followWithShortPoll(url, job, intervalMs, (line) => log(`${seconds(started)}  short poll  ${line}`))
    ])
    return { job, longPoll, shortPoll }
  } finally {
    await app?.close()
  }
}

async function followWithLongPoll (url, job, log) {
  const side = tally()
  // The client's `fetch` option lets us count every request it makes, retries included.
  const countingFetch = (...args) => {
    side.requests++
    return fetch(...args)
  }
  const client = new LongPollClient({ url: `${url}/lp`, channel: job.channel, fetch: countingFetch })
  for await (const { data } of client) {
    side.saw(data, log)
    if (data.state === 'done') break // ends the iteration: no further poll
  }
  return side.result()
}

async function followWithShortPoll (url, job, intervalMs, log) {
  const side = tally()
  for (;;) {
    side.requests++
    const snapshot = await (await fetch(`${url}${job.status}`)).json()
    if (snapshot.version !== side.lastVersion) side.saw(snapshot, log)
    if (snapshot.state === 'done') return side.result()
    await new Promise((resolve) => setTimeout(resolve, intervalMs))
  }
}

/**
 * Requests made, and for each progress report seen: how long after it was reported (or, for the report
 * already there when following began, after following began).
 */
function tally () {
  const began = Date.now()
  const delays = []
  const versions = []
  return {
    requests: 0,
    lastVersion: undefined,
    saw (snapshot, log) {
      const delay = Date.now() - Math.max(snapshot.updatedAt, began)
      delays.push(delay)
      versions.push(snapshot.version)
      this.lastVersion = snapshot.version
      log(`${snapshot.state.padEnd(7)} ${String(snapshot.progress).padStart(3)}%  (${delay} ms after it was reported, request #${this.requests})`)
    },
    result () {
      return {
        requests: this.requests,
        updates: versions.length,
        versions,
        meanDelayMs: Math.round(delays.reduce((a, b) => a + b, 0) / delays.length),
        maxDelayMs: Math.max(...delays)
      }
    }
  }
}

function seconds (since) {
  return `${((Date.now() - since) / 1000).toFixed(1).padStart(6)} s`
}

export function table ({ longPoll, shortPoll }, { steps, intervalMs }) {
  const total = steps + 1 // "queued", then one report per step
  const row = (name, side) =>
    `| ${name.padEnd(22)} | ${String(side.requests).padStart(8)} | ${`${side.updates} of ${total}`.padStart(12)} | ${`${side.meanDelayMs} ms`.padStart(10)} | ${`${side.maxDelayMs} ms`.padStart(10)} |`
  return [
    '| approach               | requests | updates seen | mean delay |  max delay |',
    '|------------------------|---------:|-------------:|-----------:|-----------:|',
    row('long poll', longPoll),
    row(`short poll every ${intervalMs / 1000} s`, shortPoll)
  ].join('\n')
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { values } = parseArgs({
    options: {
      url: { type: 'string' },
      duration: { type: 'string', default: '60' },
      steps: { type: 'string', default: '10' },
      interval: { type: 'string', default: '2' }
    }
  })
  const settings = {
    url: values.url?.replace(/\/+$/, ''),
    durationMs: Math.round(Number(values.duration) * 1000),
    steps: Number(values.steps),
    intervalMs: Math.round(Number(values.interval) * 1000)
  }
  const result = await compare({ ...settings, log: (line) => console.log(line) })
  console.log(`\n${table(result, settings)}`)
  console.log(`\nlong polling made ${result.longPoll.requests} requests, short polling ${result.shortPoll.requests} (${(result.shortPoll.requests / result.longPoll.requests).toFixed(1)}x as many).`)
}
