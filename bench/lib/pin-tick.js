import { createHook } from 'node:async_hooks'

/**
 * Keeps one of process.nextTick's tick objects alive for the life of a server process under test, whatever its
 * kind. nextTick builds each one with an object literal of computed keys, whose feedback V8 keeps monomorphic only
 * while the literal's maps are alive: a full GC at a moment when no tick object exists (an idle timer's,
 * `global.gc()`) collects them, the next nextTick sees new maps, the feedback turns megamorphic for good, and from
 * then on every nextTick makes 3 runtime calls (Runtime_DefineKeyedOwnPropertyInLiteral, ~1,500 instructions each;
 * ~44 calls per message in profile-path's held scenario). Which server process ends up that way is luck of GC
 * timing; pinning one tick object keeps every one out of it, so that servers are compared alike. An async hook is
 * enabled just long enough to see one tick object, then disabled. Env BENCH_FREE_TICKS=1 skips it.
 */
export function pinTickObject () {
  if (process.env.BENCH_FREE_TICKS === '1' || globalThis.__benchPinnedTick !== undefined) return
  const hook = createHook({
    init (_id, type, _trigger, resource) {
      if (type === 'TickObject' && globalThis.__benchPinnedTick === undefined) globalThis.__benchPinnedTick = resource
    }
  }).enable()
  process.nextTick(() => {})
  hook.disable()
}
