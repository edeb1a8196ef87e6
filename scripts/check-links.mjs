// CI: every relative link in the Markdown docs resolves. Checks README.md, CHANGELOG.md, docs/*.md and the
// examples' READMEs:
// a link to a file or folder must exist, and a `#anchor` (in the same page or another Markdown page) must
// name a heading of that page, slugged as GitHub does. External links (http:, https:, mailto:) are not
// fetched. Code spans and fenced code blocks are ignored. Also checks that docs/errors.md has a table row for
// every error code of src/errors.ts. Exits 1 and lists every problem.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const pages = [
  'README.md',
  'CHANGELOG.md',
  ...readdirSync(join(root, 'docs'))
    .filter((name) => name.endsWith('.md'))
    .sort()
    .map((name) => `docs/${name}`),
  ...readdirSync(join(root, 'examples'))
    .map((name) => `examples/${name}/README.md`)
    .sort(),
].filter((page) => existsSync(join(root, page)));

/** Lines outside fenced code blocks, with inline code spans blanked out. */
function proseLines(text) {
  const out = [];
  let fence = null;
  for (const [index, line] of text.split('\n').entries()) {
    const marker = /^\s{0,3}(`{3,}|~{3,})/.exec(line);
    if (fence !== null) {
      if (marker !== null && marker[1][0] === fence[0] && marker[1].length >= fence.length) fence = null;
      continue;
    }
    if (marker !== null) {
      fence = marker[1];
      continue;
    }
    out.push({ number: index + 1, text: line.replace(/(`+)(?:(?!\1).)+?\1/g, (m) => ' '.repeat(m.length)) });
  }
  return out;
}

/** GitHub's heading slug (github-slugger): lower case, punctuation dropped, spaces to hyphens. */
function slug(heading) {
  const text = heading
    .replace(/<[^>]+>/g, '') // HTML tags
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1') // links and images: their text
    .replace(/`/g, '') // code spans keep their text
    .replace(/\*+/g, '') // emphasis markers
    .trim()
    .toLowerCase();
  return text.replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '').replace(/ /g, '-');
}

const anchorCache = new Map();
/** Every anchor of a Markdown page: heading slugs (duplicates numbered -1, -2, ...) and HTML ids. */
function anchorsOf(file) {
  let anchors = anchorCache.get(file);
  if (anchors !== undefined) return anchors;
  anchors = new Set();
  const seen = new Map();
  const text = readFileSync(file, 'utf8');
  for (const { text: line } of proseLines(text)) {
    const heading = /^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (heading !== null) {
      // Code spans were blanked in `line`; take the heading from the raw text of the page.
      const base = slug(rawHeading(text, line) ?? heading[1]);
      const count = seen.get(base) ?? 0;
      seen.set(base, count + 1);
      anchors.add(count === 0 ? base : `${base}-${count}`);
    }
    for (const id of line.matchAll(/<a\s+[^>]*(?:id|name)="([^"]+)"/g)) anchors.add(id[1]);
  }
  anchorCache.set(file, anchors);
  return anchors;
}

/** The raw line of the page whose blanked form is `blanked` (same length, same non-code characters). */
function rawHeading(text, blanked) {
  for (const raw of text.split('\n')) {
    if (raw.length !== blanked.length) continue;
    let same = true;
    for (let i = 0; i < raw.length && same; i++) same = blanked[i] === ' ' || blanked[i] === raw[i];
    if (same) return /^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$/.exec(raw)?.[1];
  }
  return undefined;
}

/** Link targets of a line: inline links and images `[text](target "title")` and reference definitions. */
function targetsOf(line) {
  const targets = [];
  for (const match of line.matchAll(/!?\[(?:[^\]\\]|\\.)*\]\(\s*<?([^)\s>]*)>?(?:\s+"[^"]*")?\s*\)/g)) {
    targets.push(match[1]);
  }
  const definition = /^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+"[^"]*")?\s*$/.exec(line);
  if (definition !== null) targets.push(definition[1]);
  return targets;
}

const broken = [];
let checked = 0;
for (const page of pages) {
  const file = join(root, page);
  for (const { number, text } of proseLines(readFileSync(file, 'utf8'))) {
    for (const target of targetsOf(text)) {
      if (target === '' || /^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // external, mailto:, ...
      checked++;
      const [pathPart, anchor] = target.split('#', 2);
      const path = decodeURIComponent(pathPart);
      const destination = path === '' ? file : resolve(dirname(file), path);
      const where = `${page}:${number}`;
      if (!existsSync(destination)) {
        broken.push(`${where}: ${target} — no such file or folder (${relative(root, destination)})`);
        continue;
      }
      if (anchor === undefined) continue;
      if (statSync(destination).isDirectory() || !destination.endsWith('.md')) {
        broken.push(`${where}: ${target} — an anchor into something that is not a Markdown page`);
        continue;
      }
      if (!anchorsOf(destination).has(decodeURIComponent(anchor))) {
        broken.push(`${where}: ${target} — ${relative(root, destination)} has no heading #${anchor}`);
      }
    }
  }
}

// Every error code has its row in docs/errors.md (codes are added in src/errors.ts, docs drift).
// The codes are the keys of the one error table (`const ERROR_TABLE = { ERR_…: { … }, … }`).
const table = /const ERROR_TABLE = \{([\s\S]*?)\n\} as const/.exec(
  readFileSync(join(root, 'src/errors.ts'), 'utf8'),
);
const codes = [...(table?.[1] ?? '').matchAll(/^\s+(ERR_[A-Z_]+): \{/gm)].map((m) => m[1]);
const errorsPage = readFileSync(join(root, 'docs/errors.md'), 'utf8');
if (codes.length === 0) broken.push('src/errors.ts: could not read the codes of ERROR_TABLE');
for (const code of codes) {
  if (!errorsPage.includes(`| \`${code}\` |`)) broken.push(`docs/errors.md: no table row for ${code}`);
}

if (broken.length > 0) {
  console.error(`${broken.length} problem(s) in the docs:\n${broken.join('\n')}`);
  process.exit(1);
}
console.log(
  `Docs: ${checked} relative links in ${pages.length} pages resolve (files and #anchors); docs/errors.md covers all ${codes.length} error codes`,
);
