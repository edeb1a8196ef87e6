// CI: the test run must have executed tests. Reads a vitest JUnit report (default test-results/junit.xml),
// prints the counts, and fails when no test executed (all skipped counts as none) or something failed. (A missing service in CI already fails its suite: see
// tests/support/services.ts. The Next.js example's tests skip here, before the build, and run in their own
// CI step.)
import { readFileSync } from 'node:fs';

const file = process.argv[2] ?? 'test-results/junit.xml';
const xml = readFileSync(file, 'utf8');
const root = /<testsuites\b[^>]*>/.exec(xml)?.[0] ?? '';
const attr = (name) => Number(new RegExp(`\\b${name}="(\\d+)"`).exec(root)?.[1] ?? Number.NaN);
const tests = attr('tests');
const failures = attr('failures');
const errors = attr('errors');
const skipped = (xml.match(/<skipped\b/g) ?? []).length;
const executed = tests - skipped;
console.log(
  `JUnit report (${file}): ${tests} tests, ${executed} executed, ${failures} failures, ${errors} errors, ${skipped} skipped`,
);
// vitest counts skipped tests in `tests`: a run where everything skipped must fail too.
if (!(executed > 0)) {
  console.error('No test was executed.');
  process.exit(1);
}
if (failures > 0 || errors > 0) process.exit(1);
