#!/usr/bin/env node
// The publishing side of pushMany alone, in one process (no HTTP, no held polls): server CPU per message stored
// and announced on the memory store, 1,000 messages on 1,000 channels as one pushMany or as 1,000 pushes sent
// together, in alternating rounds. The pushmany scenario of bench/run.js measures the whole path (deliveries
// and re-polls included), where this part is a small share.
//   npm run build && node bench/pushmany-publish.js
import Fastify from 'fastify'
import longpoll from 'fastify-longpoll'
const app = Fastify()
await app.register(longpoll)
await app.ready()
const channels = Array.from({ length: 1000 }, (_, i) => `c${i}`)
const batch = channels.map((channel, i) => ({ channel, data: { k: i, text: 'hello from the bench' } }))
async function many () { await app.longpoll.pushMany(batch) }
async function one () { await Promise.all(batch.map(({ channel, data }) => app.longpoll.push(channel, data))) }
for (let i = 0; i < 20; i++) { await many(); await one() }
const cpu = { many: 0, one: 0 }
for (let r = 0; r < 10; r++) {
  for (const [name, fn] of [['many', many], ['one', one]]) {
    const c0 = process.cpuUsage()
    for (let i = 0; i < 10; i++) await fn()
    const c = process.cpuUsage(c0)
    cpu[name] += c.user + c.system
  }
}
const per = (x) => (x / (10 * 10 * 1000)).toFixed(2)
console.log(`µs per message stored and announced, no polls held: pushMany ${per(cpu.many)}, push ${per(cpu.one)}, ratio ${(cpu.many / cpu.one).toFixed(2)}`)
await app.close()
