// A short round of everything before a server is measured, so the measured rounds run on optimized code.
import autocannon from 'autocannon'
import { closeClients, startClients } from './clients.js'
import { call, tag } from './processes.js'

export async function warmUp (config, set) {
  const [client] = await startClients(1)
  try {
    const t = tag()
    await call(client, {
      cmd: 'pingpong',
      bases: set.bases,
      channels: Array.from({ length: 50 }, (_, i) => `warm-pp-${t}-${i}`),
      durationMs: config.warmupPingpongMs,
      drainMs: 5000,
      timeout: config.pollTimeoutMs,
      payload: config.payload
    })
    await call(client, { cmd: 'close' })
    await set.waitHeld(0, 10_000)
    await call(client, { cmd: 'open', bases: set.bases, channels: Array.from({ length: config.warmupHeld }, (_, i) => `warm-h-${t}-${i}`), timeout: config.pollTimeoutMs })
    await set.waitHeld(config.warmupHeld, 10_000)
    await call(client, { cmd: 'push', rate: 2000, rounds: 1, drainMs: 5000, payload: config.payload })
    await call(client, { cmd: 'close' })
    await set.waitHeld(0, 10_000)
    if (config.throughputWarmS > 0) await autocannon({ url: `${set.bases[0]}/poll?channel=warm-tp-${t}&timeout=0`, connections: 10, duration: config.throughputWarmS })
  } finally {
    await closeClients([client])
  }
}
