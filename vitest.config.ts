import { join } from 'node:path';
import { defineConfig } from 'vitest/config';
import { entries, root } from './scripts/entries.mjs';

const literal = (text: string) => text.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');

export default defineConfig({
  // The examples import the package by name; tests run them against the source (CI tests before it builds).
  resolve: {
    // One alias per entry of package.json `exports` (scripts/entries.mjs).
    alias: entries.map((e) => ({
      find: new RegExp(`^${literal(e.specifier)}$`),
      replacement: join(root, e.source),
    })),
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
