import { Type, type Static } from '@sinclair/typebox'

// Queue route schemas. They validate requests (through the TypeBox type provider) and document every answer.
// Claim answers are written as pre-serialized JSON (see claims.ts), so their schema documents, not encodes.

const Milliseconds = (description: string, minimum = 0) => Type.Integer({ minimum, maximum: 2_147_483_647, description })
const Receipt = Type.String({ minLength: 1, maxLength: 256, description: 'The receipt of a job\'s current lease, from a claim answer.' })

/** `'*'` is `<queue>/<action>` (or `<queue>` for the counts): a wildcard, so no maxParamLength applies. */
export const QueueParams = Type.Object({ '*': Type.String({ description: 'The queue name (it matches channelPattern), then the action.' }) })

export function enqueueBody (keyPattern: RegExp) {
  return Type.Object({
    data: Type.Unknown({ description: 'Any JSON value: the job.' }),
    delay: Type.Optional(Milliseconds('Milliseconds before the job may be claimed.')),
    key: Type.Optional(Type.String({ pattern: keyPattern.source, description: 'De-duplicating key (1–200 visible ASCII characters): a repeat within idempotencyTtl stores nothing.' }))
  })
}

export function claimBody (maxBatch: number) {
  return Type.Object({
    timeout: Type.Optional(Type.Integer({ minimum: 0, description: 'Milliseconds to hold the claim; clamped to maxTimeout; 0 answers at once.' })),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: maxBatch, description: 'Most jobs in the answer. Default 1.' })),
    lease: Type.Optional(Type.Integer({ minimum: 1, description: 'Milliseconds the jobs are this worker\'s alone; clamped to maxLease.' }))
  })
}

export function ackBody (maxBatch: number) {
  return Type.Object({
    receipt: Type.Optional(Receipt),
    receipts: Type.Optional(Type.Array(Receipt, { minItems: 1, maxItems: maxBatch }))
  })
}

export const NackBody = Type.Object({
  receipt: Receipt,
  delay: Type.Optional(Milliseconds('Milliseconds before the job may be claimed again.')),
  error: Type.Optional(Type.String({ maxLength: 4096, description: 'Why the job failed; a dead letter keeps the last one.' }))
})

export const ExtendBody = Type.Object({
  receipt: Receipt,
  lease: Type.Integer({ minimum: 1, description: 'Milliseconds from now the lease lasts; clamped to maxLease.' })
})

export const Job = Type.Object({
  id: Type.String(),
  data: Type.Unknown(),
  attempt: Type.Integer({ minimum: 1, description: '1 for the first lease of the job.' }),
  receipt: Type.String({ description: 'Proof of this lease, for ack, nack and extend.' }),
  leaseUntil: Type.Integer({ description: 'Epoch ms when the lease passes.' }),
  time: Type.Integer({ description: 'Epoch ms when the job was enqueued.' })
})

export const ClaimAnswer = Type.Object({
  status: Type.Union([Type.Literal('ok'), Type.Literal('timeout')]),
  jobs: Type.Array(Job)
})

export const EnqueueAnswer = Type.Object({ id: Type.String() })
export const DuplicateAnswer = Type.Object({ id: Type.String(), duplicate: Type.Literal(true) })
export const AckAnswer = Type.Object({ acked: Type.Integer() })
export const NackAnswer = Type.Object({ state: Type.Union([Type.Literal('waiting'), Type.Literal('delayed'), Type.Literal('dead')]) })
export const ExtendAnswer = Type.Object({ leaseUntil: Type.Integer() })
export const CountsAnswer = Type.Object({ waiting: Type.Integer(), delayed: Type.Integer(), leased: Type.Integer(), dead: Type.Integer() })

export type ClaimJob = Static<typeof Job>
export type ClaimAnswerBody = Static<typeof ClaimAnswer>
