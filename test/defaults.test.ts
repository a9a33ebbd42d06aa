// Defaults that users and proxies depend on (contract §1.1, §1.5, §4).
import t from 'tap'
import { normalizeOptions } from '../lib/options.js'

t.test('a poll without timeout is held 25000 ms, under the 30 s common proxies allow before the first byte', async (t) => {
  t.equal(normalizeOptions({}).timeout, 25_000)
  t.equal(normalizeOptions({ maxTimeout: 20_000 }).timeout, 20_000, 'a smaller maxTimeout lowers it')
})
