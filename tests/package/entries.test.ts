// The entry points have one list, package.json `exports` (scripts/entries.mjs); tsup, vitest, TypeDoc and
// the TSDoc check read it. The tsconfig `paths` (JSON, so they cannot read it) must name the same entries.
import { readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { entries, root } from '../../scripts/entries.mjs';

function paths(tsconfig: string): Record<string, string[]> {
  const file = join(root, tsconfig);
  const { config, error } = ts.readConfigFile(file, (f) => readFileSync(f, 'utf8'));
  if (error) throw new Error(ts.flattenDiagnosticMessageText(error.messageText, '\n'));
  const base = dirname(file);
  // Resolved against the tsconfig's folder, as TypeScript does (baseUrl or, without one, the file's folder).
  const from = join(base, config.compilerOptions.baseUrl ?? '.');
  return Object.fromEntries(
    Object.entries(config.compilerOptions.paths as Record<string, string[]>).map(([k, v]) => [
      k,
      v.map((p) => relative(root, join(from, p))),
    ]),
  );
}

describe('entry points', () => {
  it('are the exports of package.json, the main entry first, each built from its own source file', () => {
    expect(entries[0]).toMatchObject({ subpath: '.', specifier: 'oauth-mailbox', source: 'src/index.ts' });
    expect(new Set(entries.map((e) => e.source)).size).toBe(entries.length);
  });

  for (const tsconfig of ['tsconfig.json', 'examples/tsconfig.json']) {
    it(`match the paths of ${tsconfig}`, () => {
      expect(paths(tsconfig)).toEqual(Object.fromEntries(entries.map((e) => [e.specifier, [e.source]])));
    });
  }
});
