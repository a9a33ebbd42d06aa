// `npm run test:model -- --runs N [--seed=S --path=P --replay-path=R] [--memory | --redis]`: the model tests
// (test/model.test.ts, test/redis-model.test.ts) with N random sequences per file instead of the 100
// (memory) and 50 (Redis) of `npm test`. A failure prints its shrunk sequence with the seed and path that
// replay it (and fast-check's replayPath of the commands): pass them back as --seed=S --path=P --replay-path=R,
// with --memory or --redis for the file that failed.
import { spawnSync } from 'node:child_process'
import { parseArgs } from 'node:util'

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '1000' },
    seed: { type: 'string' },
    path: { type: 'string' },
    'replay-path': { type: 'string' },
    memory: { type: 'boolean', default: false },
    redis: { type: 'boolean', default: false }
  }
})
const runs = Number(values.runs)
if (!Number.isInteger(runs) || runs < 1) {
  console.error(`--runs must be a positive integer, got ${values.runs}`)
  process.exit(1)
}
const files = []
if (values.memory || !values.redis) files.push('test/model.test.ts')
if (values.redis || !values.memory) files.push('test/redis-model.test.ts')
const env = { ...process.env, LONGPOLL_MODEL_RUNS: String(runs) }
if (values.seed !== undefined) env.LONGPOLL_MODEL_SEED = values.seed
if (values.path !== undefined) env.LONGPOLL_MODEL_PATH = values.path
if (values['replay-path'] !== undefined) env.LONGPOLL_MODEL_REPLAY_PATH = values['replay-path']
// No file timeout: a long run is what was asked for. Files one at a time: the sequences share the CPU with
// real servers, and Redis's ones with a redis-server.
const { status } = spawnSync('node_modules/.bin/tap', ['--disable-coverage', '--timeout=0', '--jobs=1', ...files], { stdio: 'inherit', env })
process.exit(status ?? 1)
