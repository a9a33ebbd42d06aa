#!/usr/bin/env node
// Summarizes a V8 CPU profile written by `node bench/run.js --profile <server>` (which forks that server with
// --cpu-prof into bench/results/tmp/profiles/): self time by function and by package/file, and the total time
// under (inclusive of) functions whose name or file matches --focus.
//
//   node bench/profile.js bench/results/tmp/profiles/memory-....cpuprofile [--top 30] [--focus hub.js,answers.js]
import { readFileSync } from 'node:fs'
import process from 'node:process'

const args = process.argv.slice(2)
const file = args.find((a) => !a.startsWith('--'))
const opt = (name, fallback) => {
  const i = args.indexOf(`--${name}`)
  return i === -1 ? fallback : args[i + 1]
}
if (file === undefined) {
  console.error('usage: node bench/profile.js <file.cpuprofile> [--top N] [--focus a,b]')
  process.exit(2)
}
const top = Number(opt('top', 30))
const focus = opt('focus', '').split(',').filter(Boolean)

const profile = JSON.parse(readFileSync(file, 'utf8'))
const nodes = new Map(profile.nodes.map((n) => [n.id, n]))
const parent = new Map()
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id)

// Self time per node from the samples and their time deltas (µs).
const self = new Map()
let total = 0
for (let i = 0; i < profile.samples.length; i++) {
  const dt = profile.timeDeltas[i] ?? 0
  self.set(profile.samples[i], (self.get(profile.samples[i]) ?? 0) + dt)
  total += dt
}

function where (n) {
  const url = n.callFrame.url || ''
  const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)
  if (m) return m[1]
  if (url.startsWith('node:')) return url
  if (url === '') return `(${n.callFrame.functionName || 'native'})`
  return url.replace(/^file:\/\/.*?\/(dist|bench|lib)\//, '$1/')
}
const label = (n) => `${n.callFrame.functionName || '(anonymous)'} ${where(n)}:${n.callFrame.lineNumber + 1}`

const byFunction = new Map()
const byPlace = new Map()
let idle = 0
for (const [id, us] of self) {
  const n = nodes.get(id)
  const name = n.callFrame.functionName
  if (name === '(idle)') {
    idle += us
    continue
  }
  byFunction.set(label(n), (byFunction.get(label(n)) ?? 0) + us)
  byPlace.set(where(n), (byPlace.get(where(n)) ?? 0) + us)
}
const busy = total - idle
const pct = (us) => `${(100 * us / busy).toFixed(1).padStart(5)}%`
const ms = (us) => `${(us / 1000).toFixed(0).padStart(7)} ms`

console.log(`${file}\n  sampled ${ms(total)}, idle ${ms(idle)}, busy ${ms(busy)} (percentages are of busy time)\n`)
console.log('self time by package / file:')
for (const [k, v] of [...byPlace].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`  ${pct(v)} ${ms(v)}  ${k}`)
console.log('\nself time by function:')
for (const [k, v] of [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`  ${pct(v)} ${ms(v)}  ${k}`)

if (focus.length > 0) {
  // Inclusive time: a sample counts once for each focus entry found on its stack.
  console.log('\ninclusive time under:')
  for (const f of focus) {
    let inclusive = 0
    for (const [id, us] of self) {
      let cur = id
      while (cur !== undefined) {
        const n = nodes.get(cur)
        if (label(n).includes(f)) { inclusive += us; break }
        cur = parent.get(cur)
      }
    }
    console.log(`  ${pct(inclusive)} ${ms(inclusive)}  ${f}`)
  }
}
