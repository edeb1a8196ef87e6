/**
 * The quickstart against a real provider: with GOOGLE_CLIENT_ID / GOOGLE_CLIENT_SECRET (or MS_CLIENT_ID /
 * MS_CLIENT_SECRET, optionally MS_TENANT) in the environment it opens the consent page, receives the callback
 * on localhost, lists the newest unread messages of the real mailbox over IMAP, then disconnects: the grant is
 * revoked at Google (Microsoft has no revocation endpoint; the demo says so) and deleted here.
 *
 * Register `http://localhost:53682/oauth/google/callback` (or `.../microsoft/callback`; the port is
 * DEMO_PORT) as a redirect URI of your OAuth client first: see docs/providers.md.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import {
  aesGcmCipher,
  createMailboxAuth,
  google,
  isMailboxAuthError,
  type MailboxAuth,
  memoryStore,
  microsoft,
  type OAuthProvider,
} from 'oauth-mailbox';
import { clip, show, step } from './narrate.js';

const OWNER = 'demo-user';

/** A configuration problem the user can fix: printed without a stack trace. */
export class DemoConfigurationError extends Error {
  override readonly name = 'DemoConfigurationError';
}

/** Which real provider the environment configures, or `undefined` for the local demo. */
export function configuredProvider(env: NodeJS.ProcessEnv): 'google' | 'microsoft' | undefined {
  const google = env.GOOGLE_CLIENT_ID !== undefined || env.GOOGLE_CLIENT_SECRET !== undefined;
  const ms = env.MS_CLIENT_ID !== undefined || env.MS_CLIENT_SECRET !== undefined;
  if (env.DEMO_PROVIDER !== undefined) {
    if (env.DEMO_PROVIDER !== 'google' && env.DEMO_PROVIDER !== 'microsoft')
      throw new DemoConfigurationError('DEMO_PROVIDER must be "google" or "microsoft"');
    return env.DEMO_PROVIDER;
  }
  return google ? 'google' : ms ? 'microsoft' : undefined;
}

function required(env: NodeJS.ProcessEnv, name: string, hint: string): string {
  const value = env[name]?.trim();
  if (value === undefined || value === '')
    throw new DemoConfigurationError(`${name} is missing: ${hint} (see docs/providers.md)`);
  return value;
}

function demoPort(env: NodeJS.ProcessEnv): number {
  const port = Number(env.DEMO_PORT ?? 53682);
  if (!Number.isInteger(port) || port < 1 || port > 65_535)
    throw new DemoConfigurationError('DEMO_PORT must be a port number (1-65535)');
  return port;
}

function buildProvider(which: 'google' | 'microsoft', env: NodeJS.ProcessEnv, port: number): OAuthProvider {
  const redirectUri = `http://localhost:${port}/oauth/${which}/callback`;
  if (which === 'google') {
    return google({
      clientId: required(env, 'GOOGLE_CLIENT_ID', 'the OAuth client id from Google Cloud console'),
      clientSecret: required(
        env,
        'GOOGLE_CLIENT_SECRET',
        'the OAuth client secret from Google Cloud console',
      ),
      redirectUri,
    });
  }
  return microsoft({
    clientId: required(env, 'MS_CLIENT_ID', 'the application (client) id from Microsoft Entra'),
    clientSecret: required(env, 'MS_CLIENT_SECRET', 'a client secret of the Entra app registration'),
    redirectUri,
    tenant: env.MS_TENANT ?? 'common',
  });
}

/** Open a URL in the user's browser, when there is a terminal to come back to. */
function openBrowser(url: string): void {
  if (process.stdout.isTTY !== true || process.env.DEMO_NO_BROWSER !== undefined) return;
  const command =
    process.platform === 'darwin' ? 'open' : process.platform === 'win32' ? 'explorer' : 'xdg-open';
  const child = spawn(command, [url], { stdio: 'ignore', detached: true });
  child.on('error', () => {}); // no opener installed: the URL is printed anyway
  child.unref();
}

function page(res: ServerResponse, status: number, text: string): void {
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8' });
  res.end(
    `<!doctype html><meta charset="utf-8"><title>oauth-mailbox demo</title><p>${text
      .replaceAll('&', '&amp;')
      .replaceAll('<', '&lt;')}</p>`,
  );
}

/** Serve the redirect URI until one callback completes (or fails), then stop listening. */
async function receiveCallback(auth: MailboxAuth, which: string, port: number, timeoutMs: number) {
  return new Promise<Awaited<ReturnType<MailboxAuth['completeAuthorization']>>>((resolve, reject) => {
    const server = createServer((req: IncomingMessage, res: ServerResponse) => {
      const url = new URL(req.url ?? '/', `http://localhost:${port}`);
      if (url.pathname !== `/oauth/${which}/callback`) return page(res, 404, 'Not found');
      auth.completeAuthorization(which, url, { owner: OWNER }).then(
        (completed) => {
          page(res, 200, `Connected ${completed.account.email}. You can close this tab.`);
          finish(() => resolve(completed));
        },
        (error: unknown) => {
          page(
            res,
            400,
            `Not connected: ${isMailboxAuthError(error) ? error.code : 'error'}. See the terminal.`,
          );
          finish(() => reject(error));
        },
      );
    });
    const timer = setTimeout(
      () => finish(() => reject(new DemoConfigurationError('no callback within 5 minutes'))),
      timeoutMs,
    );
    const finish = (settle: () => void) => {
      clearTimeout(timer);
      server.close();
      server.closeAllConnections();
      settle();
    };
    server.once('error', (error: NodeJS.ErrnoException) =>
      finish(() =>
        reject(
          error.code === 'EADDRINUSE'
            ? new DemoConfigurationError(
                `port ${port} is taken: set DEMO_PORT (and register that redirect URI)`,
              )
            : error,
        ),
      ),
    );
    server.listen(port, 'localhost', () => {
      console.log(`   (listening on http://localhost:${port} for the callback)`);
    });
  });
}

export async function runReal(which: 'google' | 'microsoft', env: NodeJS.ProcessEnv): Promise<void> {
  const port = demoPort(env);
  step(`Configure ${which} from the environment`);
  const provider = buildProvider(which, env, port);
  show('redirect URI (must be registered with the provider)', provider.redirectUri);
  show('scopes', provider.scopes.join(' '));
  const auth = createMailboxAuth({
    providers: [provider],
    store: memoryStore(),
    cipher: aesGcmCipher({
      keys: { k1: env.TOKEN_KEY ?? randomBytes(32).toString('base64') },
      current: 'k1',
    }),
    allowedOrigins: [`http://localhost:${port}`],
  });

  step('Open the consent page');
  const { url } = await auth.startAuthorization(which, { owner: OWNER });
  console.log(`   ${url.href}`);
  show('open it in a browser if it did not open by itself');
  openBrowser(url.href);
  const { account } = await receiveCallback(auth, which, port, Number(env.DEMO_TIMEOUT_MS ?? 300_000));
  show('connected', account);

  step('Newest unread messages (IMAP over XOAUTH2)');
  const mailbox = auth.mailbox(account.id);
  try {
    let count = 0;
    for await (const message of mailbox.fetchUnread({ max: 10, source: false })) {
      count++;
      show(clip(message.subject ?? '(no subject)', 60), message.from[0]?.address ?? '');
    }
    if (count === 0) show('no unread message');
  } finally {
    await mailbox.disconnect();
    // The grant outlives this process (the refresh token stays valid at the provider): revoke it, even
    // when listing failed.
    await disconnect(auth, account.id, provider.displayName);
  }
}

/** Revoke the grant at the provider where it has a revocation endpoint, delete it here, and say which. */
async function disconnect(auth: MailboxAuth, accountId: string, providerName: string): Promise<void> {
  step('Disconnect (revoke at the provider, delete here)');
  const { revoked, revocationError, deleted } = await auth.disconnect(accountId);
  show('deleted here', deleted);
  if (revoked) show(`revoked at ${providerName}: the refresh token no longer works`);
  else if (revocationError !== undefined)
    show(`not revoked at ${providerName} (${revocationError.code}): ${revocationError.message}`);
  else show(`not revoked: ${providerName} has no revocation endpoint`);
  if (!revoked) {
    show(
      'the refresh token stays valid until it expires or you remove the app in your account settings ' +
        `at ${providerName}`,
    );
  }
}
