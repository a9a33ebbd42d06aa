import type { FastifyInstance, FastifyRequest, RouteShorthandOptions } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { withRetryAfter } from '../answers.js'
import { errors } from '../errors.js'
import type { LongPollAction, NormalizedOptions } from '../options.js'
import { ErrorAnswer } from '../schemas.js'
import { JOB_KEY_PATTERN, type Queues } from './queues.js'
import { AckAnswer, ackBody, ClaimAnswer, claimBody, CountsAnswer, DuplicateAnswer, EnqueueAnswer, enqueueBody, ExtendAnswer, ExtendBody, NackAnswer, NackBody, QueueParams } from './schemas.js'

const errorAnswers = { 400: ErrorAnswer, 403: ErrorAnswer, 409: ErrorAnswer, 413: ErrorAnswer, 500: ErrorAnswer, 503: ErrorAnswer }
/** Room for `{"data":…,"delay":…,"key":…}` around the data, whose own size `maxMessageBytes` bounds. */
const ENQUEUE_ENVELOPE_BYTES = 1024

/*
 * Queue names may be as long as channelPattern allows (200 by default), but Fastify refuses a path parameter
 * longer than the server's `maxParamLength` (default 100) — a setting of the whole server, which a plugin must
 * not change. So the routes are wildcards, `POST /queues/*`, which no length limit applies to, told apart by a
 * router constraint derived from the last path segment (`jobs`, `claim`, `ack`, `nack`, `extend`). Each action
 * keeps its own route, schema and handler. The constraint is derived for every request of the server (a
 * lastIndexOf and a slice), and routes without it are unaffected (`mustMatchWhenDerived: false`).
 */
const ACTION_CONSTRAINT = 'fastifyLongpollQueueAction'

function addActionConstraint (fastify: FastifyInstance): void {
  if (fastify.hasConstraintStrategy(ACTION_CONSTRAINT)) return // a second registration of the plugin
  fastify.addConstraintStrategy({
    name: ACTION_CONSTRAINT,
    storage () {
      const handlers = new Map<string, unknown>()
      return { get: (action: string) => handlers.get(action) ?? null, set: (action: string, store: unknown) => { handlers.set(action, store) } }
    },
    deriveConstraint (request: { url: string }) {
      const { url } = request
      const query = url.indexOf('?')
      const end = query < 0 ? url.length : query
      return url.slice(url.lastIndexOf('/', end - 1) + 1, end)
    },
    mustMatchWhenDerived: false
  } as Parameters<FastifyInstance['addConstraintStrategy']>[0])
}

/** `'*'` of `POST /queues/*`: the queue is everything before the last `/`, the action after it. */
function queueOf (wildcard: string, queues: Queues): string {
  const slash = wildcard.lastIndexOf('/')
  return queues.checkQueue(slash < 0 ? '' : wildcard.slice(0, slash))
}

/** The queue routes (contract §3), registered in the plugin's prefixed scope. */
export function queueRoutes (fastify: FastifyInstance, options: NormalizedOptions, queues: Queues): void {
  addActionConstraint(fastify)
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>()
  const { claims } = queues

  async function authorize (request: FastifyRequest, action: LongPollAction, queue: string): Promise<void> {
    if (options.authorize === null) return
    if (await options.authorize(request, { action, channel: queue, queue }) !== true) throw new errors.QueueForbidden(action, queue)
  }

  const on = (action: string): RouteShorthandOptions => ({ constraints: { [ACTION_CONSTRAINT]: action } })
  const lease = (ms: number | undefined): number => Math.min(ms ?? options.lease, options.maxLease)

  app.post('/queues/*', {
    ...on('jobs'),
    bodyLimit: options.maxMessageBytes + ENQUEUE_ENVELOPE_BYTES,
    schema: {
      summary: 'Enqueue a job',
      params: QueueParams,
      body: enqueueBody(JOB_KEY_PATTERN),
      response: { 201: EnqueueAnswer, 200: DuplicateAnswer, ...errorAnswers }
    }
  }, async (request, reply) => {
    const queue = queueOf(request.params['*'], queues)
    await authorize(request, 'enqueue', queue)
    const { data, delay, key } = request.body
    try {
      const { id, duplicate } = await queues.enqueue(queue, data, { ...(delay === undefined ? {} : { delay }), ...(key === undefined ? {} : { key }) })
      if (duplicate) return { id, duplicate: true as const }
      reply.code(201)
      return { id }
    } catch (err) {
      throw withRetryAfter(reply, err as Error, options.retryAfter)
    }
  })

  // A held claim needs a handler timeout above maxTimeout, as a held poll does (see plugin.ts).
  const serverHandlerTimeout = (fastify.initialConfig as { handlerTimeout?: number }).handlerTimeout ?? 0
  const claimHandlerTimeout = serverHandlerTimeout > 0 && serverHandlerTimeout <= options.maxTimeout + 5_000
    ? { handlerTimeout: options.maxTimeout + 30_000 }
    : {}

  app.post('/queues/*', {
    ...on('claim'),
    ...claimHandlerTimeout,
    // A claim with no body at all takes every default.
    preValidation: (request, reply, done) => {
      if (request.body === undefined || request.body === null) request.body = {}
      done()
    },
    schema: {
      summary: 'Wait for jobs and lease them',
      params: QueueParams,
      body: claimBody(options.maxBatch),
      response: { 200: ClaimAnswer, ...errorAnswers }
    }
  }, (request, reply) => {
    // Not async, like the poll route: no Reply#then machinery per held claim.
    const queue = queueOf(request.params['*'], queues)
    const { timeout, limit } = request.body
    const holdFor = Math.min(timeout ?? options.timeout, options.maxTimeout)
    const claim = { limit: limit ?? 1, lease: lease(request.body.lease), maxAttempts: options.maxAttempts }
    const run = (): Promise<void> => holdFor === 0 ? claims.shortClaim(reply, queue, claim) : claims.hold(reply, queue, claim, holdFor)
    const fail = (err: Error): void => { if (!reply.sent) claims.reject(reply, err) }
    if (options.authorize === null) run().catch(fail)
    else authorize(request, 'claim', queue).then(run).catch(fail)
  })

  app.post('/queues/*', {
    ...on('ack'),
    schema: {
      summary: 'Acknowledge jobs: they are done and gone',
      params: QueueParams,
      body: ackBody(options.maxBatch),
      response: { 200: AckAnswer, ...errorAnswers }
    }
  }, async (request, reply) => {
    const queue = queueOf(request.params['*'], queues)
    const { receipt, receipts } = request.body
    if ((receipt === undefined) === (receipts === undefined)) throw new errors.BadReceipts()
    await authorize(request, 'settle', queue)
    try {
      return { acked: await queues.ack(queue, receipts ?? [receipt as string]) }
    } catch (err) {
      throw withRetryAfter(reply, err as Error, options.retryAfter)
    }
  })

  app.post('/queues/*', {
    ...on('nack'),
    schema: {
      summary: 'Give a job back: available again after `delay`, or dead after maxAttempts',
      params: QueueParams,
      body: NackBody,
      response: { 200: NackAnswer, ...errorAnswers }
    }
  }, async (request, reply) => {
    const queue = queueOf(request.params['*'], queues)
    const { receipt, delay, error } = request.body
    await authorize(request, 'settle', queue)
    try {
      return { state: await queues.nack(queue, receipt, delay ?? 0, error) }
    } catch (err) {
      throw withRetryAfter(reply, err as Error, options.retryAfter)
    }
  })

  app.post('/queues/*', {
    ...on('extend'),
    schema: {
      summary: 'Extend a job\'s lease (a heartbeat for long jobs)',
      params: QueueParams,
      body: ExtendBody,
      response: { 200: ExtendAnswer, ...errorAnswers }
    }
  }, async (request, reply) => {
    const queue = queueOf(request.params['*'], queues)
    const { receipt } = request.body
    await authorize(request, 'settle', queue)
    try {
      return { leaseUntil: await queues.extend(queue, receipt, lease(request.body.lease)) }
    } catch (err) {
      throw withRetryAfter(reply, err as Error, options.retryAfter)
    }
  })

  app.get('/queues/*', {
    exposeHeadRoute: false,
    schema: {
      summary: 'Count a queue\'s jobs: waiting, delayed, leased, dead',
      params: QueueParams,
      response: { 200: CountsAnswer, ...errorAnswers }
    }
  }, async (request, reply) => {
    const queue = queues.checkQueue(request.params['*'])
    await authorize(request, 'claim', queue)
    try {
      return await queues.counts(queue)
    } catch (err) {
      throw withRetryAfter(reply, err as Error, options.retryAfter)
    }
  })
}
