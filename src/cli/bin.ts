#!/usr/bin/env node
import { runCli } from './run.js';

/** How long the process may stay up after the command, for handles the configuration left open. */
const EXIT_GRACE_MS = 2000;

process.exitCode = await runCli(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
  cwd: process.cwd(),
});
// The command is done and the configuration closed (`auth.close()`, its `close` export): the process ends
// now unless something is still open, such as a client a configuration without a `close` export created.
// Then it ends anyway, after a grace period, saying why. The timer itself keeps nothing alive.
setTimeout(() => {
  process.stderr.write(
    'oauth-mailbox: the configuration left connections open; export a close() from it that ends them (see docs/operations.md)\n',
  );
  process.exit();
}, EXIT_GRACE_MS).unref();
