// Server-side publishing for the pushmany scenario, run inside a server under test (bench/server.js): messages
// at `rate`/s, round-robin over `channels`, as one `app.longpoll.pushMany` per tick (`mode: 'many'`) or one
// `app.longpoll.push` per message, all of a tick's together (`mode: 'one'`). A tick starts only when the one
// before it is answered, so a server that cannot keep up publishes slower (the achieved rate is reported)
// instead of queueing without bound.
//
// Message j goes to channels[j % channels.length] with data { k, t, text }: k = startK + floor(j / channels.length),
// so every channel receives k = startK, startK + 1, … in order; t is the wall-clock time it was published (ms).
const TICK_MS = 10
/** The plugin's default maxPushMany: a tick that fell behind catches up in batches of at most this many. */
const MAX_BATCH = 1000

export async function publish (longpoll, { channels, perChannel, startK, rate, mode, payload }) {
  const total = channels.length * perChannel
  const t0 = performance.now()
  let sent = 0
  let failed = 0
  let calls = 0
  while (sent < total) {
    const due = Math.min(total, sent + MAX_BATCH, Math.ceil((performance.now() - t0 + TICK_MS) * rate / 1000))
    if (due > sent) {
      const batch = []
      for (; sent < due; sent++) {
        const channel = channels[sent % channels.length]
        batch.push({ channel, data: { k: startK + Math.floor(sent / channels.length), t: Date.now(), text: payload } })
      }
      try {
        if (mode === 'many') {
          calls++
          await longpoll.pushMany(batch)
        } else {
          calls += batch.length
          const results = await Promise.allSettled(batch.map(({ channel, data }) => longpoll.push(channel, data)))
          failed += results.filter((r) => r.status === 'rejected').length
        }
      } catch {
        failed += batch.length
      }
    }
    const wait = t0 + (sent / rate) * 1000 - performance.now()
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, Math.min(wait, TICK_MS)))
  }
  return { sent, failed, calls, publishMs: performance.now() - t0 }
}
