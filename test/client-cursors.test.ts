// The client's cursor arithmetic (lib/client/poll.ts), on which sharing a poll between tabs rests: which answer
// serves which follower, which messages it takes, and where a leader must start for several followers.
import t from 'tap'
import { advance, covers, earliest, isAfter } from '../lib/client/poll.js'

t.test('isAfter: by seq within a life; a message of another life is always after', async (t) => {
  t.ok(isAfter('e.5', null))
  t.ok(isAfter('e.5', 'latest'))
  t.ok(isAfter('e.5', 'e.4'))
  t.notOk(isAfter('e.5', 'e.5'))
  t.notOk(isAfter('e.5', 'e.10'))
  t.ok(isAfter('e.10', 'e.9'), 'numbers, not text')
  t.ok(isAfter('f.1', 'e.10'), 'a new life')
})

t.test('advance: never back within a life; to the new life when the channel began one', async (t) => {
  t.equal(advance(null, 'e.3'), 'e.3')
  t.equal(advance('latest', 'e.3'), 'e.3')
  t.equal(advance('e.2', 'e.3'), 'e.3')
  t.equal(advance('e.9', 'e.3'), 'e.9', 'an answer that ended before this follower stays behind it')
  t.equal(advance('e.9', 'f.0'), 'f.0')
})

t.test('covers: an answer polled from `from` serves every follower at or after `from`', async (t) => {
  t.ok(covers(null, null, 'e.3'), 'from the oldest serves everyone')
  t.ok(covers(null, 'e.2', 'e.3'))
  t.ok(covers('e.2', 'e.2', 'e.5'))
  t.ok(covers('e.2', 'e.4', 'e.5'))
  t.notOk(covers('e.4', 'e.2', 'e.5'), 'a follower before the start would miss e.3 and e.4')
  t.notOk(covers('e.4', null, 'e.5'), 'a follower wanting the oldest')
  t.ok(covers('old.7', 'e.1', 'e.5'), 'a start in an ended life was read from the oldest of the new one')
  t.ok(covers('old.7', null, 'e.5'))
  t.notOk(covers('e.4', 'old.9', 'e.5'), 'a follower still in the ended life needs the new one from its oldest')
  t.ok(covers('latest', 'latest', 'e.5'))
  t.notOk(covers('e.4', 'latest', 'e.5'), '"latest" is only served by a poll from latest')
  t.notOk(covers('latest', 'e.4', 'e.5'))
})

t.test('earliest: where a leader starts for two followers', async (t) => {
  t.equal(earliest('e.4', 'e.2'), 'e.2')
  t.equal(earliest('e.2', 'e.4'), 'e.2')
  t.equal(earliest(null, 'e.4'), null)
  t.equal(earliest('latest', 'e.4'), 'e.4')
  t.equal(earliest('e.4', 'latest'), 'e.4')
  t.equal(earliest('latest', 'latest'), 'latest')
  t.equal(earliest('e.4', 'f.2'), null, 'different lives: from the oldest, which serves both')
  t.equal(earliest('e.4', 'garbage'), null)
})

t.test('the argument of shared.ts on a small model: whatever answers a follower sees, it takes each message once, in order', async (t) => {
  // One channel with messages e.1..e.20. Answers are (from, count): the messages after `from`, up to count.
  const answer = (from: number | null, count: number): { from: string | null, ids: string[], to: string } => {
    const start = from ?? 0
    const end = Math.min(20, start + count)
    const ids = Array.from({ length: end - start }, (_, i) => `e.${start + i + 1}`)
    return { from: from === null ? null : `e.${from}`, ids, to: `e.${end}` }
  }
  let seed = 7
  const random = (n: number): number => { seed = (seed * 48271) % 2147483647; return seed % n }
  let completed = 0
  for (let run = 0; run < 200; run++) {
    let position: string | null = random(2) === 0 ? null : `e.${random(10)}`
    const start = position === null ? 0 : Number(position.slice(2))
    const taken: string[] = []
    // Answers from random starts, some stale, some repeated, until one from the follower's own position.
    for (let k = 0; k < 300 && (position === null || Number(position.slice(2)) < 20); k++) {
      const from = random(3) === 0 ? null : random(21)
      const a = answer(from, 1 + random(6))
      if (!covers(a.from, position, a.to)) continue
      for (const id of a.ids) {
        if (isAfter(id, position)) {
          taken.push(id)
          position = id
        }
      }
      position = advance(position, a.to)
    }
    const expected = Array.from({ length: Number((position ?? 'e.0').slice(2)) - start }, (_, i) => `e.${start + i + 1}`)
    if (JSON.stringify(taken) !== JSON.stringify(expected)) t.fail(`run ${run}: took ${taken.join(' ')}, expected ${expected.join(' ')}`)
    if (position === 'e.20') completed++
  }
  t.pass('200 random runs: the messages taken are exactly those between the start and the final position')
  t.ok(completed >= 150, `${completed} of the runs got to the last message`)
})
