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

const EMPTY_EPOCH_PATTERN = /^_\d{1,15}$/

/**
 * The epoch of a channel with no life (never pushed, expired, or disconnected): `_<ms>`, a time at which the
 * store saw it with no life (see `emptyCursorFits`). Stores keep nothing for such a channel, so polling names
 * that never get a message costs nothing once the polls end; random epochs never contain `_`. The time is
 * rounded down to the second (but not before `ended`, the end of its previous life), so that polls held on
 * one empty channel mostly share one cursor, and so one read when its first message arrives.
 */
export function emptyEpoch (now: number, ended: number): string {
  return `_${Math.max(now - (now % 1000), ended)}`
}

/**
 * The epoch to answer for a channel with no life, read at `now` from `position`: the empty-channel cursor
 * the poll started from while it is fresh (within `keep / 2`), so an empty answer hands back the cursor it
 * started from, else a new one.
 */
export function emptyEpochFor (position: Position, now: number, ended: number, keep: number, fits: boolean): string {
  if (fits && now - Number((position as Cursor).epoch.slice(1)) < keep / 2) return (position as Cursor).epoch
  return emptyEpoch(now, ended)
}

/**
 * Whether `cursor`, an empty-channel cursor `_<t>.0`, is the position before the first message of a life that
 * began at `began` (or, for a channel still with no life, at the time of the read) when the life before it, if
 * any, ended at `ended`. A life that began after t and ended unseen before `began` would have lasted at least
 * `keep` (the store's emptyChannelTtl) unless it was disconnected, and a disconnect is remembered for `keep`:
 * so t must be at or after `ended`, and `began` within `keep` of t. lib/redis/scripts/includes/channel-life.lua
 * is the same rule in Lua.
 */
export function emptyCursorFits (cursor: Cursor, began: number, ended: number, keep: number): boolean {
  if (cursor.seq !== 0 || !EMPTY_EPOCH_PATTERN.test(cursor.epoch)) return false
  const t = Number(cursor.epoch.slice(1))
  return t <= began && began - t < keep && t >= ended
}
