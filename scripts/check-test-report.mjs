// CI: the test run must have executed tests. Reads vitest's JUnit report and prints what ran; fails when
// nothing ran or when more than a few tests were skipped (a missing service in CI is an error, not a skip).
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
