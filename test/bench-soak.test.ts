// The soak must not rot: a 12-second soak (`--soak 0.2`) on both stores completes, stops every process it
// started, and its delivery check finds every poll end exercised and nothing lost, duplicated or reordered.
// Too short for slopes: it never asserts flatness or a speed (the 10-minute figures are in bench/results/).
import t from 'tap'
import { execFile } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')

interface Store {
  store: string
  restarts: unknown[]
  delivery: { expected: number, received: number, lost: number, duplicates: number, outOfOrder: number, phantoms: number, unexpectedGaps: number, badCursor: number, lostWakeups: number, drained: boolean }
  counts: { answered: { ok: number, timeout: number, disconnected: number }, aborted: number, disconnects: number, pushAcked: number }
  samples: Array<{ servers: Array<{ heapUsed: number, resources: Record<string, number> } | null> }>
}

interface Results {
  kind: string
  violations: number
  stores: Store[]
  redis?: { samples: Array<{ dbsize: number }> }
}

t.test('npm run bench -- --soak 0.2 churns polls through every end on memory and Redis and loses nothing', async (t) => {
  const out = mkdtempSync(path.join(tmpdir(), 'longpoll-soak-'))
  t.teardown(() => rmSync(out, { recursive: true, force: true }))

  // The soak's processes must not run under the test runner's loaders and coverage hooks.
  const env = { ...process.env }
  delete env.NODE_OPTIONS
  delete env.NODE_V8_COVERAGE
  const { code, stderr } = await new Promise<{ code: number | null, stderr: string }>((resolve) => {
    execFile(process.execPath, ['bench/run.js', '--soak', '0.2', '--out', out], { cwd: root, env, timeout: 280_000, maxBuffer: 16 * 1024 * 1024 }, (err, _stdout, stderr) => {
      resolve({ code: err === null ? 0 : (typeof err.code === 'number' ? err.code : null), stderr })
    })
  })
  t.equal(code, 0, 'the soak exits with 0', { stderr: stderr.slice(-4000) })
  t.match(stderr, /every process stopped/, 'it stopped its servers, clients and redis-server')

  const files = readdirSync(out)
  const json = files.find((f) => /^soak-.*\.json$/.test(f))
  t.ok(json, 'wrote soak-<date>.json')
  t.ok(files.some((f) => /^soak-.*\.md$/.test(f)), 'wrote soak-<date>.md')
  if (json === undefined) return
  const results = JSON.parse(readFileSync(path.join(out, json), 'utf8')) as Results
  t.equal(results.kind, 'soak')
  t.same(results.stores.map((s) => s.store), ['memory', 'redis'], 'both stores soaked')
  t.equal(results.violations, 0, 'no delivery violation')
  for (const s of results.stores) {
    const d = s.delivery
    t.ok(d.expected > 0 && d.received > 0, `${s.store}: messages were pushed and received`)
    t.same({ lost: d.lost, duplicates: d.duplicates, outOfOrder: d.outOfOrder, phantoms: d.phantoms, unexpectedGaps: d.unexpectedGaps, badCursor: d.badCursor, lostWakeups: d.lostWakeups, drained: d.drained },
      { lost: 0, duplicates: 0, outOfOrder: 0, phantoms: 0, unexpectedGaps: 0, badCursor: 0, lostWakeups: 0, drained: true }, `${s.store}: nothing lost, duplicated, reordered or made up`)
    const c = s.counts
    t.ok(c.answered.ok > 0, `${s.store}: polls ended with messages`)
    t.ok(c.answered.timeout > 0, `${s.store}: polls ended in timeout`)
    t.ok(c.aborted > 0, `${s.store}: polls were aborted by the client`)
    t.ok(c.disconnects > 0 && c.answered.disconnected > 0, `${s.store}: channels were disconnected under held polls`)
    t.ok(s.restarts.filter((r) => (r as { failed?: string }).failed === undefined).length >= 1, `${s.store}: an instance was closed and replaced`)
    // A sample takes seconds on a loaded machine: a 12 s run may get one or two.
    const first = s.samples[0]?.servers[0]
    t.ok(first !== null && first !== undefined && first.heapUsed > 0 && (first.resources.TCPServerWrap ?? 0) >= 1, `${s.store}: the long-lived instance was sampled`)
  }
  t.ok((results.redis?.samples[0]?.dbsize ?? 0) > 0, 'redis-server keys were sampled')
})
