/**
 * Run the NestJS example:
 *
 *   npm run example:nestjs                                                          # dev mode, no account needed
 *   GOOGLE_CLIENT_ID=… GOOGLE_CLIENT_SECRET=… TOKEN_KEY=… npm run example:nestjs     # real Gmail
 *
 * It reads the same variables as the Express example (examples/express/README.md); redirect URIs are
 * `<APP_ORIGIN>/integrations/callback/<provider>`. See examples/nestjs/README.md.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { isMailboxAuthError } from 'oauth-mailbox';
import { AppConfigurationError, configFromEnv } from '../express/config.js';
import { createApp, type NestMailboxApp } from './app.js';

async function main(): Promise<void> {
  const config = configFromEnv(process.env, process.argv.slice(2));

  // Listen first, so that with PORT=0 the origin (and the dev provider's redirect URI) has the real port.
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    if (config.host === undefined) server.listen(config.port, resolve);
    else server.listen(config.port, config.host, resolve);
  });
  const { port } = server.address() as AddressInfo;
  const origin = config.origin ?? `http://localhost:${port}`;

  let app: NestMailboxApp;
  try {
    app = await createApp({ ...config, origin, dev: config.dev !== false });
  } catch (error) {
    server.close();
    throw error;
  }
  server.on('request', app.http);

  console.log(`oauth-mailbox NestJS example on ${origin} (listening on ${config.host ?? 'every interface'})`);
  console.log(
    `  providers: ${app.auth
      .listProviders()
      .map((p) => p.id)
      .join(', ')}`,
  );
  console.log(`  store: ${config.databaseUrl === undefined ? 'memory (lost on restart)' : 'PostgreSQL'}`);
  if (app.dev !== undefined)
    console.log(`  dev mode: local OpenID provider at ${app.dev.op.issuer} (any login, any password)`);
  console.log(
    `  try: curl -i -c jar -H 'content-type: application/json' -d '{"user":"ada"}' ${origin}/demo/sign-in`,
  );
  console.log(
    `       curl -b jar ${origin}/integrations/oauth-url/${app.auth.listProviders()[0]?.id ?? 'local'}`,
  );

  const stop = () => {
    server.closeAllConnections();
    server.close();
    app.close().then(
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
