// Slopes and the flatness verdict of the soak's series.
//
// A series is flat when the growth its least-squares line shows over the measured window (slope × window) is
// within the larger of two bounds: 3 × the standard deviation of the samples around that line (the series' own
// noise: a trend smaller than that cannot be told from it in one run), and a floor per kind of series, so that a
// series that happens to be very steady is not called growing for a few bytes. Both bounds are in the report.
// A real leak shows as growth well past both: the residuals of a straight rise are small and its slope times
// the window is large.

/** The floor of the bound, per series kind: bytes for memory, a count for handles and keys. */
export const FLOORS = {
  heapUsed: 1024 * 1024, // 1 MiB of live heap over the window
  rss: 8 * 1024 * 1024, // RSS moves in allocator-sized steps
  redisUsedMemory: 512 * 1024,
  count: (mean) => Math.max(2, 0.05 * Math.abs(mean)) // handles, timers, listeners, keys: 2, or 5% of the mean
}

export const NOISE_SIGMAS = 3

/** Least squares of y on x (x in minutes). */
export function fit (points) {
  const n = points.length
  let sx = 0
  let sy = 0
  for (const [x, y] of points) { sx += x; sy += y }
  const mx = sx / n
  const my = sy / n
  let sxx = 0
  let sxy = 0
  for (const [x, y] of points) { sxx += (x - mx) ** 2; sxy += (x - mx) * (y - my) }
  const slope = sxx === 0 ? 0 : sxy / sxx
  let ss = 0
  for (const [x, y] of points) ss += (y - (my + slope * (x - mx))) ** 2
  const sigma = n > 2 ? Math.sqrt(ss / (n - 2)) : 0
  return { slope, mean: my, sigma }
}

/**
 * points: [[minutes, value], ...] after the warm-up. Returns the fit, the growth over the window, the bound and
 * the verdict (`flat`: true, false, or null when there are too few samples to judge).
 */
export function judge (points, floorKind) {
  if (points.length < 6) return { samples: points.length, flat: null, why: 'fewer than 6 samples after the warm-up' }
  const { slope, mean, sigma } = fit(points)
  const window = points[points.length - 1][0] - points[0][0]
  const growth = slope * window
  const floor = typeof FLOORS[floorKind] === 'function' ? FLOORS[floorKind](mean) : FLOORS[floorKind]
  const bound = Math.max(NOISE_SIGMAS * sigma, floor)
  return {
    samples: points.length,
    first: points[0][1],
    last: points[points.length - 1][1],
    mean,
    slopePerMinute: slope,
    windowMinutes: window,
    growth,
    sigma,
    floor,
    bound,
    flat: Math.abs(growth) <= bound
  }
}
