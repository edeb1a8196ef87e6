import { defineConfig } from 'tsup';
import { entries } from './scripts/entries.mjs';

export default defineConfig([
  {
    // The public entries, from package.json `exports` (scripts/entries.mjs).
    entry: Object.fromEntries(entries.map((e) => [e.name, e.source])),
    format: ['esm', 'cjs'],
    dts: true,
    sourcemap: true,
    clean: false, // the build script empties dist/ once; two parallel configs must not clean each other's output
    target: 'node20',
    platform: 'node',
    splitting: true,
    treeshake: true,
  },
  {
    // The operator CLI (`bin: oauth-mailbox`): ESM only, self-contained.
    entry: { cli: 'src/cli/bin.ts' },
    format: ['esm'],
    dts: false,
    sourcemap: true,
    clean: false,
    target: 'node20',
    platform: 'node',
    treeshake: true,
  },
]);
