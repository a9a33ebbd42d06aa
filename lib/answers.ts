import type { FastifyReply } from 'fastify'
import { formatCursor } from './cursor.js'
import type { StoredMessage } from './stores/types.js'

// Poll answers are built as text from the stored JSON of each message, so data is serialized once, at push,
// and one answer shared by many held polls is encoded once and written as the same bytes.

export type PollStatus = 'ok' | 'timeout' | 'disconnected'

export function answerBody (status: PollStatus, epoch: string, messages: StoredMessage[], seq: number, gap: boolean): Buffer {
  let items = ''
  for (let i = 0; i < messages.length; i++) {
    const message = messages[i] as StoredMessage
    items += `${i === 0 ? '' : ','}{"id":"${formatCursor(epoch, message.seq)}","data":${message.json},"time":${message.time}}`
  }
  const gapField = gap ? ',"gap":true' : ''
  return Buffer.from(`{"status":"${status}","messages":[${items}],"cursor":"${formatCursor(epoch, seq)}"${gapField}}`)
}

/** A 503 (limit reached, closing, store or notifier unavailable) is worth retrying: say when, in `Retry-After`. */
export function withRetryAfter (reply: FastifyReply, err: Error, seconds: number): Error {
  if ((err as { statusCode?: number }).statusCode === 503) reply.header('retry-after', String(seconds))
  return err
}
