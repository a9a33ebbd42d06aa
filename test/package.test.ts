// The packed package, as a separate project gets it: `import` and `require` both work, with types.
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'

const root = resolve(import.meta.dirname, '..')
const bin = (name: string): string => join(root, 'node_modules', '.bin', name)

t.test('npm pack gives a tarball that ESM and CommonJS consumers can use, with types', async (t) => {
  const work = mkdtempSync(join(tmpdir(), 'longpoll-pack-'))
  t.teardown(() => rmSync(work, { recursive: true, force: true }))
  // dist/ was built by the test command; --ignore-scripts keeps pack from rebuilding it mid-suite.
  const [packed] = JSON.parse(execFileSync('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', work], { cwd: root, encoding: 'utf8' }))
  const files: string[] = packed.files.map((f: { path: string }) => f.path)
  t.ok(files.includes('dist/esm/index.js') && files.includes('dist/cjs/index.js') && files.includes('dist/cjs/package.json'))
  t.ok(files.includes('dist/esm/index.d.ts') && files.includes('dist/cjs/client/index.d.ts'))
  t.notOk(files.some((f) => f.startsWith('lib/') || f.startsWith('test/') || f.startsWith('bench/') || f.startsWith('examples/')), 'only the build output and docs')

  // A separate project: the tarball unpacked into its node_modules, the dependencies linked from ours — all but
  // ioredis, an optional peer: a user on the memory store does not install it, and must not need it at run time
  // or for the package's types.
  const project = join(work, 'consumer')
  const modules = join(project, 'node_modules')
  mkdirSync(join(modules, 'fastify-longpoll'), { recursive: true })
  execFileSync('tar', ['-xzf', join(work, packed.filename), '-C', join(modules, 'fastify-longpoll'), '--strip-components=1'])
  for (const entry of readdirSync(join(root, 'node_modules'))) {
    if (!['fastify-longpoll', 'ioredis', '.bin'].includes(entry) && !entry.startsWith('.')) symlinkSync(join(root, 'node_modules', entry), join(modules, entry))
  }
  cpSync(join(root, 'test', 'fixtures', 'consumer'), project, { recursive: true })
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'consumer', private: true }))

  // Types: both consumers type-check against the package's own .d.ts (skipLibCheck off).
  execFileSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', project], { cwd: project, encoding: 'utf8' })
  t.pass('the ESM and CommonJS consumers type-check, without ioredis installed')

  const esm = JSON.parse(execFileSync(process.execPath, [join(project, 'out', 'esm.mjs')], { cwd: project, encoding: 'utf8' }))
  t.equal(esm.same, true)
  t.equal(esm.body.status, 'ok')
  t.same(esm.body.messages.map((m: { data: unknown }) => m.data), [{ text: 'hi' }])
  t.equal(esm.body.messages[0].id, esm.id)
  t.equal(esm.pushed, 1)
  t.equal(esm.errorCode, 'FST_LONGPOLL_BAD_CURSOR')
  t.equal(esm.client, 'stopped')
  t.same(esm.many.messages.map((m: { channel: string, id: string }) => [m.channel, m.id]), [['user-42', esm.id]], 'ESM: a poll of two channels')
  t.equal(esm.many.cursor.split(',').length, 2)
  t.same(esm.channels, ['user-42', 'room-1'], 'ESM: a client of two channels')
  t.equal(esm.worker, 'function', 'ESM: LongPollWorker')

  const cjs = JSON.parse(execFileSync(process.execPath, [join(project, 'out', 'cjs.cjs')], { cwd: project, encoding: 'utf8' }))
  t.equal(cjs.same, true)
  t.equal(cjs.body.status, 'ok')
  t.equal(cjs.body.messages[0].id, cjs.id)
  t.equal(cjs.registered, 'function')
  t.equal(cjs.client, 'stopped')
  t.same(cjs.many.messages.map((m: { channel: string, id: string }) => [m.channel, m.id]), [['user-42', cjs.id]], 'CommonJS: a poll of two channels')
  t.same(cjs.channels, ['user-42', 'room-1'], 'CommonJS: a client of two channels')

  // @arethetypeswrong/cli: no resolution problem for node10, node16 (CJS and ESM) or bundler consumers.
  const report = JSON.parse(execFileSync(bin('attw'), [join(work, packed.filename), '--format', 'json'], { encoding: 'utf8' }).toString())
  const problems = Array.isArray(report.problems) ? report.problems : Object.values(report.problems ?? {}).flat()
  t.same(problems, [], 'attw finds no problem')
})
