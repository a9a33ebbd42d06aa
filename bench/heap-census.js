#!/usr/bin/env node
// What a held poll is made of: starts one server under test in this process, has a forked client (bench/client.js)
// hold N polls on N channels, and diffs two V8 heap snapshots (before/after, each after a forced GC) by object
// type and constructor name. Prints the objects and bytes that each held poll adds to the heap.
//
//   node --expose-gc bench/heap-census.js <memory|node-http|fastify-map> [N=2000] [--top 30] [--package DIR]
import { fork } from 'node:child_process'
import { readFileSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import process from 'node:process'
import v8 from 'node:v8'
import { fileURLToPath } from 'node:url'

const here = path.dirname(fileURLToPath(import.meta.url))
const kind = process.argv[2] ?? 'memory'
const n = Number(process.argv[3] ?? 2000)
const topIndex = process.argv.indexOf('--top')
const top = topIndex === -1 ? 30 : Number(process.argv[topIndex + 1])
if (typeof global.gc !== 'function') {
  console.error('run with node --expose-gc')
  process.exit(2)
}

async function start () {
  if (kind === 'node-http') return (await import('./baselines/node-http.js')).start()
  if (kind === 'fastify-map') return (await import('./baselines/fastify-map.js')).start()
  const { default: Fastify } = await import('fastify')
  // --package DIR: a patched build (e.g. a copy of dist/esm) instead of the package's own.
  const pkgIndex = process.argv.indexOf('--package')
  const { default: longpoll } = await import(pkgIndex === -1 ? 'fastify-longpoll' : path.resolve(process.argv[pkgIndex + 1], 'index.js'))
  const app = Fastify({ logger: false })
  await app.register(longpoll)
  await app.listen({ host: '127.0.0.1', port: 0, backlog: 4096 })
  return { port: app.server.address().port, held: () => app.longpoll.stats().heldPolls, close: async () => { app.server.closeAllConnections(); await app.close() } }
}

function census () {
  global.gc()
  global.gc()
  const file = path.join(os.tmpdir(), `heap-census-${process.pid}-${Date.now()}.heapsnapshot`)
  v8.writeHeapSnapshot(file)
  const snapshot = JSON.parse(readFileSync(file, 'utf8'))
  rmSync(file, { force: true })
  const { node_fields: fields, node_types: [types] } = snapshot.snapshot.meta
  const width = fields.length
  const iType = fields.indexOf('type')
  const iName = fields.indexOf('name')
  const iSize = fields.indexOf('self_size')
  const out = new Map()
  const nodes = snapshot.nodes
  for (let i = 0; i < nodes.length; i += width) {
    const type = types[nodes[i + iType]]
    let name = snapshot.strings[nodes[i + iName]]
    if (type === 'string' || type === 'concatenated string' || type === 'sliced string') name = '(string)'
    else if (type === 'code' || type === 'hidden') name = `(${type})`
    else if (name.length > 60) name = name.slice(0, 60) + '…'
    const key = `${type}: ${name}`
    const entry = out.get(key) ?? { count: 0, bytes: 0 }
    entry.count++
    entry.bytes += nodes[i + iSize]
    out.set(key, entry)
  }
  return out
}

const server = await start()
const client = fork(path.join(here, 'client.js'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
process.on('exit', () => client.kill('SIGKILL'))
await new Promise((resolve) => client.once('message', resolve)) // ready
const call = (msg) => new Promise((resolve, reject) => {
  const id = Math.random()
  const onMessage = (m) => {
    if (m?.id !== id) return
    client.off('message', onMessage)
    if (m.type === 'failed') reject(new Error(m.message))
    else resolve(m.result)
  }
  client.on('message', onMessage)
  client.send({ ...msg, id })
})
const base = `http://127.0.0.1:${server.port}`

// Warm up: hold and release a first batch, so one-time allocations are in the "before" snapshot.
await call({ cmd: 'open', bases: [base], channels: Array.from({ length: 200 }, (_, i) => `warm-${i}`), timeout: 60_000 })
while (server.held() < 200) await new Promise((resolve) => setTimeout(resolve, 20))
await call({ cmd: 'close' })
while (server.held() > 0) await new Promise((resolve) => setTimeout(resolve, 20))
await new Promise((resolve) => setTimeout(resolve, 500))

const before = census()
const rssBefore = process.memoryUsage().rss
await call({ cmd: 'open', bases: [base], channels: Array.from({ length: n }, (_, i) => `census-${i}`), timeout: 60_000 })
while (server.held() < n) await new Promise((resolve) => setTimeout(resolve, 20))
const after = census()
const rssAfter = process.memoryUsage().rss

const rows = []
let totalBytes = 0
for (const [key, a] of after) {
  const b = before.get(key) ?? { count: 0, bytes: 0 }
  const count = a.count - b.count
  const bytes = a.bytes - b.bytes
  totalBytes += bytes
  if (bytes !== 0 || count !== 0) rows.push({ key, count, bytes })
}
rows.sort((x, y) => y.bytes - x.bytes)
console.log(`${kind}: ${n} held polls; heap +${(totalBytes / n).toFixed(0)} B/poll (self sizes), RSS +${((rssAfter - rssBefore) / n).toFixed(0)} B/poll (includes the snapshots' own garbage)`)
console.log('   objects/poll    bytes/poll   type: constructor')
for (const r of rows.slice(0, top)) console.log(`${(r.count / n).toFixed(2).padStart(15)} ${(r.bytes / n).toFixed(0).padStart(13)}   ${r.key}`)
await call({ cmd: 'close' })
client.kill('SIGKILL')
await server.close()
process.exit(0)
