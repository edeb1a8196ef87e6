/**
 * The quickstart against a real provider: with GOOGLE_CLIENT_ID / GOOGLE_CLIENT_SECRET (or MS_CLIENT_ID /
 * MS_CLIENT_SECRET, optionally MS_TENANT) in the environment it opens the consent page, receives the callback
 * on localhost, lists the newest unread messages of the real mailbox, then disconnects: the grant is revoked at
 * Google (Microsoft has no revocation endpoint; the demo says so) and deleted here.
 *
 * DEMO_TRANSPORT picks how the mailbox is read: `imap` (the default: IMAP over XOAUTH2 at imap.gmail.com or
 * outlook.office365.com) or `api` (the Gmail API with the gmail.modify + gmail.send scopes, or Microsoft Graph
 * with Mail.ReadWrite + Mail.Send: for a Workspace or tenant whose admin blocks IMAP). The preset's
 * `mailTransport` sets the consent's scopes and what `auth.mailbox(id)` uses; the demo prints both. A listing
 * that fails prints its error code and message (typed errors hold no secret); the grant is revoked all the same,
 * then the run fails with that error.
 *
 * Register `http://localhost:53682/oauth/google/callback` (or `.../microsoft/callback`; the port is
 * DEMO_PORT) as a redirect URI of your OAuth client first, and for `api` enable the Gmail API (or add the Graph
 * permissions): see docs/providers.md.
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
  type MailTransport,
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

/** How the demo reads the mailbox: IMAP (the default) or the provider's mail API. */
function demoTransport(env: NodeJS.ProcessEnv): 'imap' | 'api' {
  const transport = env.DEMO_TRANSPORT ?? 'imap';
  if (transport !== 'imap' && transport !== 'api')
    throw new DemoConfigurationError('DEMO_TRANSPORT must be "imap" or "api"');
  return transport;
}

/** What each transport is called in the narration. */
const TRANSPORT_NAMES: Record<MailTransport, string> = {
  imap: 'IMAP over XOAUTH2',
  'gmail-api': 'the Gmail API',
  graph: 'Microsoft Graph',
};

function buildProvider(
  which: 'google' | 'microsoft',
  transport: 'imap' | 'api',
  env: NodeJS.ProcessEnv,
  port: number,
): OAuthProvider {
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
      mailTransport: transport === 'api' ? 'gmail-api' : 'imap',
    });
  }
  return microsoft({
    clientId: required(env, 'MS_CLIENT_ID', 'the application (client) id from Microsoft Entra'),
    clientSecret: required(env, 'MS_CLIENT_SECRET', 'a client secret of the Entra app registration'),
    redirectUri,
    tenant: env.MS_TENANT ?? 'common',
    mailTransport: transport === 'api' ? 'graph' : 'imap',
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
  const transport = demoTransport(env);
  step(`Configure ${which} from the environment`);
  const provider = buildProvider(which, transport, env, port);
  const mailTransport = provider.mailTransport ?? 'imap';
  show('redirect URI (must be registered with the provider)', provider.redirectUri);
  show('mail transport', `${mailTransport} (${TRANSPORT_NAMES[mailTransport]}; DEMO_TRANSPORT=${transport})`);
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

  step(`Newest unread messages (${TRANSPORT_NAMES[mailTransport]})`);
  // No transport option: the client uses the preset's `mailTransport`, which the consent's scopes match.
  const mailbox = auth.mailbox(account.id);
  try {
    show('auth.mailbox(id) uses', await mailbox.transport());
    let count = 0;
    for await (const message of mailbox.fetchUnread({ max: 10, source: false })) {
      count++;
      show(clip(message.subject ?? '(no subject)', 60), message.from[0]?.address ?? '');
    }
    if (count === 0) show('no unread message');
  } catch (error) {
    // Typed errors carry a stable code and never a secret: safe to print. The grant is revoked below all the
    // same, then the error ends the demo.
    if (isMailboxAuthError(error)) {
      show(`listing failed: ${error.code} (${error.category})`, error.message);
      if (mailTransport === 'imap') show('IMAP blocked for this account or network? Try DEMO_TRANSPORT=api');
      else if (error.code === 'ERR_MAIL_AUTHENTICATION_FAILED')
        show('are the API and its scopes enabled for your OAuth client? See docs/providers.md');
    } else {
      show('listing failed (details below)');
    }
    throw error;
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
