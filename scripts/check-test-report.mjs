// CI: the test run must have executed tests. Reads vitest's JUnit report, prints the counts, and fails when
// nothing ran or something failed. (A missing service in CI already fails its suite: see
// tests/support/services.ts. The Next.js example's tests skip here, before the build, and run in their own
// CI step.)
import { readFileSync } from 'node:fs';

const xml = readFileSync('test-results/junit.xml', 'utf8');
const root = /<testsuites\b[^>]*>/.exec(xml)?.[0] ?? '';
const attr = (name) => Number(new RegExp(`\\b${name}="(\\d+)"`).exec(root)?.[1] ?? Number.NaN);
const tests = attr('tests');
const failures = attr('failures');
const errors = attr('errors');
const skipped = (xml.match(/<skipped\b/g) ?? []).length;
console.log(`JUnit report: ${tests} tests, ${failures} failures, ${errors} errors, ${skipped} skipped`);
if (!(tests > 0)) {
  console.error('No test was executed.');
  process.exit(1);
}
if (failures > 0 || errors > 0) process.exit(1);
