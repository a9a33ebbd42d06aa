import { errors } from './errors.js'

/** What an idempotency key may be — a push's `Idempotency-Key`, a job's `key`: 1–200 visible ASCII characters. */
export const IDEMPOTENCY_KEY_PATTERN = /^[\x21-\x7E]{1,200}$/

/**
 * A message's or a job's `data` as the JSON that is stored, serialized once here and never again (answers embed
 * it as it is). Coded errors for what JSON cannot encode, for no data, and for more than `maxBytes`.
 */
export function encodeData (data: unknown, maxBytes: number): string {
  let json: string | undefined
  try {
    json = JSON.stringify(data)
  } catch (err) {
    throw new errors.BadData((err as Error).message)
  }
  if (json === undefined) throw new errors.MissingData()
  const bytes = Buffer.byteLength(json)
  if (bytes > maxBytes) throw new errors.MessageTooLarge(bytes, maxBytes)
  return json
}
