import type { FastifyReply } from 'fastify'
import { formatCursor } from './cursor.js'
import type { StoredMessage } from './stores/types.js'

// Poll answers are built as text from the stored JSON of each message, so data is serialized once, at push,
// and one answer shared by many held polls is encoded once and written as the same bytes.

export type PollStatus = 'ok' | 'timeout' | 'disconnected'

/** What one channel of a poll contributes to its answer. */
export interface ChannelPart {
  /** The channel name, JSON-encoded once (a custom channel pattern may allow characters JSON escapes). */
  channelJson: string
  /** The answer's cursor entry for the channel. */
  epoch: string
  seq: number
  /** The channel's messages in this answer, in push order. */
  messages: StoredMessage[]
  gap: boolean
  disconnected: boolean
}

/** The answer of a one-channel poll: exactly the v1 shape, with no `channel` on its messages. */
export function answerBody (status: PollStatus, epoch: string, messages: StoredMessage[], seq: number, gap: boolean): Buffer {
  let items = ''
  for (let i = 0; i < messages.length; i++) {
    const message = messages[i] as StoredMessage
    items += `${i === 0 ? '' : ','}{"id":"${formatCursor(message.epoch ?? epoch, message.seq)}","data":${message.json},"time":${message.time}}`
  }
  const gapField = gap ? ',"gap":true' : ''
  return Buffer.from(`{"status":"${status}","messages":[${items}],"cursor":"${formatCursor(epoch, seq)}"${gapField}}`)
}

/**
 * The answer of a poll of k channels. With k = 1 it is `answerBody`'s; with k >= 2 every message carries its
 * channel, messages are interleaved round-robin over the channels (each channel's in push order), the cursor is
 * k comma-separated entries aligned with the request's channels, and `gaps` / `disconnected` name channels.
 */
export function pollAnswerBody (status: PollStatus, parts: ChannelPart[]): Buffer {
  if (parts.length === 1) {
    const part = parts[0] as ChannelPart
    return answerBody(status, part.epoch, part.messages, part.seq, part.gap)
  }
  let items = ''
  let cursor = ''
  let gaps = ''
  let disconnected = ''
  let rounds = 0
  for (let p = 0; p < parts.length; p++) {
    const part = parts[p] as ChannelPart
    if (part.messages.length > rounds) rounds = part.messages.length
    cursor += `${p === 0 ? '' : ','}${formatCursor(part.epoch, part.seq)}`
    if (part.gap) gaps += `${gaps === '' ? '' : ','}${part.channelJson}`
    if (part.disconnected) disconnected += `${disconnected === '' ? '' : ','}${part.channelJson}`
  }
  for (let r = 0; r < rounds; r++) {
    for (const part of parts) {
      const message = part.messages[r]
      if (message === undefined) continue
      items += `${items === '' ? '' : ','}{"id":"${formatCursor(message.epoch ?? part.epoch, message.seq)}","data":${message.json},"time":${message.time},"channel":${part.channelJson}}`
    }
  }
  const gapFields = gaps === '' ? '' : `,"gap":true,"gaps":[${gaps}]`
  const disconnectedField = disconnected === '' ? '' : `,"disconnected":[${disconnected}]`
  return Buffer.from(`{"status":"${status}","messages":[${items}],"cursor":"${cursor}"${gapFields}${disconnectedField}}`)
}

/**
 * How many of each channel's pending messages an answer of at most `limit` takes: round-robin over the channels
 * that have some, so that a busy channel never starves a quiet one (with `limit` at least the number of such
 * channels, each gets at least one). Channels marked in `skip` take none.
 */
export function roundRobin (pending: number[], limit: number, skip?: boolean[]): number[] {
  const taken = pending.map(() => 0)
  let left = limit
  let progress = true
  while (left > 0 && progress) {
    progress = false
    for (let i = 0; i < pending.length && left > 0; i++) {
      if (skip?.[i] === true || (taken[i] as number) >= (pending[i] as number)) continue
      taken[i] = (taken[i] as number) + 1
      left--
      progress = true
    }
  }
  return taken
}

/**
 * A 503 (limit reached, closing, store or notifier unavailable) or a 429 (this client's limit) is worth
 * retrying: say when, in `Retry-After`.
 */
export function withRetryAfter (reply: FastifyReply, err: Error, seconds: number): Error {
  const status = (err as { statusCode?: number }).statusCode
  if (status === 503 || status === 429) reply.header('retry-after', String(seconds))
  return err
}
