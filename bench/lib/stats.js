// Small numeric helpers shared by run.js and the report.

/** Percentiles (nearest rank) of an array of numbers: { p50, p90, p99, max, mean, count }. */
export function percentiles (values) {
  if (values.length === 0) return { count: 0, p50: null, p90: null, p99: null, max: null, mean: null }
  const sorted = Float64Array.from(values).sort()
  const at = (q) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]
  let sum = 0
  for (const v of sorted) sum += v
  return { count: sorted.length, p50: round(at(0.5)), p90: round(at(0.9)), p99: round(at(0.99)), max: round(sorted[sorted.length - 1]), mean: round(sum / sorted.length) }
}

export function round (x, digits = 3) {
  if (x === null || x === undefined || !Number.isFinite(x)) return x ?? null
  const f = 10 ** digits
  return Math.round(x * f) / f
}

/** CPU time (user + system) in microseconds between two process.cpuUsage() readings. */
export function cpuDelta (before, after) {
  return (after.user - before.user) + (after.system - before.system)
}
