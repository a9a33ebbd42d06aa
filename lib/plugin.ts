import fp from 'fastify-plugin'
import type { FastifyError, FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { withRetryAfter } from './answers.js'
import { parsePositions } from './cursor.js'
import { errors } from './errors.js'
import { createMetrics } from './metrics.js'
import { LongPoll, type LongPollApi, type PushManyMessage, type PushOptions } from './longpoll.js'
import { normalizeOptions, type LongPollAction, type LongPollOptions, type NormalizedOptions } from './options.js'
import { Queues, type QueueApi } from './queues/queues.js'
import { queueRoutes } from './queues/routes.js'
import type { ChannelEvent, QueueEvent } from './notifiers/types.js'
import { channelQuery, DisconnectAnswer, ErrorAnswer, PollAnswer, pollQuery, pushBody, PushAnswer, pushHeaders } from './schemas.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** Server-side push, disconnect, stats and queues of fastify-longpoll. */
    longpoll: LongPollApi & {
      /** The server side of a queue: enqueue, counts, dead letters. Throws FST_LONGPOLL_BAD_QUEUE for a bad name. */
      queue (name: string): QueueApi
    }
  }
}

const errorAnswers = { 400: ErrorAnswer, 403: ErrorAnswer, 413: ErrorAnswer, 429: ErrorAnswer, 500: ErrorAnswer, 503: ErrorAnswer }
/** 503s answered while the store or the notifier is down: the plugin logs those once per incident itself. */
const OUTAGE_CODES = new Set(['FST_LONGPOLL_STORE_UNAVAILABLE', 'FST_LONGPOLL_NOTIFIER_UNAVAILABLE'])

/**
 * The error handler of the plugin's own routes (their encapsulated scope; the app's other routes keep theirs).
 * Fastify's default handler logs every 5xx at `error`, so an outage would log one line per failed poll and
 * push besides the plugin's one line per incident: answer those 503s without a log line. Every other error
 * goes on to the app's error handler (the user's, or Fastify's default), which answers and logs it as before.
 * The answer is sent as a plain object: sending the Error itself would hand it to the next handler, which logs.
 */
function quietOutages (err: FastifyError, _request: FastifyRequest, reply: FastifyReply): void {
  if (!OUTAGE_CODES.has(err.code)) throw err
  void reply.code(503).send({ statusCode: 503, code: err.code, error: 'Service Unavailable', message: err.message })
}

/** Room for `{"channel":…,"data":…}` around the data, whose own size `maxMessageBytes` bounds. */
const PUSH_ENVELOPE_BYTES = 1024

const plugin: FastifyPluginAsync<LongPollOptions> = async (fastify, rawOptions) => {
  const options = normalizeOptions(rawOptions)
  let held = (): number => 0
  const metrics = await createMetrics(options.metrics, () => held())
  fastify.addHook('onClose', async () => metrics.close())
  const longpoll = new LongPoll(options, fastify.log, metrics)
  const { hub } = longpoll
  const queues = new Queues(options, fastify.log, () => hub.heldPolls, metrics)
  hub.heldElsewhere = () => queues.claims.heldClaims
  held = () => hub.heldPolls

  await options.notifier.start({
    // A channel and a queue of one name are separate topics: events come back with their namespace.
    event: (name, event, namespace) => namespace === 'queue'
      ? queues.claims.event(name, event as QueueEvent)
      : hub.event(name, event as ChannelEvent),
    resync: () => { hub.resync(); queues.claims.resync() },
    log: fastify.log,
    presenceWindow: options.presenceWindow
  })

  fastify.decorate('longpoll', Object.freeze({
    push: (channel: string, data: unknown, options?: PushOptions) => longpoll.push(channel, data, options),
    pushMany: (messages: readonly PushManyMessage[]) => longpoll.pushMany(messages),
    online: (channel: string) => longpoll.online(channel),
    disconnect: (channel: string) => longpoll.disconnect(channel),
    stats: () => longpoll.stats(),
    queue: (name: string) => queues.api(name)
  }))

  // Two-phase shutdown: held polls are answered first (they would hold the server open), then what the
  // plugin owns is closed.
  fastify.addHook('preClose', async () => { hub.close(); queues.claims.close() })
  fastify.addHook('onClose', async () => {
    await Promise.all([options.store.close(), options.notifier.close(), options.queueStore.close()])
  })

  warnOpenRoutes(fastify, options)

  // fastify-plugin makes Fastify ignore `prefix`, so the routes live in an inner, encapsulated plugin.
  await fastify.register(async (scope) => {
    scope.setErrorHandler(quietOutages)
    await routes(scope, options, longpoll)
    if (options.routes.queues) queueRoutes(scope, options, queues)
  }, { prefix: options.prefix })
}

async function routes (fastify: FastifyInstance, options: NormalizedOptions, longpoll: LongPoll): Promise<void> {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>()
  const { hub } = longpoll
  // A route turned off in `routes` is never registered, so it answers Fastify's 404.
  const enabled = {
    poll: options.routes.poll ? app : null,
    push: options.routes.push ? app : null,
    disconnect: options.routes.disconnect ? app : null
  }

  async function authorize (request: FastifyRequest, action: LongPollAction, channel: string): Promise<void> {
    if (options.authorize === null) return
    if (await options.authorize(request, { action, channel }) !== true) throw new errors.Forbidden(action, channel)
  }

  /** `authorize` once per channel of a poll, all at once; any denial answers 403 and nothing is held. */
  async function authorizeAll (request: FastifyRequest, channels: string[]): Promise<void> {
    if (channels.length === 1) return await authorize(request, 'poll', channels[0] as string)
    await Promise.all(channels.map((channel) => authorize(request, 'poll', channel)))
  }

  // A server-wide handlerTimeout shorter than a held poll would answer held polls with 503: give the poll
  // route its own, above maxTimeout. With none set, set none (it costs a timer per request).
  const serverHandlerTimeout = (fastify.initialConfig as { handlerTimeout?: number }).handlerTimeout ?? 0
  const pollHandlerTimeout = serverHandlerTimeout > 0 && serverHandlerTimeout <= options.maxTimeout + 5_000
    ? { handlerTimeout: options.maxTimeout + 30_000 }
    : {}

  enabled.poll?.get('/poll', {
    ...pollHandlerTimeout,
    exposeHeadRoute: false, // a HEAD request would hold a poll only to throw its answer away
    schema: {
      summary: 'Wait for messages on one or several channels',
      querystring: pollQuery(options.channelPattern, options.maxBatch, options.maxChannels),
      response: { 200: PollAnswer, ...errorAnswers }
    }
  }, (request, reply) => {
    // Not async, and never `return reply`: a handler that resolves with the reply makes the promise machinery
    // call Reply#then, which attaches end-of-stream listeners (eos) to every held poll until it is answered —
    // ~1.7 KB of heap and ~20 µs of CPU per poll (bench/results/candidates/). Fastify waits for reply.send()
    // when a handler returns undefined, and answers a synchronous throw (a bad cursor) with its error.
    const { channel, cursor, timeout, limit } = request.query
    const channels = typeof channel === 'string' ? [channel] : channel
    const positions = parsePositions(cursor, channels.length)
    const holdFor = Math.min(timeout ?? options.timeout, options.maxTimeout)
    const batch = limit ?? options.maxBatch
    const run = (): Promise<void> => holdFor === 0
      ? hub.shortPoll(reply, channels, positions, batch)
      : hub.hold(reply, channels, positions, batch, holdFor)
    const fail = (err: Error): void => { if (!reply.sent) hub.fail(reply, err) }
    if (options.authorize === null) run().catch(fail)
    else authorizeAll(request, channels).then(run).catch(fail)
  })

  enabled.push?.post('/push', {
    bodyLimit: options.maxMessageBytes + PUSH_ENVELOPE_BYTES,
    schema: {
      summary: 'Store a message on a channel and wake its polls',
      body: pushBody(options.channelPattern),
      headers: pushHeaders,
      response: { 200: PushAnswer, ...errorAnswers }
    }
  }, async (request, reply) => {
    const { channel, data } = request.body
    if (options.authorize !== null) await authorize(request, 'push', channel)
    try {
      return await longpoll.push(channel, data, { key: request.headers['idempotency-key'] })
    } catch (err) {
      throw withRetryAfter(reply, err as Error, options.retryAfter)
    }
  })

  enabled.disconnect?.delete('/disconnect', {
    schema: {
      summary: 'Answer every poll held on a channel with `disconnected` and delete its messages',
      querystring: channelQuery(options.channelPattern),
      response: { 200: DisconnectAnswer, ...errorAnswers }
    }
  }, async (request, reply) => {
    const { channel } = request.query
    await authorize(request, 'disconnect', channel)
    try {
      await longpoll.disconnect(channel)
    } catch (err) {
      throw withRetryAfter(reply, err as Error, options.retryAfter)
    }
    return { channel, status: 'disconnected' as const }
  })
}

/**
 * Routes that change state, registered without `authorize`, are open to anyone who can reach them: say so once,
 * at startup, naming them and how to close them.
 */
function warnOpenRoutes (fastify: FastifyInstance, options: NormalizedOptions): void {
  if (options.authorize !== null) return
  const { prefix, routes } = options
  const open = [
    routes.push ? `POST ${prefix}/push` : null,
    routes.disconnect ? `DELETE ${prefix}/disconnect` : null,
    routes.queues ? `${prefix}/queues/*` : null
  ].filter((route) => route !== null)
  if (open.length === 0) return
  const off = [routes.push ? 'push: false' : null, routes.disconnect ? 'disconnect: false' : null, routes.queues ? 'queues: false' : null]
    .filter((route) => route !== null).join(', ')
  fastify.log.warn({ routes: open },
    `fastify-longpoll: ${open.join(', ')} ${open.length === 1 ? 'is' : 'are'} registered without an authorize hook: anyone who can reach ` +
    `${open.length === 1 ? 'it' : 'them'} can publish to or clear any channel, or take jobs. Pass \`authorize\` to check each request, ` +
    `or turn ${open.length === 1 ? 'it' : 'them'} off with \`routes: { ${off} }\` and use app.longpoll on the server`)
}

export const fastifyLongpoll = fp(plugin, { fastify: '5.x', name: 'fastify-longpoll' })
