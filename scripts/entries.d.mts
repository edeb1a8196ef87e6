/** A public entry point of the package, derived from package.json `exports` (see entries.mjs). */
export interface Entry {
  /** The key in `exports`: `.`, `./postgres`, … */
  readonly subpath: string;
  /** What users import: `oauth-mailbox`, `oauth-mailbox/postgres`, … */
  readonly specifier: string;
  /** The built file's base name in dist/: `index`, `postgres`, … (also the tsup entry name). */
  readonly name: string;
  /** The source file, relative to the repository root: `src/index.ts`, `src/testing/index.ts`, … */
  readonly source: string;
}
/** The repository's root folder. */
export declare const root: string;
/** Every public entry point, in the order of package.json `exports`. */
export declare const entries: readonly Entry[];
