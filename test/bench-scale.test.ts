// The scale bench must not rot: a small run (`npm run bench -- --scale 2000`: two processes of examples/cluster on
// one redis-server, two client processes on 127.0.0.2 and 127.0.0.3) completes, holds every poll, delivers every
// push once and in order, and reaches every poll with the fan-out. Never asserts a speed.
import t from 'tap'
import { execFile } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const N = 2000

interface Scale {
  violations: number
  method: { servers: number, clients: number }
  hold: { n: number, held: number, perServer: Array<{ held: number }>, redisPubsubChannels: number }
  push: { acked: number, delivered: number, lost: number, duplicates: number, outOfOrder: number }
  fanout: { held: number, delivered: number, lost: number, duplicates: number }
}

t.test(`npm run bench -- --scale ${N} holds, delivers and fans out to every poll`, async (t) => {
  const out = mkdtempSync(path.join(tmpdir(), 'longpoll-scale-'))
  t.teardown(() => rmSync(out, { recursive: true, force: true }))
  // The bench's processes must not run under the test runner's loaders and coverage hooks.
  const env = { ...process.env }
  delete env.NODE_OPTIONS
  delete env.NODE_V8_COVERAGE
  const { code, stderr } = await new Promise<{ code: number | null, stderr: string }>((resolve) => {
    execFile(process.execPath, ['bench/run.js', '--scale', String(N), '--out', out], { cwd: root, env, timeout: 280_000, maxBuffer: 16 * 1024 * 1024 }, (err, _stdout, stderr) => {
      resolve({ code: err === null ? 0 : (typeof err.code === 'number' ? err.code : null), stderr })
    })
  })
  t.equal(code, 0, 'the scale bench exits with 0', { stderr: stderr.slice(-4000) })
  const json = readdirSync(out).find((f) => /^scale-.*\.json$/.test(f))
  t.ok(json, 'wrote scale-<date>.json')
  t.ok(readdirSync(out).some((f) => /^scale-.*\.md$/.test(f)), 'wrote scale-<date>.md')
  if (json === undefined) return
  const r = JSON.parse(readFileSync(path.join(out, json), 'utf8')) as Scale
  t.equal(r.method.servers, 2, 'two server processes')
  t.equal(r.method.clients, 2, 'two client processes')
  t.equal(r.hold.held, N, 'every poll held')
  t.same(r.hold.perServer.map((p) => p.held), [N / 2, N / 2], 'each server process holds its share')
  t.ok(r.hold.redisPubsubChannels >= N, 'one pub/sub channel per held channel at least')
  t.equal(r.push.acked, N, 'one push per channel, each acknowledged')
  t.equal(r.push.delivered, N, 'each delivered')
  t.same([r.push.lost, r.push.duplicates, r.push.outOfOrder], [0, 0, 0], 'none lost, duplicated or out of order')
  t.equal(r.fanout.held, N, 'every poll re-polled the shared channel')
  t.equal(r.fanout.delivered, N, 'the fan-out reached every poll')
  t.same([r.fanout.lost, r.fanout.duplicates], [0, 0], 'none lost or duplicated in the fan-out')
  t.equal(r.violations, 0)
})
