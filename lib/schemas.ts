import { Type, type Static } from '@sinclair/typebox'

// Route schemas. They validate requests (through the TypeBox type provider) and document every answer.
// Poll answers are written as pre-serialized JSON (see answers.ts), so their schema documents, not encodes.

export function pollQuery (channelPattern: RegExp, maxBatch: number, maxChannels: number) {
  const channel = Type.String({ pattern: channelPattern.source })
  return Type.Object({
    // A union rather than an array alone: a one-channel poll validates whatever the app's Ajv coercion says.
    channel: Type.Union([channel, Type.Array(channel, { minItems: 1, maxItems: maxChannels, uniqueItems: true })], {
      description: `The channel to poll; repeat the parameter to follow up to ${maxChannels} channels in one poll.`
    }),
    cursor: Type.Optional(Type.String({
      maxLength: 65 * maxChannels,
      description: '`latest`, or a cursor (or message id) from an earlier answer. Absent: the oldest retained message. ' +
        'For k channels: k comma-separated entries aligned with the channels, each empty, `latest` or a cursor.'
    })),
    timeout: Type.Optional(Type.Integer({ minimum: 0, description: 'Milliseconds to hold the poll; clamped to maxTimeout; 0 answers at once.' })),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: maxBatch, description: 'Most messages in the answer.' }))
  }, { additionalProperties: true })
}

export function pushBody (channelPattern: RegExp) {
  return Type.Object({
    channel: Type.String({ pattern: channelPattern.source }),
    data: Type.Unknown({ description: 'Any JSON value.' })
  })
}

export const pushHeaders = Type.Object({
  'idempotency-key': Type.Optional(Type.String({ description: '1-200 visible ASCII characters: a repeat on the channel within idempotencyTtl stores nothing and answers the first id.' }))
})

export function channelQuery (channelPattern: RegExp) {
  return Type.Object({ channel: Type.String({ pattern: channelPattern.source }) })
}

export const Message = Type.Object({
  id: Type.String(),
  data: Type.Unknown(),
  time: Type.Integer({ description: 'Milliseconds since the Unix epoch when the message was stored.' }),
  channel: Type.Optional(Type.String({ description: 'The message\'s channel, in the answer of a poll of several channels.' }))
})

export const PollAnswer = Type.Object({
  status: Type.Union([Type.Literal('ok'), Type.Literal('timeout'), Type.Literal('disconnected')]),
  messages: Type.Array(Message),
  cursor: Type.String({ description: 'Pass it back on the next poll (for k channels: k comma-separated entries).' }),
  gap: Type.Optional(Type.Literal(true)),
  gaps: Type.Optional(Type.Array(Type.String(), { description: 'Channels that had a gap (polls of several channels).' })),
  disconnected: Type.Optional(Type.Array(Type.String(), { description: 'Channels disconnected while held (polls of several channels).' }))
})

export const PushAnswer = Type.Object({
  id: Type.String(),
  online: Type.Boolean({ description: 'Some instance holds a poll on the channel, or answered one within presenceWindow.' }),
  duplicate: Type.Optional(Type.Literal(true, { description: 'The Idempotency-Key repeated an earlier push: nothing new was stored; id is the first push\'s.' }))
})

export const DisconnectAnswer = Type.Object({ channel: Type.String(), status: Type.Literal('disconnected') })

export const ErrorAnswer = Type.Object({
  statusCode: Type.Integer(),
  // Optional: an error thrown by the user's authorize hook (a plain Error, an http-errors object) has none.
  code: Type.Optional(Type.String()),
  error: Type.String(),
  message: Type.String()
})

export type PollMessage = Static<typeof Message>
export type PollAnswerBody = Static<typeof PollAnswer>
