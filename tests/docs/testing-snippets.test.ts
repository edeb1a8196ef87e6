/**
 * docs/testing.md says every snippet on the page runs as written with vitest: this keeps it true. Its ```ts
 * blocks are grouped into test files (the rules are at `groupSnippets`), written to a git-ignored folder
 * inside the repository (tests/docs/.tmp/snippets-<random>/, so that `msw`, `vitest` and the `oauth-mailbox` /
 * `oauth-mailbox/testing` aliases of vitest.config.ts resolve as in the library's own tests, deleted
 * afterwards), run by vitest in a child process (no coverage, its own JSON report) and type-checked by tsc
 * with the repository's compiler options (vitest only strips types). Every snippet test must pass, as many
 * must run as the snippets have `it(` calls, and failures name the page's lines. Blocks in other languages
 * (```sh) are not code to run and are ignored; a ```ts block that is statements rather than a file says so
 * with a `<!-- snippet: fragment, … -->` comment and runs inside a test of the file it names.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const DOC = 'docs/testing.md';
/** The child run is stopped after this long; the test's own timeout is a little longer. */
const RUN_TIMEOUT_MS = 100_000;

interface Block {
  /** The line of the opening fence, 1-based. */
  readonly line: number;
  readonly lang: string;
  readonly code: string;
  /** The text of a `<!-- snippet: … -->` comment on the line(s) just before the fence. */
  readonly marker?: string;
}

interface Line {
  readonly text: string;
  /** Where it comes from in the page, or 0 for a line this test adds. */
  readonly docLine: number;
}

interface Group {
  /** Where the snippets assume the file lives, relative to the repository: relative imports are resolved from it. */
  readonly path: string;
  /** The fence line of its first block. */
  readonly line: number;
  readonly lines: Line[];
  /** How many tests its blocks declare. */
  tests: number;
}

/** The fenced code blocks of a Markdown page, with the line of each fence and the marker comment before it. */
function extractBlocks(markdown: string, doc = DOC): Block[] {
  const lines = markdown.split(/\r?\n/);
  const blocks: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^ {0,3}(`{3,}|~{3,})\s*([^\s`]*)/.exec(lines[i] ?? '');
    if (!open) continue;
    const fence = open[1] ?? '```';
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && !new RegExp(`^ {0,3}${fence}${fence[0]}*\\s*$`).test(lines[i] ?? ''); i++)
      body.push(lines[i] ?? '');
    if (i >= lines.length) throw new Error(`${doc}:${start + 1}: the code block opened here is never closed`);
    let before = start - 1;
    while (before >= 0 && (lines[before] ?? '').trim() === '') before--;
    const marker = /^<!--\s*snippet:\s*(.*?)\s*-->\s*$/.exec(lines[before] ?? '')?.[1];
    blocks.push({
      line: start + 1,
      lang: open[2] ?? '',
      code: body.join('\n'),
      ...(marker ? { marker } : {}),
    });
  }
  return blocks;
}

/** `// tests/mailbox.test.ts` as the first line of a block names the file it belongs to. */
const HEADER = /^\/\/\s*(\S+\.test\.ts)\s*$/;
/** A static `import …` line at the top level (not `import(`). */
const IMPORT = /^import[\s{*'"]/m;
/** `it(`, `test(`, `it.skip(`…: what a file declares; a skipped one is counted, then fails the run for not passing. */
const TEST_CALL = /(?<![\w.$])(?:it|test)(?:\.(?:only|skip|todo|fails|concurrent))*\s*\(/g;
/** `<!-- snippet: fragment, run in a test of tests/x.test.ts after: const { auth } = setup(); -->` */
const FRAGMENT = /^fragment, run in a test of (\S+\.test\.ts)(?: after: (.*))?$/;

const countTests = (code: string) => code.match(TEST_CALL)?.length ?? 0;
const toLines = (block: Block): Line[] =>
  block.code.split('\n').map((text, i) => ({ text, docLine: block.line + 1 + i }));

/**
 * Groups the ```ts blocks of the page into test files:
 *
 * 1. A block whose first line is a `// <path>.test.ts` comment belongs to that file: it starts it, or, if the
 *    file was started by an earlier block and this block has no imports, continues it.
 * 2. Otherwise a block with `import` lines starts a new file, assumed to be in tests/ (as the named ones are).
 * 3. Otherwise (no imports, no name) it continues the file of the block before it.
 * 4. A block marked `<!-- snippet: fragment, run in a test of <path>.test.ts after: <code> -->` is statements,
 *    not a file: it becomes the body of one more test in that file (after `<code>`, which gives it the
 *    variables the page assumes).
 *
 * Anything else (a continuation before any file, a block with imports naming a file already started, an unknown
 * marker, a fragment for a file the page does not have) is an error naming the block's line.
 */
function groupSnippets(blocks: readonly Block[], doc = DOC): Group[] {
  const groups: Group[] = [];
  const byPath = new Map<string, Group>();
  const fragments: { block: Block; path: string; before: string }[] = [];
  let previous: Group | undefined;
  for (const block of blocks) {
    if (block.lang !== 'ts' && block.lang !== 'typescript') continue;
    const where = `${doc}:${block.line}`;
    if (block.marker !== undefined) {
      const fragment = FRAGMENT.exec(block.marker);
      if (!fragment)
        throw new Error(
          `${where}: unknown marker "<!-- snippet: ${block.marker} -->" (known: "fragment, run in a test of <path>.test.ts after: <code>")`,
        );
      fragments.push({ block, path: fragment[1] ?? '', before: fragment[2] ?? '' });
      continue;
    }
    const name = HEADER.exec(block.code.split('\n', 1)[0] ?? '')?.[1];
    const imports = IMPORT.test(block.code);
    let group = name === undefined ? undefined : byPath.get(name);
    if (group && imports)
      throw new Error(
        `${where}: this block has imports, so it starts a file, but ${name} was already started at ${doc}:${group.line}`,
      );
    if (!group && (name !== undefined || imports)) {
      const path = name ?? `tests/testing-md-${block.line}.test.ts`;
      group = { path, line: block.line, lines: [], tests: 0 };
      groups.push(group);
      byPath.set(path, group);
    }
    group ??= previous;
    if (!group)
      throw new Error(
        `${where}: this block has no imports and no "// <path>.test.ts" first line, so it continues the file before it, but there is none. Start it with imports, name its file, or mark it as a fragment`,
      );
    if (group.lines.length > 0) group.lines.push({ text: '', docLine: 0 });
    group.lines.push(...toLines(block));
    group.tests += countTests(block.code);
    previous = group;
  }
  for (const { block, path, before } of fragments) {
    const group = byPath.get(path);
    if (!group)
      throw new Error(
        `${doc}:${block.line}: a fragment for ${path}, but no block starts that file (known: ${[...byPath.keys()].join(', ') || 'none'})`,
      );
    const title = JSON.stringify(`${doc}:${block.line} (a fragment)`);
    group.lines.push({ text: '', docLine: 0 }, { text: `it(${title}, async () => {`, docLine: block.line });
    if (before) group.lines.push({ text: before, docLine: block.line });
    group.lines.push(...toLines(block), { text: '});', docLine: block.line });
    group.tests += 1 + countTests(block.code);
  }
  return groups;
}

/** The generated file's name for a group: not `*.test.ts`, so that the main run never picks it up. */
const fileName = (group: Group, index: number) =>
  `${index + 1}-${basename(group.path).replace(/\.test\.ts$/, '')}.snippet.ts`;

/**
 * The group's code as a file in `dir`: relative imports (`'../examples/routes.js'`) are resolved from where the
 * snippets assume the file is (`group.path`) and rewritten to the same target from `dir`.
 */
function renderGroup(group: Group, dir: string, root = ROOT, doc = DOC): string {
  const from = dirname(resolve(root, group.path));
  return group.lines
    .map(({ text, docLine }) =>
      text.replace(
        /(\bfrom\s*|\bimport\s*\(\s*|^\s*import\s*)(['"])(\.{1,2}\/[^'"]*)\2/g,
        (_all, lead: string, quote: string, specifier: string) => {
          const target = resolve(from, specifier);
          const candidates = [target, target.replace(/\.(m?)js$/, '.$1ts'), target.replace(/\.js$/, '.tsx')];
          if (!candidates.some((c) => existsSync(c)))
            throw new Error(
              `${doc}:${docLine}: '${specifier}', seen from ${group.path}, is ${relative(root, target)}, which does not exist`,
            );
          const moved = relative(dir, target).split(sep).join('/');
          return `${lead}${quote}${moved.startsWith('.') ? moved : `./${moved}`}${quote}`;
        },
      ),
    )
    .join('\n');
}

/** What vitest's JSON reporter writes (the part used here). */
interface JsonReport {
  numTotalTests: number;
  numPassedTests: number;
  testResults: {
    name: string;
    status: string;
    message?: string;
    assertionResults: { fullName: string; status: string; failureMessages: string[] }[];
  }[];
}

/** Runs a Node script of the repository in a child process, stopped after RUN_TIMEOUT_MS. */
function runNode(script: string, args: string[]): Promise<{ exit: number | null; output: string }> {
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1' };
  // The child is a run of its own: not a worker of this run, not under its coverage.
  for (const key of Object.keys(env))
    if (key.startsWith('VITEST') || key === 'NODE_V8_COVERAGE' || key === 'FORCE_COLOR') delete env[key];
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [join(ROOT, script), ...args], {
      cwd: ROOT,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk) => {
      output += chunk;
    });
    child.stderr.on('data', (chunk) => {
      output += chunk;
    });
    const timer = setTimeout(() => {
      output += `\n[${script} stopped after ${RUN_TIMEOUT_MS} ms]`;
      child.kill('SIGKILL');
    }, RUN_TIMEOUT_MS);
    child.once('error', fail);
    child.once('close', (exit) => {
      clearTimeout(timer);
      done({ exit, output });
    });
  });
}

describe(`${DOC} snippets`, () => {
  it('grouping: named files, files started by imports, continuations, fragments; others are errors', () => {
    const page = [
      '```sh',
      'npm test',
      '```',
      '```ts',
      '// tests/a.test.ts',
      "import { it } from 'vitest';",
      "it('one', () => {});",
      '```',
      '```ts',
      "it('two', () => {});",
      '```',
      '```ts',
      "import { it } from 'vitest';",
      "it('three', () => {});",
      '```',
      '```ts',
      '// tests/a.test.ts',
      "it('four', () => {});",
      '```',
      '<!-- snippet: fragment, run in a test of tests/a.test.ts after: const x = 1; -->',
      '```ts',
      'x;',
      '```',
    ].join('\n');
    const groups = groupSnippets(extractBlocks(page, 'page.md'), 'page.md');
    expect(groups.map((g) => [g.path, g.line, g.tests])).toEqual([
      ['tests/a.test.ts', 4, 4],
      ['tests/testing-md-12.test.ts', 12, 1],
    ]);
    expect(groups[0]?.lines.map((l) => l.text)).toContain("it('two', () => {});");
    expect(groups[0]?.lines.map((l) => l.text)).toContain("it('four', () => {});");
    expect(groups[0]?.lines.slice(-4).map((l) => l.text)).toEqual([
      `it("page.md:21 (a fragment)", async () => {`,
      'const x = 1;',
      'x;',
      '});',
    ]);

    const group = (markdown: string) => () => groupSnippets(extractBlocks(markdown, 'page.md'), 'page.md');
    expect(group("```ts\nit('x', () => {});\n```")).toThrow(
      'page.md:1: this block has no imports and no "// <path>.test.ts" first line',
    );
    expect(
      group("```ts\n// tests/a.test.ts\nimport 'a';\n```\n```ts\n// tests/a.test.ts\nimport 'b';\n```"),
    ).toThrow(
      'page.md:5: this block has imports, so it starts a file, but tests/a.test.ts was already started at page.md:1',
    );
    expect(group('<!-- snippet: skip -->\n```ts\nx;\n```')).toThrow('page.md:2: unknown marker');
    expect(group('<!-- snippet: fragment, run in a test of tests/b.test.ts -->\n```ts\nx;\n```')).toThrow(
      'page.md:2: a fragment for tests/b.test.ts, but no block starts that file',
    );
    expect(group('```ts\nx;\n')).toThrow('page.md:1: the code block opened here is never closed');
  });

  it('relative imports are resolved from where the snippet assumes it is', () => {
    const [routes] = groupSnippets(
      extractBlocks(
        "```ts\nimport { start } from '../examples/routes.js';\nimport { x } from 'vitest';\n```",
      ),
    );
    if (!routes) throw new Error('no group');
    const dir = join(ROOT, 'tests/docs/.tmp/somewhere');
    expect(renderGroup(routes, dir)).toBe(
      "import { start } from '../../../../examples/routes.js';\nimport { x } from 'vitest';",
    );
    const [missing] = groupSnippets(extractBlocks("```ts\nimport { start } from './routes.js';\n```"));
    if (!missing) throw new Error('no group');
    expect(() => renderGroup(missing, dir)).toThrow(
      `${DOC}:2: './routes.js', seen from tests/testing-md-1.test.ts, is tests/routes.js, which does not exist`,
    );
  });

  it(
    'every snippet runs as written with vitest, passes, and type-checks',
    async () => {
      const groups = groupSnippets(extractBlocks(readFileSync(join(ROOT, DOC), 'utf8')));
      expect(groups.length, `${DOC} has no \`\`\`ts snippets`).toBeGreaterThan(0);
      const expected = groups.reduce((sum, g) => sum + g.tests, 0);

      // .tmp/ is git-ignored (and so skipped by biome), tsc's `include` skips dot folders, and the files are
      // not *.test.ts: neither the main run nor the linters see them, even when a killed run leaves them.
      const parent = join(ROOT, 'tests/docs/.tmp');
      const dir = join(parent, `snippets-${randomBytes(4).toString('hex')}`);
      const posix = (path: string) => path.split(sep).join('/');
      const fromDir = (to: string) => JSON.stringify(posix(relative(dir, to)));
      mkdirSync(dir, { recursive: true });
      try {
        const files = groups.map((group, i) => {
          const file = join(dir, fileName(group, i));
          writeFileSync(file, `${renderGroup(group, dir)}\n`);
          return { group, file };
        });
        const report = join(dir, 'report.json');
        const config = join(dir, 'vitest.config.ts');
        writeFileSync(
          config,
          [
            `import base from ${fromDir(join(ROOT, 'vitest.config.ts'))};`,
            "// The library's aliases (oauth-mailbox -> src/), only the snippet files; no coverage, no results cache,",
            '// a JSON report of its own (not the JUnit file CI keeps).',
            'export default {',
            '  resolve: base.resolve,',
            '  test: {',
            `    root: ${JSON.stringify(ROOT)},`,
            `    include: ${JSON.stringify(files.map(({ file }) => posix(relative(ROOT, file))))},`,
            '    testTimeout: 20_000,',
            "    reporters: ['json'],",
            `    outputFile: { json: ${JSON.stringify(report)} },`,
            '    coverage: { enabled: false },',
            '    cache: false,',
            '    watch: false,',
            '  },',
            '};',
            '',
          ].join('\n'),
        );
        // The repository's compiler options (strict, the `oauth-mailbox` paths), for the snippet files only.
        const tsconfig = join(dir, 'tsconfig.json');
        writeFileSync(
          tsconfig,
          JSON.stringify({
            extends: JSON.parse(fromDir(join(ROOT, 'tsconfig.json'))),
            include: ['*.snippet.ts'],
          }),
        );

        const [run, types] = await Promise.all([
          runNode('node_modules/vitest/vitest.mjs', ['run', '--config', config]),
          runNode('node_modules/typescript/bin/tsc', ['--noEmit', '--pretty', 'false', '-p', tsconfig]),
        ]);

        // Messages name the page's lines (docs/testing.md:123), not the generated files'.
        const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
        const where = (text: string) =>
          files.reduce((t, { group, file }) => {
            const paths = `(?:${escapeRegExp(file)}|${escapeRegExp(posix(relative(ROOT, file)))})`;
            return t.replace(
              new RegExp(`${paths}(?::(\\d+)(?::\\d+)?|\\((\\d+),\\d+\\))`, 'g'),
              (all, a, b) => {
                const docLine = group.lines[Number(a ?? b) - 1]?.docLine;
                return docLine ? `${DOC}:${docLine}` : all;
              },
            );
          }, text);
        const problems: string[] = [];
        if (types.exit !== 0) problems.push(`tsc: ${where(types.output.trim()).split('\n').join('\n    ')}`);
        if (!existsSync(report)) {
          problems.push(`vitest wrote no report (exit ${run.exit}):\n${where(run.output)}`);
        } else {
          const result = JSON.parse(readFileSync(report, 'utf8')) as JsonReport;
          for (const { group, file } of files) {
            const label = `${group.path} (the file starting at ${DOC}:${group.line})`;
            const ran = result.testResults.find((r) => resolve(r.name) === file);
            if (!ran) {
              problems.push(`${label}: not run`);
              continue;
            }
            if (ran.message) problems.push(`${label}: ${where(ran.message)}`);
            for (const test of ran.assertionResults)
              if (test.status !== 'passed')
                problems.push(
                  `${label}: "${test.fullName}" ${test.status}${test.failureMessages
                    .map((m) => `\n    ${where(m).split('\n').slice(0, 12).join('\n    ')}`)
                    .join('')}`,
                );
          }
          if (result.numTotalTests !== expected || result.numPassedTests !== expected)
            problems.push(
              `the snippets declare ${expected} tests (their it( calls, plus one per fragment): ${result.numTotalTests} ran, ${result.numPassedTests} passed`,
            );
          if (run.exit !== 0 && problems.length === 0)
            problems.push(`vitest exit ${run.exit}:\n${where(run.output)}`);
        }
        if (problems.length > 0)
          throw new Error(`${DOC}: its snippets do not run as written:\n- ${problems.join('\n- ')}`);
      } finally {
        rmSync(dir, { recursive: true, force: true });
        if (existsSync(parent) && readdirSync(parent).length === 0) rmdirSync(parent);
      }
    },
    RUN_TIMEOUT_MS + 20_000,
  );
});
