// CI: the plain closing line of the whole run, `N passed, N failed, N skipped`, over every JUnit report the run
// wrote (test-results/junit*.xml: the main suite and the Next.js example's). .ci/run prints it on every exit, also
// when a step failed; a missing report counts nothing. A test that is in two reports (the Next.js tests skip in
// the main run and run in their own step) counts once, by its worst outcome that ran: failed, then passed.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const folder = process.argv[2] ?? 'test-results';
const reports = existsSync(folder) ? readdirSync(folder).filter((name) => /^junit.*\.xml$/.test(name)) : [];
const rank = { skipped: 0, passed: 1, failed: 2 };
/** @type {Map<string, 'passed' | 'failed' | 'skipped'>} */
const outcomes = new Map();
for (const name of reports) {
  const xml = readFileSync(join(folder, name), 'utf8');
  for (const match of xml.matchAll(/<testcase\b([^>]*?)(\/>|>([\s\S]*?)<\/testcase>)/g)) {
    const attrs = match[1] ?? '';
    const body = match[3] ?? '';
    const key = `${/\bclassname="([^"]*)"/.exec(attrs)?.[1]}\u0000${/\bname="([^"]*)"/.exec(attrs)?.[1]}`;
    const outcome = /<(failure|error)\b/.test(body)
      ? 'failed'
      : /<skipped\b/.test(body)
        ? 'skipped'
        : 'passed';
    const before = outcomes.get(key);
    if (before === undefined || rank[outcome] > rank[before]) outcomes.set(key, outcome);
  }
}
const count = (outcome) => [...outcomes.values()].filter((value) => value === outcome).length;
console.log(`${count('passed')} passed, ${count('failed')} failed, ${count('skipped')} skipped`);
