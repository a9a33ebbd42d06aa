// The benchmark suite must not rot: run its quick smoke mode and check that it completed, that it wrote a result
// for every server × scenario, and that no run lost, duplicated or reordered a message. Never asserts a speed.
import t from 'tap'
import { execFile } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')

interface Row {
  server: string
  scenario: string
  skipped?: string
  lost?: number
  violations?: number
  delivered?: number
}

interface Results {
  quick: boolean
  servers: Array<{ id: string, skipped: string | null }>
  scenarios: string[]
  rows: Row[]
  targets: unknown[]
}

t.test('npm run bench -- --quick completes and writes every server × scenario row, with nothing lost', async (t) => {
  const out = mkdtempSync(path.join(tmpdir(), 'longpoll-bench-'))
  t.teardown(() => rmSync(out, { recursive: true, force: true }))

  // The bench's processes must not run under the test runner's loaders and coverage hooks.
  const env = { ...process.env }
  delete env.NODE_OPTIONS
  delete env.NODE_V8_COVERAGE
  const { code, stderr } = await new Promise<{ code: number | null, stderr: string }>((resolve) => {
    execFile(process.execPath, ['bench/run.js', '--quick', '--out', out], { cwd: root, env, timeout: 280_000, maxBuffer: 16 * 1024 * 1024 }, (err, _stdout, stderr) => {
      resolve({ code: err === null ? 0 : (typeof err.code === 'number' ? err.code : null), stderr })
    })
  })
  t.equal(code, 0, 'bench/run.js --quick exits with 0', { stderr: stderr.slice(-4000) })

  const files = readdirSync(out)
  const json = files.find((f) => f.endsWith('.json'))
  t.ok(json, 'wrote a JSON result')
  t.ok(files.some((f) => f.endsWith('.md')), 'wrote a Markdown table')
  t.ok(files.some((f) => f.endsWith('.svg')), 'wrote an SVG chart')
  if (json === undefined) return
  const results = JSON.parse(readFileSync(path.join(out, json), 'utf8')) as Results
  t.equal(results.quick, true)

  const expectedServers = ['node-http', 'fastify-map', 'memory', 'redis-1', 'redis-2'] // memory-metrics: full runs only
  t.same(results.servers.map((s) => s.id), expectedServers, 'every server under test is listed')
  t.same(results.scenarios.map((s) => s.replace(/^held-\d+$/, 'held')), ['held', 'held', 'fanout', 'pingpong', 'throughput-poll', 'throughput-push', 'multiplex-10ch', 'multiplex-1ch', 'pushmany'], 'every scenario ran')
  for (const server of expectedServers) {
    for (const scenario of results.scenarios) {
      const row = results.rows.find((r) => r.server === server && r.scenario === scenario)
      t.ok(row, `${server} × ${scenario} has a row`)
      if (row === undefined) continue
      if (row.skipped !== undefined) {
        // Only the baselines skip, and only the scenarios their one-channel protocol cannot run (npm test
        // guarantees redis-server, so the Redis rows must run).
        t.ok(['node-http', 'fastify-map'].includes(server) && (scenario.startsWith('multiplex-') || scenario === 'pushmany'), `${server} × ${scenario} is not skipped (${row.skipped})`)
        t.match(row.skipped, /not applicable/)
        continue
      }
      t.equal(row.lost, 0, `${server} × ${scenario}: nothing lost`)
      t.equal(row.violations, 0, `${server} × ${scenario}: no order, loss or duplicate violation, no error`)
      if (!scenario.startsWith('throughput-')) t.ok((row.delivered ?? 0) > 0, `${server} × ${scenario}: delivered messages`)
    }
  }
  t.ok(Array.isArray(results.targets), 'targets are evaluated')
})
