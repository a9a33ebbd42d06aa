import Fastify, { type FastifyInstance } from 'fastify'
import type { Test } from 'tap'
import longpoll, { type LongPollOptions } from '../../lib/index.js'

export interface Served {
  app: FastifyInstance
  /** Base URL of the plugin's routes, e.g. http://127.0.0.1:1234/lp */
  base: string
}

/** A Fastify app with the plugin under /lp, closed when the test ends (even when it fails). */
export async function makeApp (t: Test, options: LongPollOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({ forceCloseConnections: true })
  t.teardown(() => app.close())
  await app.register(longpoll, { prefix: '/lp', ...options })
  await app.ready()
  return app
}

/** The same app, listening on a free loopback port: for anything about sockets (held polls, aborts, close). */
export async function serve (t: Test, options: LongPollOptions = {}): Promise<Served> {
  const app = await makeApp(t, options)
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as { port: number }
  return { app, base: `http://127.0.0.1:${port}/lp` }
}

export interface PollAnswer {
  status: 'ok' | 'timeout' | 'disconnected'
  messages: Array<{ id: string, data: unknown, time: number }>
  cursor: string
  gap?: true
}

export async function poll (base: string, query: Record<string, string | number>, init: RequestInit = {}): Promise<{ status: number, body: any, headers: Headers }> {
  const params = new URLSearchParams(Object.entries(query).map(([k, v]) => [k, String(v)]))
  const response = await fetch(`${base}/poll?${params}`, init)
  return { status: response.status, body: await response.json(), headers: response.headers }
}

export async function push (base: string, channel: string, data: unknown): Promise<{ status: number, body: any }> {
  const response = await fetch(`${base}/push`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ channel, data })
  })
  return { status: response.status, body: await response.json() }
}

/**
 * Resolves when `condition()` holds, checking every few milliseconds. Used to wait for a server-side state (e.g.
 * "N polls are held") that has no event of its own; fails after `ms`. It polls on a timer, not on every turn of
 * the event loop, so that a long wait does not burn a core the server under test needs.
 */
export async function until (condition: () => boolean, ms = 10_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + ms
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

export async function heldPolls (app: FastifyInstance, n: number): Promise<void> {
  await until(() => app.longpoll.stats().heldPolls === n, 15_000, `${n} held polls (have ${app.longpoll.stats().heldPolls})`)
}
