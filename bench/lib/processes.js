// Process supervision for the bench runners: forked children spoken to over IPC (request → answer by id), and
// one cleanup that stops every process the bench started (children, redis-servers) on exit, on a signal and on
// an uncaught error — so a failed or interrupted run leaves nothing running.
import { fork } from 'node:child_process'
import path from 'node:path'
import process from 'node:process'

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/** Rejects with "timed out after ms: what" unless `promise` settles first. */
export function withTimeout (promise, ms, what) {
  let timer
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise((_resolve, reject) => { timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms) })
  ])
}

/** Everything to stop at the end: each entry has kill(), called synchronously (from 'exit' too). */
const owned = new Set()

/** Registers something to kill at exit; returns a function that unregisters it. */
export function own (killable) {
  owned.add(killable)
  return () => owned.delete(killable)
}

export function killAll () {
  for (const entry of owned) {
    try { entry.kill() } catch {}
  }
  owned.clear()
}

let supervised = false
/** Installs the exit, signal and uncaught-error handlers once per process. `log` reports why it stopped. */
export function supervise (log) {
  if (supervised) return
  supervised = true
  process.on('exit', killAll)
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.on(signal, () => {
      log(`${signal}: stopping every process the bench started`)
      killAll()
      process.exit(130)
    })
  }
  const fail = (err) => {
    log(`failed: ${err?.stack ?? err}`)
    killAll()
    process.exit(1)
  }
  process.on('uncaughtException', fail)
  process.on('unhandledRejection', fail)
}

/**
 * Forks a bench process (server, client, worker) with an IPC channel. Its messages `{ id, type, result }`
 * answer `call`s (`type: 'failed'` rejects with `message`); when it exits, its pending calls reject.
 */
export function forkChild (file, args = [], options = {}) {
  const child = fork(file, args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], ...options })
  const release = own({ kill: () => child.kill('SIGKILL') })
  child.pending = new Map()
  child.on('message', (msg) => {
    const waiter = child.pending.get(msg?.id)
    if (waiter === undefined) return
    child.pending.delete(msg.id)
    if (msg.type === 'failed') waiter.reject(new Error(msg.message))
    else waiter.resolve(msg.result ?? msg)
  })
  child.on('exit', (code, signal) => {
    release()
    for (const waiter of child.pending.values()) waiter.reject(new Error(`${path.basename(file)} exited (${code ?? signal})`))
    child.pending.clear()
  })
  return child
}

let nextCallId = 1
/** Sends `{ ...msg, id }` and resolves with the child's answer to that id, or rejects after `ms`. */
export function call (child, msg, ms = 120_000) {
  const id = nextCallId++
  const promise = new Promise((resolve, reject) => {
    child.pending.set(id, { resolve, reject })
    child.send({ ...msg, id })
  })
  return withTimeout(promise, ms, `${msg.cmd} on pid ${child.pid}`)
}

/** Resolves with the child's `{ type: 'ready', ... }` message; rejects on `{ type: 'error' }`, an exit or `ms`. */
export function waitReady (child, what, ms = 30_000) {
  return withTimeout(new Promise((resolve, reject) => {
    const onMessage = (msg) => {
      if (msg?.type === 'ready') { child.off('message', onMessage); resolve(msg) }
      if (msg?.type === 'error') { child.off('message', onMessage); reject(new Error(`${what}: ${msg.message}`)) }
    }
    child.on('message', onMessage)
    child.once('exit', (code) => reject(new Error(`${what} exited with ${code} before it was ready`)))
  }), ms, `${what} to start`)
}

/** Asks the child to stop (`{ cmd: 'stop' }`: it closes what it holds and exits); SIGKILL after `ms`. */
export async function stopChild (child, ms = 10_000) {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise((resolve) => child.once('exit', resolve))
  try { child.send({ cmd: 'stop', id: nextCallId++ }) } catch {}
  if (!await Promise.race([exited.then(() => true), sleep(ms).then(() => false)])) child.kill('SIGKILL')
}

/** A short random tag, so that each scenario uses channel (and queue) names no earlier one used. */
export const tag = () => Math.random().toString(36).slice(2, 8)
