// The work-queue bench must not rot: its quick smoke run (through `npm run bench -- --queues`) completes, writes a
// row for every system × workload, and no job was lost or started twice. Never asserts a speed.
import t from 'tap'
import { execFile } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')

interface Row { system: string, workload: string, workers: number, skipped?: string, submitted?: number, jobs?: number, lost?: number, duplicates?: number, capped?: string | null }

t.test('npm run bench -- --queues --quick completes with a row per system × workload, nothing lost or doubled', async (t) => {
  const out = mkdtempSync(path.join(tmpdir(), 'longpoll-queue-bench-'))
  t.teardown(() => rmSync(out, { recursive: true, force: true }))
  // The bench's processes must not run under the test runner's loaders and coverage hooks.
  const env = { ...process.env }
  delete env.NODE_OPTIONS
  delete env.NODE_V8_COVERAGE
  const { code, stderr } = await new Promise<{ code: number | null, stderr: string }>((resolve) => {
    execFile(process.execPath, ['bench/run.js', '--queues', '--quick', '--out', out], { cwd: root, env, timeout: 240_000, maxBuffer: 16 * 1024 * 1024 }, (err, _stdout, stderr) => {
      resolve({ code: err === null ? 0 : (typeof err.code === 'number' ? err.code : null), stderr })
    })
  })
  t.equal(code, 0, 'the queue bench exits with 0', { stderr: stderr.slice(-4000) })
  const files = readdirSync(out)
  const json = files.find((f) => f.startsWith('queues-') && f.endsWith('.json'))
  t.ok(json, 'wrote a JSON result')
  t.ok(files.some((f) => f.startsWith('queues-') && f.endsWith('.md')), 'wrote a Markdown table')
  if (json === undefined) return
  const results = JSON.parse(readFileSync(path.join(out, json), 'utf8')) as { quick: boolean, rows: Row[], targets: unknown[] }
  t.equal(results.quick, true)
  for (const system of ['shortpoll', 'longpoll-memory', 'longpoll-redis', 'bullmq']) {
    for (const [workload, workers] of [['sequential', 1], ['sequential', 5], ['concurrent', 1]] as const) {
      const row = results.rows.find((r) => r.system === system && r.workload === workload && r.workers === workers)
      t.ok(row, `${system} × ${workload} (${workers}) has a row`)
      if (row === undefined) continue
      // npm test guarantees redis-server (test/run.mjs), and BullMQ is a dev dependency: no row may be skipped.
      t.equal(row.skipped, undefined, `${system} × ${workload} (${workers}) ran`)
      if (row.skipped !== undefined) continue
      t.equal(row.lost, 0, `${system} × ${workload} (${workers}): nothing lost`)
      t.equal(row.duplicates, 0, `${system} × ${workload} (${workers}): nothing started twice`)
      if (row.capped === null) t.equal(row.jobs, row.submitted, `${system} × ${workload} (${workers}): every job started`)
    }
  }
  t.ok(Array.isArray(results.targets), 'targets are evaluated')
})
