/** The Dovecot harness says which package is missing, instead of letting every mail test fail to connect. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { dovecotUnavailableReason } from '../../examples/dev/dovecot.js';

describe('dovecotUnavailableReason', () => {
  it('names what is missing (dovecot, then imap, then submission), then accepts a complete install', () => {
    const libexec = mkdtempSync(join(tmpdir(), 'om-libexec-'));
    const paths = { dovecot: join(libexec, 'dovecot'), libexec };
    try {
      expect(dovecotUnavailableReason(paths)).toMatch(/dovecot is not installed/);
      writeFileSync(paths.dovecot, '');
      expect(dovecotUnavailableReason(paths)).toMatch(/imap is missing: dovecot-imapd/);
      writeFileSync(join(libexec, 'imap'), '');
      expect(dovecotUnavailableReason(paths)).toMatch(
        /submission is missing: dovecot-submissiond is not installed/,
      );
      writeFileSync(join(libexec, 'submission'), '');
      expect(dovecotUnavailableReason(paths)).toBeUndefined();
    } finally {
      rmSync(libexec, { recursive: true, force: true });
    }
  });
});
