// The soak's load and the plugin options it runs with, in one place so the report can print them.

/**
 * Plugin options for every soak instance. `maxMessages` is small so that what the store retains stops growing
 * early (with the default, 1,000 per channel for an hour, it would grow for the whole run by design, and a leak
 * could hide in that growth); a disconnect every second over 100 channels clears each about every 100 s, so a
 * channel holds ~30 messages at most. A poller that falls more than that many messages behind (a starved
 * machine) is answered with `gap: true`, which the client counts apart (`retentionGaps`, `trimmed`).
 */
export const SOAK_OPTIONS = { maxMessages: 50 }

/** Per store (memory, Redis): the load the client process keeps up for the whole run. */
export const LOAD = {
  channels: 100,
  pollersPerChannel: 3, // every channel is followed by this many clients (fan-out), each with its own cursor
  shortTimeoutEvery: 3, // poller 0 of each channel polls with timeout 1–3 s (its polls end in `timeout`)
  shortTimeoutMs: [1000, 3000],
  pushesPerSecond: 40, // round-robin over the channels, at most one push in flight per channel (push order = k order)
  abortsPerSecond: 5, // a random poll held ≥ 100 ms has its socket destroyed; the client re-polls with its cursor
  disconnectEveryMs: 1000, // DELETE /disconnect on a random channel (no push in flight on it meanwhile)
  retryMs: 100, // after a failed poll (503, refused, reset)
  slotDownMs: 2000 // Redis: after a failed request the client avoids that instance this long
}
