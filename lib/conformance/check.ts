import type { DeclareTest } from './index.js'

/**
 * How every conformance suite declares a check: its name prefixed with the suite's, a fresh subject (a store) for
 * each check, closed when the check ends, even when it fails.
 */
export function declareChecks<T extends { close (): Promise<void> }> (test: DeclareTest, suite: string | undefined, create: () => T | Promise<T>) {
  const prefix = suite === undefined ? '' : `${suite}: `
  return (name: string, fn: (subject: T) => Promise<void>): void => {
    test(`${prefix}${name}`, async () => {
      const subject = await create()
      try {
        await fn(subject)
      } finally {
        await subject.close()
      }
    })
  }
}
