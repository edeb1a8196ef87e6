/**
 * Run the Express example:
 *
 *   npx tsx --tsconfig examples/tsconfig.json examples/express/server.ts          # dev mode, no account needed
 *   GOOGLE_CLIENT_ID=… GOOGLE_CLIENT_SECRET=… TOKEN_KEY=… npx tsx … server.ts      # real Gmail
 *
 * See examples/express/README.md for every variable.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { isMailboxAuthError } from 'oauth-mailbox';
import { createApp, type MailboxApp } from './app.js';
import { AppConfigurationError, configFromEnv } from './config.js';

async function main(): Promise<void> {
  const config = configFromEnv(process.env, process.argv.slice(2));

  // Listen first, so that with PORT=0 the origin (and the dev provider's redirect URI) has the real port.
  // Dev mode listens on 127.0.0.1 only (HOST overrides); otherwise every interface unless HOST is set.
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    if (config.host === undefined) server.listen(config.port, resolve);
    else server.listen(config.port, config.host, resolve);
  });
  const { port } = server.address() as AddressInfo;
  const origin = config.origin ?? `http://localhost:${port}`;

  let mailboxApp: MailboxApp;
  try {
    mailboxApp = await createApp({ ...config, origin });
  } catch (error) {
    server.close();
    throw error;
  }
  server.on('request', mailboxApp.app);

  const names = mailboxApp.auth.listProviders().map((p) => p.displayName);
  console.log(
    `oauth-mailbox Express example on ${origin} (listening on ${config.host ?? 'every interface'})`,
  );
  console.log(`  providers: ${names.join(', ')}`);
  console.log(`  store: ${config.databaseUrl === undefined ? 'memory (lost on restart)' : 'PostgreSQL'}`);
  if (mailboxApp.dev !== undefined) {
    console.log(`  dev mode: local OpenID provider at ${mailboxApp.dev.op.issuer} (any login, any password)`);
    console.log(`  dev mode: SMTP server checking tokens on 127.0.0.1:${mailboxApp.dev.sink.port}`);
    console.log(
      mailboxApp.dev.dovecot === undefined
        ? `  dev mode: no IMAP server (${mailboxApp.dev.noDovecot})`
        : `  dev mode: Dovecot IMAP on 127.0.0.1:${mailboxApp.dev.dovecot.imapPort}`,
    );
  }

  const stop = () => {
    server.closeAllConnections();
    server.close();
    mailboxApp.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

main().catch((error: unknown) => {
  if (error instanceof AppConfigurationError) console.error(`Configuration: ${error.message}`);
  else if (isMailboxAuthError(error)) console.error(`Failed to start: ${error.code}: ${error.message}`);
  else console.error('Failed to start:', error);
  process.exit(1);
});
