// All cores behind one port: node:cluster runs one instance of server.js per core (WORKERS, default
// os.availableParallelism()), and the primary spreads incoming connections over them. They share one Redis, so a
// message pushed through any worker reaches the polls every worker holds. A worker that dies is replaced.
//
//   REDIS_URL=redis://127.0.0.1:6379 PORT=3000 node examples/cluster/cores.js
//
// Each worker is a process of its own with its own fd limit: 100,000 held polls on one machine are several
// workers' worth (the scale bench, `npm run bench -- --scale`, runs processes of server.js the same way).
import cluster from 'node:cluster'
import os from 'node:os'
import process from 'node:process'
import { start } from './server.js'

if (cluster.isPrimary) {
  const count = Number(process.env.WORKERS ?? os.availableParallelism())
  let stopping = false
  const listening = new Map()
  const alive = new Set()
  const fork = (i) => {
    const worker = cluster.fork({ NAME: `w${i}` })
    alive.add(worker)
    worker.on('message', (message) => {
      if (message?.address === undefined) return
      listening.set(i, message.address)
      // Started by a parent (a test, a supervisor): tell it once every worker listens.
      if (listening.size === count && process.send !== undefined) process.send({ address: message.address, workers: count })
    })
    worker.on('exit', (code, signal) => {
      alive.delete(worker)
      listening.delete(i)
      if (stopping) {
        if (alive.size === 0) process.exit(0)
        return
      }
      console.error(`worker w${i} exited (${signal ?? code}); starting another`)
      fork(i)
    })
  }
  for (let i = 0; i < count; i++) fork(i)
  const stop = () => {
    stopping = true
    // Each worker answers its held polls and closes (server.js's SIGTERM handler); the primary exits after them.
    for (const worker of alive) worker.process.kill('SIGTERM')
  }
  for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, stop)
  process.once('disconnect', stop) // the parent went away
} else {
  // PORT=0 in every worker: the primary gives them all the same free port.
  await start()
}
