import { defineConfig } from 'vitest/config';

export default defineConfig({
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
