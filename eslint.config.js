// ESLint flat config: neostandard, the style of the @fastify/* plugins, with TypeScript support.
import neostandard from 'neostandard'

export default [
  ...neostandard({
    ts: true,
    ignores: ['dist/**', 'coverage/**', '.tap/**', 'bench/results/**', 'test/fixtures/consumer/node_modules/**']
  }),
  {
    rules: {
      // `void promise` is how this codebase marks a promise left floating on purpose (its failures are
      // handled inside); as an expression, void stays an error.
      'no-void': ['error', { allowAsStatement: true }]
    }
  },
  {
    files: ['**/*.ts'],
    rules: {
      // `for await (const _ of client)` drains an iterator whose items a test does not need.
      '@typescript-eslint/no-unused-vars': ['error', { varsIgnorePattern: '^_', argsIgnorePattern: '^_' }]
    }
  }
]
