// The public entry points: the one list is package.json `exports`. tsup, vitest, TypeDoc and the TSDoc check
// read it from here; `tests/package/entries.test.ts` keeps the tsconfig `paths` in step, and
// `scripts/check-package.mjs` checks that every export resolves to a file in the packed tarball.
//
// Each export `./<sub>` (the main entry is `.`) points at `./dist/<name>.{js,cjs,d.ts,d.cts}`, built from
// `src/<name>.ts` or `src/<name>/index.ts`.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository's root folder. */
export const root = fileURLToPath(new URL('..', import.meta.url));

const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));

/** What each export of an entry must point at, for its built file name. */
const targetsOf = (name) => ({
  import: { types: `./dist/${name}.d.ts`, default: `./dist/${name}.js` },
  require: { types: `./dist/${name}.d.cts`, default: `./dist/${name}.cjs` },
});

/** @type {import('./entries.d.mts').Entry[]} */
export const entries = Object.entries(pkg.exports)
  .filter(([subpath]) => subpath !== './package.json')
  .map(([subpath, target]) => {
    const name = /^\.\/dist\/([\w-]+)\.js$/.exec(target?.import?.default ?? '')?.[1];
    if (name === undefined || JSON.stringify(target) !== JSON.stringify(targetsOf(name))) {
      throw new Error(
        `package.json exports["${subpath}"] must be ${JSON.stringify(targetsOf(name ?? '<name>'))} (got ${JSON.stringify(target)})`,
      );
    }
    const source = [`src/${name}.ts`, `src/${name}/index.ts`].find((file) => existsSync(join(root, file)));
    if (source === undefined) {
      throw new Error(
        `package.json exports["${subpath}"]: no src/${name}.ts or src/${name}/index.ts to build it from`,
      );
    }
    const specifier = subpath === '.' ? pkg.name : `${pkg.name}/${subpath.slice(2)}`;
    return { subpath, specifier, name, source };
  });
