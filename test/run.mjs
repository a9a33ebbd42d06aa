// The README's test command (`npm test`): checks what the suite needs, lints, builds, type-checks the tests,
// then runs the tap suite (which starts its own redis-server and Chromium, and fails under its coverage floor)
// and the type tests.
import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'

const missing = []
if (!onPath('redis-server') || !onPath('redis-cli')) missing.push('redis-server and redis-cli (Debian: apt-get install redis-server)')
const chromium = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
if (!existsSync(chromium)) missing.push(`Chromium at ${chromium} (Debian: apt-get install chromium; or set CHROMIUM_PATH)`)
if (missing.length > 0) {
  console.error(`The test suite needs:\n  - ${missing.join('\n  - ')}\nInstall them (as root, \`bash .ci/run\` does it for you) and run \`npm test\` again.`)
  process.exit(1)
}

run('node_modules/.bin/eslint', ['.'])
run('npm', ['run', 'build', '--silent'])
run('node_modules/.bin/tsc', ['-p', 'test/tsconfig.json']) // tap strips the tests' types without checking them
// The coverage floor (statements, branches, functions, lines in package.json's tap config) holds for the whole
// suite; ad-hoc runs of a few files (`npx tap test/foo.test.ts`) are allowed to cover less.
run('node_modules/.bin/tap', ['--no-allow-incomplete-coverage', ...process.argv.slice(2)])
run('node_modules/.bin/tstyche', [])

function run (command, args) {
  const { status } = spawnSync(command, args, { stdio: 'inherit' })
  if (status !== 0) process.exit(status ?? 1)
}

function onPath (command) {
  try {
    execFileSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}
