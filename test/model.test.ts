// Delivery checked against a model of the contract (issue 12, item 5) on the memory store and the in-process
// notifier, one instance over real HTTP. `npm run test:model -- --runs N` runs many more sequences.
import t from 'tap'
import fc from 'fast-check'
import Fastify from 'fastify'
import longpoll, { MemoryStore } from '../lib/index.js'
import {
  Abort, Disconnect, Follow, ObservedStore, Poll, PollTimesOut, Pool, Push, Restart, runSequence, runSequences, tally,
  type Backend, type Instance, type Settings
} from './helpers/model.js'

const numRuns = Number(process.env.LONGPOLL_MODEL_RUNS ?? 100)
const seed = process.env.LONGPOLL_MODEL_SEED === undefined ? undefined : Number(process.env.LONGPOLL_MODEL_SEED)
/** With the seed, path and replayPath of a failure's report, fast-check replays that one shrunk sequence. */
const path = process.env.LONGPOLL_MODEL_PATH
const replayPath = process.env.LONGPOLL_MODEL_REPLAY_PATH

const memory: Backend = {
  instances: 1,
  async start (_index, settings) {
    const store = new ObservedStore(new MemoryStore())
    const app = Fastify({ forceCloseConnections: true })
    await app.register(longpoll, { prefix: '/lp', routes: { queues: false }, store, maxMessages: settings.maxMessages, messageTtl: 3_600_000, maxTimeout: 60_000 })
    await app.listen({ port: 0, host: '127.0.0.1' })
    const { port } = app.server.address() as { port: number }
    return { app, base: `http://127.0.0.1:${port}/lp`, store }
  },
  async stop (_index, instance: Instance) {
    await instance.app.close()
  }
}

const pool = new Pool(memory, false)
t.teardown(() => pool.close())

const settings: fc.Arbitrary<Settings> = fc.record({
  // Small retention, so that clients fall behind it and the model predicts trimmed gaps; sometimes none.
  maxMessages: fc.oneof({ weight: 3, arbitrary: fc.constant(2) }, { weight: 2, arbitrary: fc.constant(1) }, { weight: 2, arbitrary: fc.constant(3) }, { weight: 1, arbitrary: fc.constant(1000) }),
  presenceWindow: fc.constant(2_000)
})
const commands = { instances: 1, storeRestarts: true, killSubscriber: false, timeouts: { min: 30, max: 120 } }

t.test(`${numRuns} random sequences of pushes, polls, aborts, timeouts, disconnects and restarts match the model`, async (t) => {
  const { runs, ms } = await runSequences({ ...commands, pool, settings, numRuns, maxCommands: 25, seed, path, replayPath })
  t.equal(runs >= (path === undefined ? numRuns : 1), true, `every sequence ran and matched the model (${runs} runs in ${ms} ms)`)
  t.comment(`exercised: ${[...tally].map(([what, n]) => `${what} ${n}`).join(', ')}`)
})

/**
 * Sequences worth keeping: each names what it pins down. A failure found by the random runs is added here as
 * its shrunk sequence (or as `{ seed, path }` for fc.assert), so it stays fixed.
 */
const regressions: Array<{ name: string, maxMessages: number, steps: () => Array<fc.AsyncCommand<any, any>> }> = [
  {
    // Found shrunk by the random runs against a store whose trimmed-gap test was off by one (a mutant).
    name: 'one message past maxMessages 1 is a gap: the cursor at 0, messages 1 and 2 pushed, 1 trimmed',
    maxMessages: 1,
    steps: () => [new Poll(1, 100, true, 0, 1), new Push('b', 0, 1), new Push('b', 0, 1), new Poll(1, 100, true, 0, 1)]
  },
  {
    // The first poll hands out an empty-channel cursor (`_<t>.0`); a message is pushed, which the client does
    // not poll for; the process restarts and the message is lost: the old cursor must not fit the new store.
    name: 'a restart after a message the client never saw: its empty-channel cursor gets gap:true',
    maxMessages: 1000,
    steps: () => [new Poll(0, 100, true, 0, 1), new Push('a', 0, 1), new Restart(0, true, 1), new Poll(0, 100, true, 0, 1)]
  },
  {
    name: 'a restart starts new lives: an old cursor gets gap:true and the new life from its start',
    maxMessages: 1000,
    steps: () => [new Push('a', 0, 1), new Poll(0, 100, true, 0, 1), new Restart(0, true, 1), new Push('a', 0, 1), new Poll(0, 100, true, 0, 1)]
  },
  {
    name: 'a held many-channel poll disconnected on one channel answers with the old life cursor, then gap:true',
    maxMessages: 1000,
    steps: () => [new Push('b', 0, 1), new Poll(1, 100, true, 0, 1), new Poll(1, 100, false, 0, 1), new Disconnect('b', 0, 1), new Push('b', 0, 1), new Poll(1, 100, true, 0, 1)]
  },
  {
    // Found shrunk when the stores kept nothing for a disconnect of a channel with no message (§1.4 says the
    // cursor belongs to the life that ended).
    name: 'a channel disconnected before its first message: the held poll answers disconnected, the next one gap:true',
    maxMessages: 2,
    steps: () => [new Poll(1, 100, false, 0, 1), new Disconnect('a', 0, 1), new Poll(1, 100, true, 0, 1)]
  },
  {
    name: 'trimmed messages: a gap exactly when the cursor fell behind maxMessages, round-robin under limit',
    maxMessages: 2,
    steps: () => [new Poll(2, 1, true, 0, 1), new Push('a', 0, 1), new Push('a', 0, 1), new Push('a', 0, 1), new Push('c', 0, 1), new Poll(2, 1, true, 0, 1), new Poll(2, 2, true, 0, 1)]
  },
  {
    name: 'an aborted held poll is released and its client resumes from the cursor it had',
    maxMessages: 1000,
    steps: () => [new Poll(0, 100, false, 0, 1), new Abort(0), new Push('a', 0, 1), new PollTimesOut(0, 100, 50, 0, 1), new PollTimesOut(0, 100, 50, 0, 1)]
  },
  {
    name: 'a channel dropped and added again from its oldest message is delivered its backlog again',
    maxMessages: 1000,
    steps: () => [new Push('a', 0, 1), new Poll(0, 100, true, 0, 1), new Follow(0, 0b010, 'oldest'), new Follow(0, 0b011, 'oldest'), new Poll(0, 100, true, 0, 1)]
  },
  {
    name: 'a channel added from latest sees only later messages; a dropped one is no longer polled',
    maxMessages: 1000,
    steps: () => [new Push('c', 0, 1), new Follow(0, 0b101, 'latest'), new Poll(0, 100, false, 0, 1), new Push('c', 0, 1), new Follow(0, 0b100, 'oldest'), new Push('a', 0, 1), new Poll(0, 100, true, 0, 1)]
  }
]

for (const regression of regressions) {
  t.test(`regression: ${regression.name}`, async (t) => {
    await runSequence(pool, { maxMessages: regression.maxMessages, presenceWindow: 2_000 }, regression.steps())
    t.pass('the sequence matched the model')
  })
}
