// Model-based delivery tests (issue 12, item 5): random sequences of pushes, polls, aborts, timeouts,
// disconnects, restarts and (Redis) subscriber kills, run against real listening apps over real HTTP and
// against a small reference model of the contract (§1.1–1.4, §1.6). Every answer a client gets is compared
// with the one the model predicts, and after each sequence every client's received messages must equal the
// model's: in order, exactly once, gaps exactly where the model has them.
//
// Determinism: commands run one at a time and each waits for every answer it causes (a push waits for the
// polls it wakes, a timeout poll for its timeout), and a held poll is known to be held (its first store read
// has returned) before the next command runs. So every answer is determined by the sequence, and the model
// predicts it exactly, without weakening any assertion.
import { request as httpRequest, type ClientRequest } from 'node:http'
import fc from 'fast-check'
import type { FastifyInstance } from 'fastify'
import type { ChannelRead, LongPollStore, ReadResult } from '../../lib/stores/types.js'
import type { Position } from '../../lib/cursor.js'

/** Few channel names, so that clients collide on them. */
export const CHANNELS = ['a', 'b', 'c'] as const
/** Each client starts following these channels (one, two and three channels: both answer shapes). */
const INITIAL_CHANNELS: string[][] = [['a'], ['b', 'a'], ['a', 'b', 'c']]
/** A held poll that must not time out during a sequence (it ends by a wake-up, an abort or a close). */
const LONG_TIMEOUT = 30_000
/** How long an answer the model expects may take on a loaded 2-core machine before the run fails. */
const ANSWER_BOUND = 15_000

// ——— the model ———

/** What the sequences exercised (answers by kind, gaps by cause, faults), printed by the tests as coverage. */
export const tally = new Map<string, number>()
function count (what: string): void {
  tally.set(what, (tally.get(what) ?? 0) + 1)
}

/** A position in one life of a channel; lives are numbered by the model, epochs are the store's. */
interface Place { life: number, seq: number }
/** What a client holds for one channel: its backlog, `latest`, or a concrete cursor. */
type Entry = 'oldest' | 'latest' | Place

interface ModelMessage { seq: number, n: number }

interface ModelChannel {
  life: number
  /** Seq of the newest message of this life (0 before the first). */
  lastSeq: number
  /** The newest `maxMessages` messages of the life (retention by count; `messageTtl` is set far away). */
  retained: ModelMessage[]
}

/** A poll the model knows is held: its cursor entries are concrete, its gap flags are those of its first read. */
interface ModelHeld {
  instance: number
  limit: number
  places: Place[]
  gaps: boolean[]
}

interface ModelClient {
  channels: string[]
  entries: Entry[]
  /** The entries before the latest answer (see `undo`). */
  previous: Entry[]
  held: ModelHeld | null
  /** What the client received, one line per message or gap, e.g. `a L3.2 #17` or `a gap`. */
  received: string[]
}

/** An answer as the model predicts it, or as the harness reads it from a response (epochs mapped to lives). */
export interface Answer {
  status: 'ok' | 'timeout' | 'disconnected'
  messages: Array<{ channel: string, life: number, seq: number, n: number }>
  /** Cursor entries aligned with the poll's channels; `life` is null for an unmapped seq-0 entry. */
  cursor: Array<{ life: number | null, seq: number }>
  gaps: string[]
  disconnected: string[]
}

export interface Settings {
  maxMessages: number
  /** Redis: the presenceWindow (0 makes every channel unsubscribe and re-subscribe between polls). */
  presenceWindow: number
}

export class Model {
  readonly channels = new Map<string, ModelChannel>()
  readonly clients: ModelClient[]
  private lives = 0
  private pushes = 0

  constructor (readonly settings: Settings, readonly instances: number) {
    for (const name of CHANNELS) this.channels.set(name, this.newLife())
    this.clients = INITIAL_CHANNELS.map((channels) => ({ channels: [...channels], entries: channels.map(() => 'oldest'), previous: [], held: null, received: [] }))
  }

  private newLife (): ModelChannel {
    return { life: ++this.lives, lastSeq: 0, retained: [] }
  }

  /**
   * The channel is disconnected: a new, empty life follows — also after a life that never had a message, whose
   * cursors belong to the life that ended (§1.4; the stores remember a disconnect for emptyChannelTtl).
   */
  private endLife (name: string): void {
    this.channels.set(name, this.newLife())
  }

  channel (name: string): ModelChannel {
    return this.channels.get(name) as ModelChannel
  }

  /**
   * §1.1: a read after an entry. A cursor from another life is never read as a position in this one: the
   * answer starts at the oldest retained message, with a gap. Within the life, a gap when messages after the
   * cursor were trimmed.
   */
  read (name: string, entry: Entry | Place, limit: number): { messages: ModelMessage[], place: Place, gap: boolean } {
    const { life, lastSeq, retained } = this.channel(name)
    const firstSeq = retained.length > 0 ? (retained[0] as ModelMessage).seq : lastSeq + 1
    if (entry === 'latest') return { messages: [], place: { life, seq: lastSeq }, gap: false }
    let after = firstSeq - 1
    let gap = false
    if (entry !== 'oldest') {
      // Also for a seq-0 cursor of a life that never had a message, ended by a disconnect or a store restart
      // (§1.1, §1.4). A store keeps no state for a channel with no message until it is pushed or disconnected
      // (issue 12, item 4), yet the cursor it handed out is this life's: the first message of it has no gap.
      if (entry.life !== life) {
        gap = true
        count('gap: cursor of another life')
      } else {
        gap = entry.seq < firstSeq - 1
        after = Math.max(entry.seq, firstSeq - 1)
        if (gap) count('gap: trimmed past the cursor')
      }
    }
    const messages = retained.filter((message) => message.seq > after).slice(0, limit)
    const last = messages[messages.length - 1]
    return { messages, place: { life, seq: last === undefined ? after : last.seq }, gap }
  }

  /** A push stores a message and returns its data counter (`n`, unique in the sequence, increasing). */
  push (name: string): number {
    const channel = this.channel(name)
    const n = ++this.pushes
    channel.retained.push({ seq: ++channel.lastSeq, n })
    if (channel.retained.length > this.settings.maxMessages) channel.retained.shift()
    return n
  }

  /**
   * A poll arriving: its reads, round-robin under `limit` (§1.4). Answers at once when it has messages or is a
   * short poll; otherwise the client's poll is held (returns null).
   */
  poll (clientIndex: number, limit: number, short: boolean, instance: number): Answer | null {
    const client = this.clients[clientIndex] as ModelClient
    const reads = client.channels.map((name, i) => this.read(name, client.entries[i] as Entry, limit))
    const taken = roundRobin(reads.map((read) => read.messages.length), limit)
    const places = reads.map((read, i): Place => {
      const n = taken[i] as number
      if (n === read.messages.length) return read.place
      const kept = read.messages[n - 1]
      return { life: read.place.life, seq: kept !== undefined ? kept.seq : (read.messages[0] as ModelMessage).seq - 1 }
    })
    const gaps = reads.map((read) => read.gap)
    const delivered = taken.reduce((sum, n) => sum + n, 0)
    if (delivered === 0 && !short) {
      client.held = { instance, limit, places, gaps }
      count('poll held')
      return null
    }
    if (reads.some((read, i) => read.messages.length > (taken[i] as number))) count('answer cut at its limit')
    if (taken.filter((n) => n > 0).length > 1) count('answer from several channels')
    const messages: Answer['messages'] = []
    for (let round = 0; round < limit; round++) {
      reads.forEach((read, i) => {
        const message = read.messages[round]
        if (message !== undefined && round < (taken[i] as number)) messages.push({ channel: client.channels[i] as string, life: read.place.life, seq: message.seq, n: message.n })
      })
    }
    return this.answered(clientIndex, {
      status: delivered > 0 ? 'ok' : 'timeout',
      messages,
      cursor: places,
      gaps: client.channels.filter((_, i) => gaps[i]),
      disconnected: []
    })
  }

  /** After a push on `name`: the answers of the polls it wakes (a woken poll answers with that channel only). */
  wake (name: string): Map<number, Answer> {
    const answers = new Map<number, Answer>()
    this.clients.forEach((client, index) => {
      const held = client.held
      const i = client.channels.indexOf(name)
      if (held === null || i < 0) return
      const read = this.read(name, held.places[i] as Place, held.limit)
      if (read.messages.length === 0) return
      count('held poll woken by a push')
      answers.set(index, this.answered(index, {
        status: 'ok',
        messages: read.messages.map((message) => ({ channel: name, life: read.place.life, seq: message.seq, n: message.n })),
        cursor: held.places.map((place, j) => j === i ? read.place : place),
        gaps: client.channels.filter((_, j) => (held.gaps[j] as boolean) || (j === i && read.gap)),
        disconnected: []
      }))
    })
    return answers
  }

  /** §1.3: a new, empty life; every poll held on the channel answers `disconnected` with its cursor of the old life. */
  disconnect (name: string): Map<number, Answer> {
    this.endLife(name)
    const answers = new Map<number, Answer>()
    this.clients.forEach((client, index) => {
      const held = client.held
      if (held === null || !client.channels.includes(name)) return
      answers.set(index, this.answered(index, {
        status: 'disconnected',
        messages: [],
        cursor: held.places,
        gaps: client.channels.filter((_, j) => held.gaps[j]),
        disconnected: [name]
      }))
    })
    return answers
  }

  /** A held poll's timeout: nothing arrived, its concrete cursor and the gaps of its first read. */
  timeout (clientIndex: number): Answer {
    const client = this.clients[clientIndex] as ModelClient
    const held = client.held as ModelHeld
    return this.answered(clientIndex, { status: 'timeout', messages: [], cursor: held.places, gaps: client.channels.filter((_, j) => held.gaps[j]), disconnected: [] })
  }

  /**
   * The answer the model gave a client did not reach it (a 503 instead): it keeps the cursor it had. Only
   * for the last answer of that client, right after `poll` or `timeout`.
   */
  undo (clientIndex: number, answer: Answer): void {
    const client = this.clients[clientIndex] as ModelClient
    const lines = logLines(answer).length
    client.received.splice(client.received.length - lines, lines)
    client.entries = client.previous
    client.held = null
  }

  /** The client vanished, or its instance closed (503): nothing answered, it keeps the cursor it had. */
  drop (clientIndex: number): void {
    (this.clients[clientIndex] as ModelClient).held = null
  }

  /** A memory store restarted: every channel starts a new life, with nothing retained. */
  restartStore (): void {
    // Every life ends, empty or not: a cursor from before the restart gets a gap (§1.1).
    for (const name of CHANNELS) this.channels.set(name, this.newLife())
  }

  /** The client follows other channels: kept ones keep their entries, added ones start at `start` (§1.4). */
  follow (clientIndex: number, mask: number, start: 'oldest' | 'latest'): void {
    const client = this.clients[clientIndex] as ModelClient
    const channels: string[] = []
    const entries: Entry[] = []
    client.channels.forEach((name, i) => {
      if ((mask & (1 << CHANNELS.indexOf(name as typeof CHANNELS[number]))) !== 0) {
        channels.push(name)
        entries.push(client.entries[i] as Entry)
      }
    })
    CHANNELS.forEach((name, bit) => {
      if ((mask & (1 << bit)) !== 0 && !channels.includes(name)) {
        channels.push(name)
        entries.push(start)
        client.received.push(`${name} followed`)
      }
    })
    client.channels = channels
    client.entries = entries
  }

  heldOn (instance: number): number {
    return this.clients.filter((client) => client.held?.instance === instance).length
  }

  /** The client received an answer: it takes the cursor, and logs what it got. */
  private answered (clientIndex: number, answer: Answer): Answer {
    const client = this.clients[clientIndex] as ModelClient
    client.previous = client.entries
    count(`answer: ${answer.status}${client.channels.length > 1 ? ' (many channels)' : ''}`)
    client.held = null
    client.entries = answer.cursor.map((place) => ({ life: place.life as number, seq: place.seq }))
    client.received.push(...logLines(answer))
    return answer
  }
}

/** §1.4: one message per channel that has some, in the poll's channel order, round after round, up to `limit`. */
function roundRobin (pending: number[], limit: number): number[] {
  const taken = pending.map(() => 0)
  let left = limit
  for (let round = 0; left > 0 && pending.some((n, i) => n > (taken[i] as number)); round++) {
    pending.forEach((n, i) => {
      if (left > 0 && n > round) {
        taken[i] = (taken[i] as number) + 1
        left--
      }
    })
  }
  return taken
}

function logLines (answer: Answer): string[] {
  return [
    ...answer.gaps.map((channel) => `${channel} gap`),
    ...answer.messages.map((m) => `${m.channel} L${m.life}.${m.seq} #${m.n}`),
    ...answer.disconnected.map((channel) => `${channel} disconnected`)
  ]
}

// ——— the real system ———

/**
 * The store an instance runs on, with a count of its reads in flight. It delegates every call to the real
 * store (memory or Redis); the count only tells the harness when a poll's first read has returned, i.e. when
 * the poll is held, so that the next command cannot race it.
 */
export class ObservedStore implements LongPollStore {
  started = 0
  inFlight = 0
  /** Date.now() when the latest read returned. */
  lastDoneAt = 0
  readMany?: (reads: ChannelRead[], limit: number, now: number) => Promise<ReadResult[]>

  constructor (private readonly inner: LongPollStore) {
    const readMany = inner.readMany
    if (readMany !== undefined) {
      this.readMany = async (reads, limit, now) => await this.observe(() => readMany.call(inner, reads, limit, now))
    }
  }

  append: LongPollStore['append'] = async (...args) => await this.inner.append(...args)
  delete: LongPollStore['delete'] = async (channel) => await this.inner.delete(channel)
  close: LongPollStore['close'] = async () => await this.inner.close()

  async read (channel: string, position: Position, limit: number, now: number): Promise<ReadResult> {
    return await this.observe(() => this.inner.read(channel, position, limit, now))
  }

  private async observe<T> (reading: () => Promise<T>): Promise<T> {
    this.started++
    this.inFlight++
    try {
      return await reading()
    } finally {
      this.inFlight--
      this.lastDoneAt = Date.now()
    }
  }
}

export interface Instance {
  app: FastifyInstance
  base: string
  store: ObservedStore
}

/** How a test file makes its instances and its faults. */
export interface Backend {
  instances: number
  /** A new listening instance (for instance `index`, e.g. after its restart). */
  start (index: number, settings: Settings): Promise<Instance>
  /** Closes an instance and what the backend made for it (its Redis clients). */
  stop (index: number, instance: Instance): Promise<void>
  /**
   * Redis: resolves once every event published so far has reached the instance's hub. Pub/sub delivers the
   * event of a disconnect asynchronously: without this, a poll arriving right after the disconnect's 2xx could
   * meet its late event and answer `disconnected`, which the sequence does not decide.
   */
  delivered? (instance: Instance): Promise<void>
  /** Redis: kills the notifier's subscriber connection of an instance; resolves once it is killed. */
  killSubscriber? (instance: Instance): Promise<void>
  /**
   * Redis: called before the kill; resolves once the instance's notifier has re-subscribed and asked its polls
   * to re-check the store.
   */
  subscriberBack? (instance: Instance): Promise<void>
}

interface Response { status: number, body: any, ms: number }

/** A poll over real HTTP, on a connection of its own, so that an abort destroys its socket. */
interface PendingPoll {
  done: Promise<Response | 'aborted'>
  settled: boolean
  request: ClientRequest
}

interface RealClient {
  /** Cursor entries as the client holds them: '' (oldest), 'latest', or a cursor from an answer. */
  entries: string[]
  pending: PendingPoll | null
  received: string[]
}

/**
 * Instances are started once per settings and shared by the sequences (starting a Fastify app with the
 * plugin's schemas costs a few hundred ms on a loaded machine): each sequence has channel names of its own,
 * so sequences never see each other's messages. A restart replaces an instance for the sequences after it;
 * a failed sequence discards its instances, so the next one starts clean.
 */
export class Pool {
  private readonly sets = new Map<string, Instance[]>()
  /** A started instance waiting to replace one that restarts, so that a restart costs a close, not a start. */
  private readonly spares = new Map<string, Promise<Instance>>()
  private sequences = 0

  /**
   * `spares`: only where the store outlives its instance (Redis). A memory store's age is part of what it
   * answers (an empty-channel cursor older than the store gets a gap), so a restarted memory instance must
   * start after the old one closed, as a restarted process does.
   */
  constructor (readonly backend: Backend, private readonly spares_: boolean) {}

  nextTag (): string {
    return `s${++this.sequences}-`
  }

  async instances (settings: Settings): Promise<Instance[]> {
    const key = JSON.stringify(settings)
    let set = this.sets.get(key)
    if (set === undefined) {
      set = []
      for (let i = 0; i < this.backend.instances; i++) set.push(await this.backend.start(i, settings))
      this.sets.set(key, set)
    }
    return set
  }

  /** A fresh instance for `index` (a restart): the spare, and another spare started behind it. */
  async replacement (index: number, settings: Settings): Promise<Instance> {
    if (!this.spares_) return await this.backend.start(index, settings)
    const key = `${index} ${JSON.stringify(settings)}`
    const spare = this.spares.get(key) ?? this.backend.start(index, settings)
    const next = this.backend.start(index, settings)
    next.catch(() => {}) // a failed start surfaces when the spare is taken
    this.spares.set(key, next)
    return await spare
  }

  async discard (settings: Settings): Promise<void> {
    const key = JSON.stringify(settings)
    const set = this.sets.get(key)
    this.sets.delete(key)
    if (set !== undefined) for (let i = 0; i < set.length; i++) await this.backend.stop(i, set[i] as Instance)
  }

  async close (): Promise<void> {
    for (const key of [...this.sets.keys()]) await this.discard(JSON.parse(key) as Settings)
    for (const [key, spare] of this.spares) {
      this.spares.delete(key)
      const instance = await spare.catch(() => null)
      if (instance !== null) await this.backend.stop(Number(key.split(' ')[0]), instance)
    }
  }
}

export class World {
  readonly model: Model
  instances: Instance[] = []
  readonly clients: RealClient[]
  /** Prefix of this sequence's channel names on the shared instances. */
  readonly tag: string
  /** Epoch ↔ model life: a bijection learned as epochs are seen. */
  private readonly lifeOf = new Map<string, number>()
  private readonly epochOf = new Map<number, string>()

  private constructor (readonly settings: Settings, readonly pool: Pool) {
    this.backend = pool.backend
    this.tag = pool.nextTag()
    this.model = new Model(settings, this.backend.instances)
    this.clients = this.model.clients.map((client) => ({ entries: client.channels.map(() => ''), pending: null, received: [] }))
  }

  readonly backend: Backend

  static async create (settings: Settings, pool: Pool): Promise<World> {
    const world = new World(settings, pool)
    world.instances = await pool.instances(settings)
    return world
  }

  /** The name of a model channel on the instances. */
  private real (channel: string): string {
    return `${this.tag}${channel}`
  }

  async push (channel: string, via: number, stored?: () => void): Promise<void> {
    const n = this.model.push(channel)
    const response = await send(this.instance(via), 'POST', '/push', { channel: this.real(channel), data: { n } })
    expect(response.status === 200, `push #${n} on ${channel} answered ${response.status} ${JSON.stringify(response.body)}`)
    stored?.()
    await this.expectAnswers(this.model.wake(channel), `after the push of #${n} on ${channel}`)
  }

  async disconnect (channel: string, via: number): Promise<void> {
    const response = await send(this.instance(via), 'DELETE', `/disconnect?channel=${this.real(channel)}`)
    expect(response.status >= 200 && response.status < 300, `disconnect of ${channel} answered ${response.status}`)
    if (this.backend.delivered !== undefined) for (const instance of this.instances) await this.backend.delivered(instance)
    await this.expectAnswers(this.model.disconnect(channel), `after the disconnect of ${channel}`)
  }

  /** A poll that answers at once (`timeout=0`), or is held until a later command ends it. */
  async poll (clientIndex: number, limit: number, short: boolean, via: number): Promise<void> {
    const instance = via % this.instances.length
    const store = (this.instances[instance] as Instance).store
    const started = store.started
    const pending = this.startPoll(clientIndex, limit, short ? 0 : LONG_TIMEOUT, instance)
    const expected = this.model.poll(clientIndex, limit, short, instance)
    if (expected !== null) {
      await this.expectAnswer(clientIndex, expected, 'at once')
      return
    }
    // Held: its first read has returned once a read started after the request and none is in flight.
    await waitFor(() => pending.settled || (store.started > started && store.inFlight === 0), `client ${clientIndex}'s poll to be read`)
    await turn()
    expect(!pending.settled, `client ${clientIndex}'s poll answered at once; the model holds it`)
  }

  /** A held poll with a short timeout, awaited: it answers at its timeout (or at once, with messages). */
  async pollTimesOut (clientIndex: number, limit: number, timeout: number, via: number): Promise<void> {
    const instance = via % this.instances.length
    const store = (this.instances[instance] as Instance).store
    const sent = Date.now()
    const reads = store.started
    this.startPoll(clientIndex, limit, timeout, instance)
    const expected = this.model.poll(clientIndex, limit, false, instance) ?? this.model.timeout(clientIndex)
    const answer = await this.answerOf(clientIndex, `at its ${timeout} ms timeout`)
    await waitFor(() => store.inFlight === 0, 'the poll\'s read to return')
    const late = store.started === reads || store.lastDoneAt >= sent + timeout - 1
    if (late && this.lateAnswer(clientIndex, answer)) {
      // The one outcome the sequence does not decide: on a loaded machine the poll's subscribe and first read
      // (Redis round trips) may outlast a short timeout. The poll then answers from what it has (lib/hub.ts,
      // expire): `timeout` with the client's own cursor, or 503 when some entry was not concrete yet; either
      // way the client polls again from the cursor it has. Accepted only when the store proves it: the read
      // returned after the poll's deadline could have passed, or never started (the subscription came later).
      this.model.undo(clientIndex, expected)
      count('deadline passed before the first read returned')
      return
    }
    const response = await this.expectAnswer(clientIndex, expected, `at its ${timeout} ms timeout`, answer)
    if (expected.status === 'timeout') {
      // Timers may fire a millisecond early against Date.now(); the upper bound only catches a hang.
      expect(response.ms >= timeout - 5, `the ${timeout} ms poll timed out after ${response.ms} ms`)
    }
  }

  /** The client vanishes: its socket is destroyed; the server must release the poll. */
  async abort (clientIndex: number): Promise<void> {
    const client = this.clients[clientIndex] as RealClient
    const instance = this.model.clients[clientIndex]?.held?.instance as number
    const pending = client.pending as PendingPoll
    expect(!pending.settled, `client ${clientIndex}'s held poll answered before its abort`)
    pending.request.destroy()
    count('held poll aborted')
    expect(await pending.done === 'aborted', `client ${clientIndex}'s aborted poll got an answer`)
    client.pending = null
    this.model.drop(clientIndex)
    const app = (this.instances[instance] as Instance).app
    const held = this.model.heldOn(instance)
    await waitFor(() => app.longpoll.stats().heldPolls === held, `instance ${instance} to release the aborted poll (holds ${app.longpoll.stats().heldPolls}, expected ${held})`)
  }

  /** Closes an instance (its held polls answer 503) and starts it again; a memory store starts new lives. */
  async restart (index: number, storeRestarts: boolean): Promise<void> {
    const instance = index % this.instances.length
    const old = this.instances[instance] as Instance
    const closing = this.backend.stop(instance, old)
    for (let c = 0; c < this.clients.length; c++) {
      if (this.model.clients[c]?.held?.instance !== instance) continue
      const response = await this.answerOf(c, 'as its instance closes')
      expect(response.status === 503 && response.body.code === 'FST_LONGPOLL_CLOSING', `client ${c}'s held poll answered ${response.status} ${JSON.stringify(response.body)} on close`)
      this.model.drop(c)
    }
    await closing
    if (storeRestarts) this.model.restartStore()
    count('instance restarted')
    this.instances[instance] = await this.pool.replacement(instance, this.settings)
  }

  /** Redis: the subscriber connection of an instance is killed, and a push lands meanwhile: resync must deliver it. */
  async killSubscriber (index: number, channel: string, via: number): Promise<void> {
    const instance = index % this.instances.length
    const backend = this.backend
    if (backend.killSubscriber === undefined || backend.subscriberBack === undefined) throw new Error('this backend cannot kill a subscriber')
    const target = this.instances[instance] as Instance
    let isBack = false
    const back = backend.subscriberBack(target).then(() => { isBack = true })
    await backend.killSubscriber(target)
    const held = this.model.clients.filter((client) => client.held?.instance === instance && client.channels.includes(channel)).length
    await this.push(channel, via, () => count(isBack ? 'push after the killed subscriber was back' : `push while the subscriber was down${held > 0 ? ', answered by the resync' : ''}`))
    await back
  }

  follow (clientIndex: number, mask: number, start: 'oldest' | 'latest'): void {
    const model = this.model.clients[clientIndex] as ModelClient
    const client = this.clients[clientIndex] as RealClient
    const before = model.channels
    this.model.follow(clientIndex, mask, start)
    client.entries = model.channels.map((name) => {
      const i = before.indexOf(name)
      if (i >= 0) return client.entries[i] as string
      client.received.push(`${name} followed`)
      return start === 'latest' ? 'latest' : ''
    })
  }

  /** After every command: no poll the model holds has answered, and no store read is in flight. */
  async quiesce (): Promise<void> {
    await waitFor(() => this.instances.every((instance) => instance.store.inFlight === 0), 'store reads to settle')
    await turn()
    this.clients.forEach((client, c) => {
      if (this.model.clients[c]?.held !== null) expect(client.pending !== null && !client.pending.settled, `client ${c}'s held poll answered; the model still holds it`)
    })
  }

  /**
   * End of a sequence: every held poll is aborted (and released by the server), then every client's received
   * messages must equal the model's, and, independently of the model, come in order, exactly once.
   */
  async finish (): Promise<void> {
    await this.quiesce()
    for (let c = 0; c < this.clients.length; c++) {
      if (this.model.clients[c]?.held !== null) await this.abort(c)
    }
    for (const instance of this.instances) {
      await waitFor(() => instance.app.longpoll.stats().heldPolls === 0 && instance.app.longpoll.stats().channels === 0, 'every poll to be released')
    }
    this.clients.forEach((client, c) => {
      const expected = (this.model.clients[c] as ModelClient).received
      expect(JSON.stringify(client.received) === JSON.stringify(expected), `client ${c} received\n  ${client.received.join(' | ')}\nthe model has\n  ${expected.join(' | ')}`)
      inOrderOnce(client.received, c)
    })
  }

  /** Ends the sequence's polls; after a failure, its instances are discarded (they may hold its state). */
  async close (failed: boolean): Promise<void> {
    for (const client of this.clients) client.pending?.request.destroy()
    if (failed) await this.pool.discard(this.settings)
  }

  private instance (via: number): Instance {
    return this.instances[via % this.instances.length] as Instance
  }

  private startPoll (clientIndex: number, limit: number, timeout: number, instance: number): PendingPoll {
    const client = this.clients[clientIndex] as RealClient
    expect(client.pending === null, `client ${clientIndex} already has a poll`)
    const channels = (this.model.clients[clientIndex] as ModelClient).channels
    const query = new URLSearchParams()
    for (const channel of channels) query.append('channel', this.real(channel))
    const cursor = client.entries.join(',')
    if (cursor !== '' || channels.length > 1) query.set('cursor', cursor)
    query.set('timeout', String(timeout))
    query.set('limit', String(limit))
    const pending = get(`${(this.instances[instance] as Instance).base}/poll?${query}`)
    client.pending = pending
    return pending
  }

  private async answerOf (clientIndex: number, when: string): Promise<Response> {
    const client = this.clients[clientIndex] as RealClient
    const pending = client.pending
    expect(pending !== null, `client ${clientIndex} has no poll to answer ${when}`)
    const response = await bounded((pending as PendingPoll).done, `client ${clientIndex}'s poll to answer ${when}`)
    client.pending = null
    expect(response !== 'aborted', `client ${clientIndex}'s poll was cut off ${when}`)
    return response as Response
  }

  private async expectAnswers (answers: Map<number, Answer>, when: string): Promise<void> {
    for (const [clientIndex, answer] of answers) await this.expectAnswer(clientIndex, answer, when)
  }

  /** A poll's answer when its deadline passed before its first read returned: see `pollTimesOut`. */
  private lateAnswer (clientIndex: number, response: Response): boolean {
    const entries = (this.clients[clientIndex] as RealClient).entries
    if (entries.some((entry) => entry === '' || entry === 'latest')) return response.status === 503 && response.body.code === 'FST_LONGPOLL_STORE_UNAVAILABLE'
    return response.status === 200 && JSON.stringify(response.body) === JSON.stringify({ status: 'timeout', messages: [], cursor: entries.join(',') })
  }

  private async expectAnswer (clientIndex: number, expected: Answer, when: string, answer?: Response): Promise<Response> {
    const response = answer ?? await this.answerOf(clientIndex, when)
    const channels = (this.model.clients[clientIndex] as ModelClient).channels
    expect(response.status === 200, `client ${clientIndex}'s poll answered ${response.status} ${JSON.stringify(response.body)} ${when}`)
    const actual = parse(response.body, channels, this.tag)
    const problem = this.compare(actual, expected)
    expect(problem === null, `client ${clientIndex}'s poll on ${channels.join(',')} ${when}: ${problem}\n  got      ${JSON.stringify(response.body)}\n  expected ${JSON.stringify(expected)}`)
    const client = this.clients[clientIndex] as RealClient
    client.entries = channels.length === 1 ? [response.body.cursor] : String(response.body.cursor).split(',')
    client.received.push(...actual.gaps.map((channel) => `${channel} gap`),
      ...actual.messages.map((m) => `${m.channel} L${this.lifeOf.get(`${m.channel} ${m.epoch}`) as number}.${m.seq} #${m.n}`),
      ...actual.disconnected.map((channel) => `${channel} disconnected`))
    return response
  }

  /**
   * Null when the answer is the model's: same status, messages (channel, seq, data) in the same order, same
   * cursor seqs, gaps and disconnected channels, and epochs that map one to one onto the model's lives.
   */
  private compare (actual: RawAnswer, expected: Answer): string | null {
    if (actual.status !== expected.status) return `status ${actual.status}, the model says ${expected.status}`
    if (actual.gaps.join() !== expected.gaps.join()) return `gaps [${actual.gaps.join()}], the model has [${expected.gaps.join()}]`
    if (actual.disconnected.join() !== expected.disconnected.join()) return `disconnected [${actual.disconnected.join()}], the model has [${expected.disconnected.join()}]`
    const got = actual.messages.map((m) => `${m.channel}.${m.seq}#${m.n}`).join(' ')
    const want = expected.messages.map((m) => `${m.channel}.${m.seq}#${m.n}`).join(' ')
    if (got !== want) return `messages ${got}, the model has ${want}`
    if (actual.cursor.map((entry) => entry.seq).join() !== expected.cursor.map((entry) => entry.seq).join()) return 'cursor seqs differ'
    const pairs: Array<[string, number]> = actual.messages.map((m, i) => [`${m.channel} ${m.epoch}`, expected.messages[i]?.life as number])
    actual.cursor.forEach((entry, i) => {
      // A seq-0 entry names a life with no message yet: how a store names such a life is its own business
      // (issue 12 lets a never-pushed channel keep no state); what polls do with it is compared instead.
      if (entry.seq > 0) pairs.push([`${entry.channel} ${entry.epoch}`, expected.cursor[i]?.life as number])
    })
    for (const [epoch, life] of pairs) {
      const knownLife = this.lifeOf.get(epoch)
      const knownEpoch = this.epochOf.get(life)
      if (knownLife === undefined && knownEpoch === undefined) {
        this.lifeOf.set(epoch, life)
        this.epochOf.set(life, epoch)
      } else if (knownLife !== life || knownEpoch !== epoch) {
        return `epoch ${epoch} is life ${knownLife ?? '(new)'}, but the model expects life ${life} (epoch ${knownEpoch ?? '(new)'})`
      }
    }
    return null
  }
}

interface RawAnswer {
  status: string
  messages: Array<{ channel: string, epoch: string, seq: number, n: number }>
  cursor: Array<{ channel: string, epoch: string, seq: number }>
  gaps: string[]
  disconnected: string[]
}

/** Reads an answer body, checking its shape: §1.1 for one channel, §1.4 for several. */
function parse (body: any, channels: string[], tag: string): RawAnswer {
  const bare = (name: unknown): string => {
    expect(typeof name === 'string' && name.startsWith(tag), `channel ${String(name)} is not one of this sequence's`)
    return name.slice(tag.length)
  }
  const many = channels.length > 1
  expect(typeof body.cursor === 'string' && Array.isArray(body.messages), `not a poll answer: ${JSON.stringify(body)}`)
  const entries = many ? String(body.cursor).split(',') : [String(body.cursor)]
  expect(entries.length === channels.length, `cursor ${body.cursor} has ${entries.length} entries for ${channels.length} channels`)
  const gaps: string[] = many ? (body.gaps ?? []).map(bare) : body.gap === true ? [channels[0] as string] : []
  if (many) expect((body.gap === true) === (gaps.length > 0), `gap and gaps disagree: ${JSON.stringify(body)}`)
  else expect(body.gaps === undefined && body.disconnected === undefined, `a one-channel answer with many-channel fields: ${JSON.stringify(body)}`)
  const disconnected: string[] = many ? (body.disconnected ?? []).map(bare) : body.status === 'disconnected' ? [channels[0] as string] : []
  const messages = (body.messages as any[]).map((message) => {
    expect(typeof message.time === 'number', `a message without a time: ${JSON.stringify(message)}`)
    expect(many ? typeof message.channel === 'string' : message.channel === undefined, `message channel field: ${JSON.stringify(message)}`)
    const channel = many ? bare(message.channel) : channels[0] as string
    return { channel, ...splitCursor(message.id), n: message.data?.n as number }
  })
  const cursor = entries.map((entry, i) => ({ channel: channels[i] as string, ...splitCursor(entry) }))
  return { status: body.status, messages, cursor, gaps, disconnected }
}

function splitCursor (text: string): { epoch: string, seq: number } {
  const dot = text.lastIndexOf('.')
  expect(dot > 0, `not a cursor: ${text}`)
  return { epoch: text.slice(0, dot), seq: Number(text.slice(dot + 1)) }
}

/**
 * Independently of the model: per channel, messages come in push order, each once — until the client follows
 * the channel afresh (dropped, then added again from its oldest message: then it asked for them again).
 */
function inOrderOnce (received: string[], clientIndex: number): void {
  const lastN = new Map<string, number>()
  for (const line of received) {
    const [channel, what] = line.split(' ') as [string, string]
    if (what === 'followed') lastN.delete(channel)
    if (what === 'gap' || what === 'disconnected' || what === 'followed') continue
    const n = Number(line.slice(line.indexOf('#') + 1))
    const before = lastN.get(channel) ?? 0
    expect(n > before, `client ${clientIndex} received #${n} on ${channel} after #${before}`)
    lastN.set(channel, n)
  }
}

// ——— plumbing ———

export function expect (condition: boolean, message: string): asserts condition {
  if (!condition) throw new Error(message)
}

function get (url: string): PendingPoll {
  const started = Date.now()
  let request!: ClientRequest
  const pending: PendingPoll = { settled: false, request: undefined as unknown as ClientRequest, done: undefined as unknown as Promise<Response | 'aborted'> }
  pending.done = new Promise<Response | 'aborted'>((resolve) => {
    request = httpRequest(url, { agent: false }, (response) => {
      let text = ''
      response.setEncoding('utf8')
      response.on('data', (chunk: string) => { text += chunk })
      response.on('end', () => {
        pending.settled = true
        resolve({ status: response.statusCode as number, body: JSON.parse(text), ms: Date.now() - started })
      })
      response.on('error', () => { pending.settled = true; resolve('aborted') })
    })
    request.on('error', () => { pending.settled = true; resolve('aborted') })
    request.end()
  })
  pending.request = request
  return pending
}

async function send (instance: Instance, method: string, path: string, body?: unknown): Promise<{ status: number, body: any }> {
  const response = await fetch(`${instance.base}${path}`, {
    method,
    ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
  })
  return { status: response.status, body: await response.json().catch(() => null) }
}

/** One turn of the event loop: the hub's continuations after a read have run. */
async function turn (): Promise<void> {
  await new Promise((resolve) => setImmediate(resolve))
}

/** Waits for a server-side state with no event of its own, checking every few ms (no busy loop). */
export async function waitFor (condition: () => boolean, what: string, ms = ANSWER_BOUND): Promise<void> {
  const deadline = Date.now() + ms
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 2))
  }
}

async function bounded<T> (promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ANSWER_BOUND} ms waiting for ${what}`)), ANSWER_BOUND)
  })
  try {
    return await Promise.race([promise, timeout])
  } finally {
    clearTimeout(timer)
  }
}

// ——— commands ———

type Command = fc.AsyncCommand<Model, World>

abstract class Step implements Command {
  check (_model: Readonly<Model>): boolean {
    return true
  }

  async run (_model: Model, world: World): Promise<void> {
    await this.act(world)
    await world.quiesce()
  }

  abstract act (world: World): Promise<void>
  abstract toString (): string
}

const free = (model: Readonly<Model>, client: number): boolean => model.clients[client]?.held === null
const on = (via: number, instances: number): string => instances > 1 ? ` via ${via}` : ''

export class Push extends Step {
  constructor (readonly channel: string, readonly via: number, readonly instances: number) { super() }
  async act (world: World): Promise<void> { await world.push(this.channel, this.via) }
  toString (): string { return `push(${this.channel}${on(this.via, this.instances)})` }
}

export class Poll extends Step {
  constructor (readonly client: number, readonly limit: number, readonly short: boolean, readonly via: number, readonly instances: number) { super() }
  override check (model: Readonly<Model>): boolean { return free(model, this.client) }
  async act (world: World): Promise<void> { await world.poll(this.client, this.limit, this.short, this.via) }
  toString (): string { return `${this.short ? 'shortPoll' : 'heldPoll'}(client ${this.client}, limit ${this.limit}${on(this.via, this.instances)})` }
}

export class PollTimesOut extends Step {
  constructor (readonly client: number, readonly limit: number, readonly timeout: number, readonly via: number, readonly instances: number) { super() }
  override check (model: Readonly<Model>): boolean { return free(model, this.client) }
  async act (world: World): Promise<void> { await world.pollTimesOut(this.client, this.limit, this.timeout, this.via) }
  toString (): string { return `pollTimesOut(client ${this.client}, limit ${this.limit}, ${this.timeout} ms${on(this.via, this.instances)})` }
}

export class Abort extends Step {
  constructor (readonly client: number) { super() }
  override check (model: Readonly<Model>): boolean { return !free(model, this.client) }
  async act (world: World): Promise<void> { await world.abort(this.client) }
  toString (): string { return `abort(client ${this.client})` }
}

export class Disconnect extends Step {
  constructor (readonly channel: string, readonly via: number, readonly instances: number) { super() }
  async act (world: World): Promise<void> { await world.disconnect(this.channel, this.via) }
  toString (): string { return `disconnect(${this.channel}${on(this.via, this.instances)})` }
}

/** Memory: the process restarts, and its store with it. Redis: one instance is closed and started again. */
export class Restart extends Step {
  constructor (readonly instance: number, readonly storeRestarts: boolean, readonly instances: number) { super() }
  async act (world: World): Promise<void> { await world.restart(this.instance, this.storeRestarts) }
  toString (): string { return this.instances > 1 ? `restart(instance ${this.instance})` : 'restart()' }
}

export class KillSubscriber extends Step {
  constructor (readonly instance: number, readonly channel: string, readonly via: number) { super() }
  async act (world: World): Promise<void> { await world.killSubscriber(this.instance, this.channel, this.via) }
  toString (): string { return `killSubscriber(instance ${this.instance}, then push(${this.channel} via ${this.via}))` }
}

export class Follow extends Step {
  constructor (readonly client: number, readonly mask: number, readonly start: 'oldest' | 'latest') { super() }
  override check (model: Readonly<Model>): boolean { return free(model, this.client) }
  async act (world: World): Promise<void> { world.follow(this.client, this.mask, this.start) }
  toString (): string { return `follow(client ${this.client}, ${CHANNELS.filter((_, bit) => (this.mask & (1 << bit)) !== 0).join('+')}, new from ${this.start})` }
}

export interface CommandOptions {
  instances: number
  /** The store restarts with its instance (memory) or outlives it (Redis). */
  storeRestarts: boolean
  killSubscriber: boolean
  /** Timeouts of `pollTimesOut`, in ms. */
  timeouts: { min: number, max: number }
}

/** The commands, weighted towards pushes and polls; every argument shrinks towards the simplest case. */
export function commandArbitrary (options: CommandOptions): fc.Arbitrary<Command> {
  const { instances } = options
  const channel = fc.constantFrom(...CHANNELS)
  const client = fc.integer({ min: 0, max: INITIAL_CHANNELS.length - 1 })
  const via = fc.integer({ min: 0, max: instances - 1 })
  const limit = fc.constantFrom(100, 1, 2)
  const weighted: Array<fc.WeightedArbitrary<Command>> = [
    { weight: 6, arbitrary: fc.tuple(channel, via).map(([c, v]) => new Push(c, v, instances)) },
    { weight: 3, arbitrary: fc.tuple(client, limit, via).map(([c, l, v]) => new Poll(c, l, true, v, instances)) },
    { weight: 5, arbitrary: fc.tuple(client, limit, via).map(([c, l, v]) => new Poll(c, l, false, v, instances)) },
    { weight: 1, arbitrary: fc.tuple(client, limit, fc.integer(options.timeouts), via).map(([c, l, ms, v]) => new PollTimesOut(c, l, ms, v, instances)) },
    { weight: 2, arbitrary: client.map((c) => new Abort(c)) },
    { weight: 1, arbitrary: fc.tuple(channel, via).map(([c, v]) => new Disconnect(c, v, instances)) },
    { weight: 1, arbitrary: fc.integer({ min: 0, max: instances - 1 }).map((i) => new Restart(i, options.storeRestarts, instances)) },
    { weight: 1, arbitrary: fc.tuple(client, fc.integer({ min: 1, max: 7 }), fc.constantFrom<'oldest' | 'latest'>('oldest', 'latest')).map(([c, m, s]) => new Follow(c, m, s)) }
  ]
  if (options.killSubscriber) {
    weighted.push({ weight: 1, arbitrary: fc.tuple(fc.integer({ min: 0, max: instances - 1 }), channel, via).map(([i, c, v]) => new KillSubscriber(i, c, v)) })
  }
  return fc.oneof(...weighted)
}

export interface RunOptions extends CommandOptions {
  pool: Pool
  settings: fc.Arbitrary<Settings>
  numRuns: number
  maxCommands: number
  seed?: number
  path?: string
  /** fast-check's `replayPath` of the commands (printed after the counterexample): with seed and path, a replay. */
  replayPath?: string
}

/** Runs random sequences; a failure is reported by fast-check shrunk, with the seed and path that replay it. */
export async function runSequences (options: RunOptions): Promise<{ runs: number, ms: number }> {
  const started = Date.now()
  let runs = 0
  await fc.assert(fc.asyncProperty(options.settings, fc.commands([commandArbitrary(options)], { maxCommands: options.maxCommands, size: 'max', ...(options.replayPath === undefined ? {} : { replayPath: options.replayPath }) }), async (settings, commands) => {
    runs++
    await runSequence(options.pool, settings, commands)
  }), {
    numRuns: options.numRuns,
    ...(options.seed === undefined ? {} : { seed: options.seed }),
    ...(options.path === undefined ? {} : { path: options.path }),
    includeErrorInReport: true
  })
  return { runs, ms: Date.now() - started }
}

/** One sequence from a fresh start: the commands, then the end checks; the instances are closed either way. */
export async function runSequence (pool: Pool, settings: Settings, commands: Iterable<Command>): Promise<void> {
  const world = await World.create(settings, pool)
  let failed = true
  try {
    await fc.asyncModelRun(() => ({ model: world.model, real: world }), commands)
    await world.finish()
    failed = false
  } finally {
    await world.close(failed)
  }
}
