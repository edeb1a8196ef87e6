import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const source = (file: string) => fileURLToPath(new URL(`./src/${file}`, import.meta.url));

export default defineConfig({
  // The examples import the package by name; tests run them against the source (CI tests before it builds).
  resolve: {
    alias: [
      { find: /^oauth-mailbox$/, replacement: source('index.ts') },
      { find: /^oauth-mailbox\/(postgres|redis)$/, replacement: source('$1.ts') },
      { find: /^oauth-mailbox\/testing$/, replacement: source('testing/index.ts') },
    ],
  },
  test: {
    include: ['tests/**/*.test.ts'],
    testTimeout: 20_000,
    // CI also writes a JUnit report (test-results/junit.xml, kept as an artifact with the screenshots).
    reporters: process.env.CI === 'true' ? ['default', 'junit'] : ['default'],
    outputFile: { junit: 'test-results/junit.xml' },
    coverage: {
      provider: 'v8',
      include: ['src/**/*.ts'],
      reporter: ['text-summary', 'text', 'json-summary'],
      // Enforced where every server-backed suite runs (CI); a machine without PostgreSQL, Redis or Dovecot
      // skips those suites and would otherwise fail on coverage alone.
      ...(process.env.CI === 'true' ? { thresholds: { lines: 90 } } : {}),
    },
  },
});
