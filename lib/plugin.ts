import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyPluginAsync, FastifyRequest } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { withRetryAfter } from './answers.js'
import { parsePosition } from './cursor.js'
import { errors } from './errors.js'
import { LongPoll, type LongPollApi } from './longpoll.js'
import { normalizeOptions, type LongPollAction, type LongPollOptions, type NormalizedOptions } from './options.js'
import { Queues, type QueueApi } from './queues/queues.js'
import { queueRoutes } from './queues/routes.js'
import type { ChannelEvent, QueueEvent } from './notifiers/types.js'
import { channelQuery, DisconnectAnswer, ErrorAnswer, PollAnswer, pollQuery, pushBody, PushAnswer } from './schemas.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** Server-side push, disconnect, stats and queues of fastify-longpoll. */
    longpoll: LongPollApi & {
      /** The server side of a queue: enqueue, counts, dead letters. Throws FST_LONGPOLL_BAD_QUEUE for a bad name. */
      queue (name: string): QueueApi
    }
  }
}

const errorAnswers = { 400: ErrorAnswer, 403: ErrorAnswer, 413: ErrorAnswer, 500: ErrorAnswer, 503: ErrorAnswer }
/** Room for `{"channel":…,"data":…}` around the data, whose own size `maxMessageBytes` bounds. */
const PUSH_ENVELOPE_BYTES = 1024

const plugin: FastifyPluginAsync<LongPollOptions> = async (fastify, rawOptions) => {
  const options = normalizeOptions(rawOptions)
  const longpoll = new LongPoll(options, fastify.log)
  const { hub } = longpoll
  const queues = new Queues(options, fastify.log, () => hub.heldPolls)
  hub.heldElsewhere = () => queues.claims.heldClaims

  await options.notifier.start({
    // A channel and a queue of one name are separate topics: events come back with their namespace.
    event: (name, event, namespace) => namespace === 'queue'
      ? queues.claims.event(name, event as QueueEvent)
      : hub.event(name, event as ChannelEvent),
    resync: () => { hub.resync(); queues.claims.resync() },
    log: fastify.log
  })

  fastify.decorate('longpoll', Object.freeze({
    push: (channel: string, data: unknown) => longpoll.push(channel, data),
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

  // fastify-plugin makes Fastify ignore `prefix`, so the routes live in an inner, encapsulated plugin.
  await fastify.register(async (scope) => {
    await routes(scope, options, longpoll)
    if (options.routes.queues) queueRoutes(scope, options, queues)
  }, { prefix: options.prefix })
}

async function routes (fastify: FastifyInstance, options: NormalizedOptions, longpoll: LongPoll): Promise<void> {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>()
  const { hub } = longpoll

  async function authorize (request: FastifyRequest, action: LongPollAction, channel: string): Promise<void> {
    if (options.authorize === null) return
    if (await options.authorize(request, { action, channel }) !== true) throw new errors.Forbidden(action, channel)
  }

  // A server-wide handlerTimeout shorter than a held poll would answer held polls with 503: give the poll
  // route its own, above maxTimeout. With none set, set none (it costs a timer per request).
  const serverHandlerTimeout = (fastify.initialConfig as { handlerTimeout?: number }).handlerTimeout ?? 0
  const pollHandlerTimeout = serverHandlerTimeout > 0 && serverHandlerTimeout <= options.maxTimeout + 5_000
    ? { handlerTimeout: options.maxTimeout + 30_000 }
    : {}

  app.get('/poll', {
    ...pollHandlerTimeout,
    exposeHeadRoute: false, // a HEAD request would hold a poll only to throw its answer away
    schema: {
      summary: 'Wait for messages on a channel',
      querystring: pollQuery(options.channelPattern, options.maxBatch),
      response: { 200: PollAnswer, ...errorAnswers }
    }
  }, (request, reply) => {
    // Not async, and never `return reply`: a handler that resolves with the reply makes the promise machinery
    // call Reply#then, which attaches end-of-stream listeners (eos) to every held poll until it is answered —
    // ~1.7 KB of heap and ~20 µs of CPU per poll (bench/results/candidates/). Fastify waits for reply.send()
    // when a handler returns undefined, and answers a synchronous throw (a bad cursor) with its error.
    const { channel, cursor, timeout, limit } = request.query
    const position = parsePosition(cursor)
    const holdFor = Math.min(timeout ?? options.timeout, options.maxTimeout)
    const batch = limit ?? options.maxBatch
    const run = (): Promise<void> => holdFor === 0
      ? hub.shortPoll(reply, channel, position, batch)
      : hub.hold(reply, channel, position, batch, holdFor)
    const fail = (err: Error): void => { if (!reply.sent) hub.reject(reply, err) }
    if (options.authorize === null) run().catch(fail)
    else authorize(request, 'poll', channel).then(run).catch(fail)
  })

  app.post('/push', {
    bodyLimit: options.maxMessageBytes + PUSH_ENVELOPE_BYTES,
    schema: {
      summary: 'Store a message on a channel and wake its polls',
      body: pushBody(options.channelPattern),
      response: { 200: PushAnswer, ...errorAnswers }
    }
  }, async (request, reply) => {
    const { channel, data } = request.body
    await authorize(request, 'push', channel)
    try {
      return await longpoll.push(channel, data)
    } catch (err) {
      throw withRetryAfter(reply, err as Error, options.retryAfter)
    }
  })

  app.delete('/disconnect', {
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

export const fastifyLongpoll = fp(plugin, { fastify: '5.x', name: 'fastify-longpoll' })
