import { fastifyLongpoll } from './plugin.js'

export { fastifyLongpoll }
export default fastifyLongpoll

export { errors, type LongPollErrorCode } from './errors.js'
export { emptyCursorFits, emptyEpoch, emptyEpochFor, formatCursor, parsePosition, type Cursor, type Position } from './cursor.js'
export { DEFAULT_CHANNEL_PATTERN, type Authorize, type AuthorizeContext, type LongPollAction, type LongPollOptions, type LongPollRoutes } from './options.js'
export type { LongPollApi, LongPollStats, PushManyMessage, PushOptions, PushResult } from './longpoll.js'
export type { MetricsOptions, MetricsRegistry } from './metrics.js'
export type { PollAnswerBody, PollMessage } from './schemas.js'
export { MemoryStore, type MemoryStoreOptions } from './stores/memory.js'
export type { AppendItem, AppendResult, ChannelRead, IdempotencyKey, LongPollStore, ReadResult, Retention, StoredMessage } from './stores/types.js'
export { MemoryBus, MemoryNotifier, type MemoryNotifierOptions } from './notifiers/memory.js'
export type { ChannelEvent, LongPollNotifier, NotifierHandlers, NotifierLogger } from './notifiers/types.js'
export { RedisStore, type RedisStoreOptions, type RedisClient } from './stores/redis.js'
export { RedisNotifier, type RedisNotifierOptions, type RedisNotifierLogger } from './notifiers/redis.js'
export { MemoryQueueStore, type MemoryQueueStoreOptions } from './queues/memory.js'
export type { ClaimedJob, ClaimRequest, ClaimResult, DeadJob, EnqueueRequest, EnqueueResult, LongPollQueueStore, NackRequest, NackResult, QueueCounts } from './queues/types.js'
export type { DeadLetter, EnqueueOptions, QueueApi } from './queues/queues.js'
export type { ClaimAnswerBody, ClaimJob } from './queues/schemas.js'
export type { NotifierEvent, NotifierNamespace, QueueEvent } from './notifiers/types.js'
export { RedisQueueStore, type RedisQueueStoreOptions } from './queues/redis.js'
