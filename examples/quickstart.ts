/**
 * `npm run demo`: a connected mailbox from start to finish, narrated.
 *
 * - No configuration: the whole life cycle on embedded parts (a local OpenID provider, PGlite, an SMTP
 *   server, and Dovecot for IMAP when it is installed). See examples/quickstart/local.ts.
 * - GOOGLE_CLIENT_ID + GOOGLE_CLIENT_SECRET (or MS_CLIENT_ID + MS_CLIENT_SECRET [+ MS_TENANT]) set: your
 *   real mailbox, through the provider's consent page and a callback on localhost. See
 *   examples/quickstart/real.ts.
 *
 * TOKEN_KEY (32 bytes, base64) sets the encryption key; otherwise a random one is made for this run.
 */
import { isMailboxAuthError } from 'oauth-mailbox';
import { runLocal } from './quickstart/local.js';
import { configuredProvider, DemoConfigurationError, runReal } from './quickstart/real.js';

async function main(): Promise<void> {
  const which = configuredProvider(process.env);
  if (which === undefined) await runLocal();
  else await runReal(which, process.env);
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    if (error instanceof DemoConfigurationError) {
      console.error(`\nConfiguration: ${error.message}`);
    } else if (isMailboxAuthError(error)) {
      // Typed errors carry a stable code and never a secret: safe to print whole.
      console.error(`\nFailed: ${error.code} (${error.category}): ${error.message}`);
      if (error.category === 'configuration')
        console.error('Check the client id, secret and redirect URI registered with the provider.');
    } else {
      console.error('\nFailed:', error);
    }
    process.exit(1);
  },
);
