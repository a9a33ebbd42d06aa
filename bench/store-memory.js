#!/usr/bin/env node
// What a channel and a message cost each store, in bytes: N channels with one message each, then N messages on
// one channel, measured as the growth of Redis's used_memory and of the memory store's live heap.
//   node --expose-gc bench/store-memory.js [N]      (needs dist/: npm run build; starts its own redis-server)
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { createServer } from 'node:net'
import { Redis } from 'ioredis'
import { MemoryStore, RedisStore } from '../dist/esm/index.js'

const n = Number(process.argv[2] ?? 20_000)
const json = JSON.stringify({ text: 'x'.repeat(20) }) // 31 bytes, in every row
const retention = { maxMessages: n, messageTtl: 3_600_000 }

function heap () {
  globalThis.gc()
  globalThis.gc()
  return process.memoryUsage().heapUsed
}

async function freePort () {
  const server = createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address()
  server.close()
  return port
}

async function measure (store, usage) {
  const rows = {}
  let before = await usage()
  for (let i = 0; i < n; i++) await store.append(`ch.${i}`, json, Date.now(), retention)
  rows.channel = (await usage() - before) / n
  before = await usage()
  for (let i = 0; i < n; i++) await store.append('one', json, Date.now(), retention)
  rows.message = (await usage() - before) / n
  return rows
}

if (typeof globalThis.gc !== 'function') throw new Error('run with node --expose-gc')
const memory = new MemoryStore()
const memoryRows = await measure(memory, async () => heap())
await memory.close()

const port = await freePort()
const server = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' })
try {
  const redis = new Redis(port, '127.0.0.1', { retryStrategy: (times) => times < 50 ? 100 : null })
  redis.on('error', () => {}) // refused until redis-server listens; ioredis retries
  await redis.ping()
  const store = new RedisStore({ redis })
  const redisRows = await measure(store, async () => Number(/used_memory:(\d+)/.exec(await redis.info('memory'))[1]))
  await store.close()
  redis.disconnect()
  console.log(`N = ${n}, message JSON ${json.length} bytes`)
  console.log('| store | per channel with one message | per further message |')
  console.log('|---|--:|--:|')
  console.log(`| memory (heap) | ${memoryRows.channel.toFixed(0)} B | ${memoryRows.message.toFixed(0)} B |`)
  console.log(`| Redis (used_memory) | ${redisRows.channel.toFixed(0)} B | ${redisRows.message.toFixed(0)} B |`)
} finally {
  server.kill('SIGKILL')
}
