#!/usr/bin/env node
// Names the instructions of a callgrind dump written by `node bench/profile-path.js --keep --perf-map`: callgrind
// knows node's C++ and V8's builtins by name but sees JIT-compiled JavaScript as bare addresses; V8's
// --perf-basic-prof map (/tmp/perf-<pid>.map) names those. Prints self instructions by JavaScript function, by
// file / package, and by kind (JS, V8 builtins, GC, runtime, node C++, libc), per delivered message when
// --messages N is given.
//
//   node bench/profile-callgrind.js bench/results/tmp/callgrind/memory-held-<pid>.callgrind [--messages 200] [--top 40]
import { readFileSync } from 'node:fs'
import process from 'node:process'

const args = process.argv.slice(2)
const file = args.find((a) => !a.startsWith('--') && !/^\d+$/.test(a))
const opt = (name, fallback) => {
  const i = args.indexOf(`--${name}`)
  return i === -1 ? fallback : args[i + 1]
}
if (file === undefined) {
  console.error('usage: node bench/profile-callgrind.js <dump.callgrind> [--messages N] [--top N] [--map /tmp/perf-PID.map]')
  process.exit(2)
}
const messages = Number(opt('messages', 1))
const top = Number(opt('top', 40))
const text = readFileSync(file, 'utf8')
const pid = /^pid: (\d+)/m.exec(text)?.[1]

// The perf map: "<start hex> <size hex> <name>" per JIT code object, sorted for a binary search.
const map = []
try {
  for (const line of readFileSync(opt('map', `/tmp/perf-${pid}.map`), 'utf8').split('\n')) {
    const m = /^([0-9a-f]+) ([0-9a-f]+) (.*)$/.exec(line)
    if (m !== null) map.push({ start: parseInt(m[1], 16), end: parseInt(m[1], 16) + parseInt(m[2], 16), name: m[3] })
  }
} catch {
  console.error(`no perf map for pid ${pid}: JIT code stays unnamed`)
}
map.sort((a, b) => a.start - b.start)
function jitName (address) {
  let lo = 0
  let hi = map.length - 1
  let found = null
  while (lo <= hi) {
    const mid = (lo + hi) >> 1
    if (map[mid].start <= address) {
      found = map[mid]
      lo = mid + 1
    } else hi = mid - 1
  }
  return found !== null && address < found.end ? found.name : null
}

// Self cost per function: cost lines that do not follow a `calls=` line (those are the call's inclusive cost).
const names = new Map()
const self = new Map()
let current = null
let afterCall = false
const define = (kind, value) => {
  const m = /^\((\d+)\)(?: (.*))?$/.exec(value)
  if (m === null) return value
  if (m[2] !== undefined) names.set(`${kind}${m[1]}`, m[2])
  return names.get(`${kind}${m[1]}`)
}
for (const line of text.split('\n')) {
  if (line.startsWith('fn=')) {
    current = define('fn', line.slice(3))
    afterCall = false
  } else if (line.startsWith('cfn=')) define('fn', line.slice(4))
  else if (line.startsWith('calls=')) afterCall = true
  else if (/^[+-]?\d|^\*/.test(line) && current !== null) {
    const parts = line.trim().split(/\s+/)
    const cost = Number(parts[parts.length - 1])
    if (!afterCall && Number.isFinite(cost)) self.set(current, (self.get(current) ?? 0) + cost)
    afterCall = false
  }
}

let total = 0
const byFunction = new Map()
const byKind = new Map()
const byPlace = new Map()
const add = (m, k, v) => m.set(k, (m.get(k) ?? 0) + v)
for (const [name, cost] of self) {
  total += cost
  let label = name
  let kind
  const address = /^0x([0-9a-f]+)$/i.exec(name)
  if (address !== null) {
    label = jitName(parseInt(address[1], 16)) ?? '(unnamed JIT code)'
    kind = 'JavaScript (JIT code)'
  } else if (/Scaveng|MarkCompact|Heap::|Evacuat|Sweeper|IncrementalMarking|ConcurrentMarking|MemoryAllocator|BodyDescriptor|SlotCallback|Pretenuring|HeapObject::SizeFromMap|RecordWrite/.test(name)) kind = 'GC'
  else if (/Builtins_/.test(name)) kind = 'V8 builtins (ICs, promises, strings…)'
  else if (/compiler::|Turbofan|Maglev|baseline::|interpreter::|Compiler::/.test(name)) kind = 'V8 compiler'
  else if (/Runtime_|v8::internal::/.test(name)) kind = 'V8 runtime (C++)'
  else if (/node::|uv_|uv__|llhttp/.test(name)) kind = 'node / libuv / llhttp (C++)'
  else if (/libc|malloc|memcpy|memmove|memset|strlen/.test(name)) kind = 'libc'
  else kind = 'other native'
  add(byKind, kind, cost)
  add(byFunction, label, cost)
  // JIT names look like "JS:*onSendEnd /work/…/node_modules/fastify/lib/reply.js:599:20" (or "LazyCompile:…").
  const place = /(node:[a-z_/]+|node_modules\/((?:@[^/]+\/)?[^/]+)|dist\/[\w/.-]+|bench\/[\w/.-]+)/.exec(label)
  if (kind.startsWith('JavaScript')) add(byPlace, place === null ? '(other JS)' : (place[2] ?? place[1]), cost)
}

const per = (v) => (v / messages).toFixed(0).padStart(9)
const pct = (v) => `${(100 * v / total).toFixed(1).padStart(5)}%`
const unit = messages === 1 ? 'instructions' : 'instructions / message'
console.log(`${file}: ${Math.round(total / messages).toLocaleString('en-US')} ${unit}\n\nby kind:`)
for (const [k, v] of [...byKind].sort((a, b) => b[1] - a[1])) console.log(`  ${pct(v)} ${per(v)}  ${k}`)
console.log('\nJavaScript by file / package:')
for (const [k, v] of [...byPlace].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`  ${pct(v)} ${per(v)}  ${k}`)
console.log('\nby function:')
for (const [k, v] of [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`  ${pct(v)} ${per(v)}  ${k.replace(/\/work\/[^ ]*?\/(node_modules|dist|bench)\//, '$1/').slice(0, 140)}`)
