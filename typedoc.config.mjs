// TypeDoc: one page per public entry, the entries read from package.json `exports` (scripts/entries.mjs).
import { entries } from './scripts/entries.mjs';

/** @type {Partial<import('typedoc').TypeDocOptions>} */
export default {
  name: 'oauth-mailbox',
  entryPoints: entries.map((e) => e.source),
  out: 'docs/api',
  tsconfig: 'tsconfig.docs.json',
  readme: 'none',
  disableSources: true,
  excludePrivate: true,
  excludeInternal: true,
  validation: {
    notExported: true,
    invalidLink: true,
    rewrittenLink: true,
    notDocumented: true,
    unusedMergeModuleWith: true,
  },
  treatWarningsAsErrors: true,
  intentionallyNotExported: ['MailErrorOptions', 'ERROR_TABLE'],
};
