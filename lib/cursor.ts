import { errors } from './errors.js'

/**
 * A position in one life ("epoch") of a channel: the sequence number of the last message seen.
 * Its text form `<epoch>.<seq>` is both a message id and a cursor, so an id is always a valid cursor,
 * and a cursor from another life of the channel can be recognised instead of being read as a position.
 */
export interface Cursor {
  /** Identifies one life of a channel; it changes when the channel is disconnected or its store restarts. */
  epoch: string
  /** 0 before the first message of the life; message n has seq n. */
  seq: number
}

/** Where a poll starts: the oldest retained message, after the newest one, or after a cursor. */
export type Position = 'oldest' | 'latest' | Cursor

export const EPOCH_PATTERN = /^[A-Za-z0-9_-]{1,32}$/
const CURSOR_PATTERN = /^([A-Za-z0-9_-]{1,32})\.(0|[1-9][0-9]{0,15})$/

export function formatCursor (epoch: string, seq: number): string {
  return `${epoch}.${seq}`
}

/** Parses the `cursor` query parameter; throws FST_LONGPOLL_BAD_CURSOR (400) when it is malformed. */
export function parsePosition (text: string | undefined): Position {
  if (text === undefined) return 'oldest'
  if (text === 'latest') return 'latest'
  const match = CURSOR_PATTERN.exec(text)
  if (match === null) throw new errors.BadCursor(text.slice(0, 80), 'expected "latest" or a cursor from an earlier answer')
  const seq = Number(match[2])
  if (!Number.isSafeInteger(seq)) throw new errors.BadCursor(text.slice(0, 80), 'sequence number out of range')
  return { epoch: match[1] as string, seq }
}

/**
 * Parses the `cursor` of a poll of `k` channels: absent (every channel from its oldest retained message) or
 * exactly k comma-separated entries, each empty (oldest), `latest`, or a cursor. With k = 1 it is
 * `parsePosition`: a cursor never contains a comma.
 */
export function parsePositions (text: string | undefined, k: number): Position[] {
  if (k === 1) return [parsePosition(text)]
  if (text === undefined) return new Array<Position>(k).fill('oldest')
  const entries = text.split(',')
  if (entries.length !== k) {
    throw new errors.BadCursor(text.slice(0, 80), `expected ${k} comma-separated entries, one per channel, got ${entries.length}`)
  }
  return entries.map((entry) => entry === '' ? 'oldest' : parsePosition(entry))
}

/** A new random epoch: 12 base-36 characters, about 62 bits. */
export function newEpoch (): string {
  let out = ''
  while (out.length < 12) out += Math.random().toString(36).slice(2)
  return out.slice(0, 12)
}
