// The Lua scripts: one file each under lib/redis/scripts/, every one opening with its KEYS, ARGV and reply,
// and lib/redis/scripts.ts (what both builds ship) generated from exactly those files.
import t from 'tap'
import { execFile } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { promisify } from 'node:util'
import { SCRIPTS } from '../lib/redis/scripts.js'

const run = promisify(execFile)
const dir = new URL('../lib/redis/scripts/', import.meta.url)

t.test('lib/redis/scripts.ts is up to date with the .lua files', async (t) => {
  const { stdout, stderr } = await run(process.execPath, [new URL('../lib/redis/generate.mjs', import.meta.url).pathname, '--check'])
  t.equal(stdout + stderr, '')
})

t.test('every script has a header naming its KEYS, ARGV and reply, and is in SCRIPTS with its number of keys', async (t) => {
  const files = readdirSync(dir).filter((file) => file.endsWith('.lua'))
  t.ok(files.length >= 2)
  for (const file of files) {
    const text = readFileSync(new URL(file, dir), 'utf8')
    const [, name, keys] = /^([a-z-]+)-(\d+|n)\.lua$/.exec(file) ?? []
    // The header: a `--[[ … ]]` block, or the leading `--` lines.
    const header = text.startsWith('--[[') ? text.slice(0, text.indexOf(']]')) : text.slice(0, text.search(/^[^-\n]/m))
    t.match(header, /KEYS\[1\]/, `${file}: KEYS`)
    t.match(header, /ARGV\[1/, `${file}: ARGV`)
    t.match(header, /Returns|Reply/i, `${file}: the reply`)
    const entry = (SCRIPTS as Record<string, { numberOfKeys?: number, lua: string }>)[(name as string).replace(/-([a-z])/g, (_, c: string) => c.toUpperCase())]
    t.equal(entry?.numberOfKeys, keys === 'n' ? undefined : Number(keys), `${file}: numberOfKeys (none: the caller passes it)`)
    t.notOk(entry?.lua.includes('--- @include'), `${file}: includes are inlined`)
  }
})
