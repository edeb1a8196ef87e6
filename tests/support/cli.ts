/** The CLI's injectable I/O for in-process runs: captured stdout/stderr, a temp cwd, a config loader. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** `runCli` I/O whose config module is `auth`; `out` and `err` collect what it writes. */
export function cliIo(auth: unknown, options: { tty?: boolean; now?: () => number } = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'oauth-mailbox-cli-'));
  writeFileSync(join(dir, 'oauth-mailbox.config.mjs'), 'export default {}');
  return {
    out,
    err,
    io: {
      stdout: { write: (t: string) => out.push(t) },
      stderr: { write: (t: string) => err.push(t), isTTY: options.tty ?? false },
      env: {},
      cwd: dir,
      loadConfig: async () => auth,
      ...(options.now === undefined ? {} : { now: options.now }),
    },
  };
}
