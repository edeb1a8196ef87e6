/**
 * Logged-in IMAP connections (imapflow) for any account, with the token from the refresher.
 * @module
 */
import type { ImapFlow, ImapFlowOptions } from 'imapflow';
import { MailAuthenticationError, MailboxAuthError, MailConnectionError } from '../errors.js';
import { listenForAbort } from '../internal/abort.js';
import { connectSpanAttributes } from '../telemetry/attributes.js';
import { SPANS } from '../telemetry/names.js';
import { telemetryOf } from '../telemetry/telemetry.js';
import type { MailContext } from './context.js';
import { checkSaslField } from './sasl.js';
import { echoableForms, scrubError } from './scrub.js';
import { type MailConnectOptions, prepareConnection, type ResolvedServer } from './settings.js';

/** imapflow is loaded on first use, so importing the library stays cheap for hosts that never open IMAP. */
let imapflow: Promise<typeof import('imapflow')> | undefined;

async function imapClient(
  server: ResolvedServer,
  user: string,
  accessToken: string,
  options: MailConnectOptions,
  extra: Partial<ImapFlowOptions>,
): Promise<ImapFlow> {
  checkSaslField(accessToken, 'accessToken'); // as the login: no control character reaches a SASL field
  imapflow ??= import('imapflow');
  const { ImapFlow } = await imapflow;
  return new ImapFlow({
    ...extra,
    host: server.host,
    port: server.port,
    secure: server.secure,
    // Without implicit TLS, STARTTLS is mandatory unless the host is explicitly allowed to be insecure.
    doSTARTTLS: server.secure ? undefined : !server.insecureAllowed,
    ...(options.tls === undefined ? {} : { tls: options.tls }),
    auth: { user, accessToken },
    logger: false,
    connectionTimeout: options.connectionTimeoutMs ?? 30_000,
    greetingTimeout: options.connectionTimeoutMs ?? 30_000,
  });
}

async function connectOnce(client: ImapFlow, signal: AbortSignal | undefined): Promise<void> {
  if (signal === undefined) return client.connect();
  signal.throwIfAborted();
  const stop = listenForAbort(signal, () => client.close());
  try {
    await client.connect();
  } catch (err) {
    signal.throwIfAborted();
    throw err;
  } finally {
    stop();
  }
}

const authFailed = (err: unknown) =>
  (err as { authenticationFailed?: unknown })?.authenticationFailed === true;

/**
 * Open a logged-in `ImapFlow` for an account: the provider's IMAP settings (overridable), TLS required
 * except on `allowInsecureHosts`, XOAUTH2 or OAUTHBEARER (whichever the server offers, OAUTHBEARER first)
 * with a token from the refresher. If the server refuses the token, one forced refresh and one new
 * connection follow; a second refusal is a `MailAuthenticationError` and the account's status becomes
 * `error`. Connection failures are `MailConnectionError`. The caller owns the returned client
 * (`await client.logout()`).
 *
 * @example
 * ```ts
 * const imap = await auth.connectImap(accountId);
 * const lock = await imap.getMailboxLock('INBOX');
 * try { for await (const msg of imap.fetch('1:*', { envelope: true })) console.log(msg.envelope?.subject) }
 * finally { lock.release(); await imap.logout() }
 * ```
 */
export async function connectImap(
  context: MailContext,
  accountId: string,
  options: MailConnectOptions = {},
  /** @internal imapflow options for the library's own watchers. */
  extra: Partial<ImapFlowOptions> = {},
): Promise<ImapFlow> {
  return telemetryOf(context.refresher).span(
    SPANS.imapConnect,
    connectSpanAttributes(accountId, 'imap'),
    () => connectLoggedIn(context, accountId, options, extra),
  );
}

/** The body of {@link connectImap}, in its span. */
async function connectLoggedIn(
  context: MailContext,
  accountId: string,
  options: MailConnectOptions,
  extra: Partial<ImapFlowOptions>,
): Promise<ImapFlow> {
  const prepared = await prepareConnection(context, accountId, options, 'imap');
  const { provider, server, user } = prepared;
  let { token } = prepared;
  // Every token handed to the server: a server that echoes one in its refusal must not put it in our errors.
  const handed: string[] = [];
  for (let attempt = 0; ; attempt++) {
    handed.push(...echoableForms(token.accessToken, user, server));
    const client = await imapClient(server, user, token.accessToken, options, extra);
    client.on('error', () => {}); // connection errors surface through connect() and later calls
    try {
      await connectOnce(client, options.signal);
      return client;
    } catch (err) {
      client.close();
      if (err instanceof MailboxAuthError || options.signal?.aborted) throw err;
      scrubError(err, handed);
      if (!authFailed(err)) {
        throw new MailConnectionError(`Could not connect to the IMAP server ${server.host}:${server.port}`, {
          accountId,
          providerId: provider.id,
          protocol: 'imap',
          cause: err,
        });
      }
      if (attempt === 0) {
        // The token may have been revoked or expired early: refresh once and try a new connection.
        token = await context.refresher.getAccessToken(accountId, {
          rejected: token,
          ...(options.signal === undefined ? {} : { signal: options.signal }),
        });
        continue;
      }
      const failure = new MailAuthenticationError(
        `The IMAP server ${server.host} refused the OAuth token of ${user} even after a refresh`,
        { accountId, providerId: provider.id, protocol: 'imap', cause: err },
      );
      await context.persistence
        .recordFailure(accountId, { code: failure.code, message: failure.message }, { status: 'error' })
        .catch(() => {});
      throw failure;
    }
  }
}
