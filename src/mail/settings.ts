import type { ConnectionOptions } from 'node:tls';
import { MailConnectionError } from '../errors.js';
import type { MailServerSettings, OAuthProvider } from '../providers/types.js';
import type { AccessToken } from '../refresh/access-token.js';
import type { MailboxAccount } from '../tokens/account.js';
import type { MailContext } from './context.js';
import { checkSaslField } from './sasl.js';

/**
 * Options of `connectImap` and `createSmtpTransport`.
 *
 * @example
 * ```ts
 * await auth.connectImap(accountId, { host: '127.0.0.1', port: 1143, secure: false, allowInsecureHosts: ['127.0.0.1'] });
 * ```
 */
export interface MailConnectOptions {
  /** Override the provider's host (tests, custom servers). */
  readonly host?: string;
  /** Override the provider's port. */
  readonly port?: number;
  /** Override: `true` for TLS from the first byte, `false` for STARTTLS. */
  readonly secure?: boolean;
  /**
   * Log in as this address with the account's token: a Microsoft 365 shared mailbox the signed-in user may
   * access. @default the account's email
   */
  readonly user?: string;
  /**
   * Hosts where a connection may stay unencrypted (no TLS, no STARTTLS): a local test server or relay.
   * Everywhere else TLS is required. @default []
   */
  readonly allowInsecureHosts?: readonly string[];
  /** TLS options (a private CA, `servername`, ...). */
  readonly tls?: ConnectionOptions;
  /**
   * Connection timeout, in milliseconds.
   * @default 30000
   */
  readonly connectionTimeoutMs?: number;
  /** Stops connecting. */
  readonly signal?: AbortSignal;
}

/** Resolved server settings. @internal */
export interface ResolvedServer extends MailServerSettings {
  /** `true` when neither TLS nor STARTTLS is required (an allowed insecure host). */
  readonly insecureAllowed: boolean;
}

/** @internal */
export function resolveServer(
  defaults: MailServerSettings,
  options: MailConnectOptions,
  protocol: 'imap' | 'smtp',
): ResolvedServer {
  const host = options.host ?? defaults.host;
  const port = options.port ?? defaults.port;
  const secure = options.secure ?? defaults.secure;
  if (typeof host !== 'string' || host.length === 0 || !Number.isInteger(port) || port < 1 || port > 65_535) {
    throw new MailConnectionError(`Invalid ${protocol} server settings`, { protocol });
  }
  return { host, port, secure, insecureAllowed: (options.allowInsecureHosts ?? []).includes(host) };
}

/** The account, its provider, the server to reach, the login user and a first token. @internal */
export async function prepareConnection(
  context: MailContext,
  accountId: string,
  options: MailConnectOptions,
  protocol: 'imap' | 'smtp',
): Promise<{
  account: MailboxAccount;
  provider: OAuthProvider;
  server: ResolvedServer;
  user: string;
  token: AccessToken;
}> {
  const account = await context.persistence.getAccount(accountId);
  const provider = context.registry.get(account.provider);
  const server = resolveServer(provider.mail[protocol], options, protocol);
  // Checked here for IMAP and SMTP alike (nodemailer's XOAUTH2 builder does not check), before any token
  // is fetched: a control character in the login would end the SASL field and inject another.
  const user = checkSaslField(options.user ?? account.email, 'user');
  const token = await context.refresher.getAccessToken(
    accountId,
    options.signal === undefined ? {} : { signal: options.signal },
  );
  return { account, provider, server, user, token };
}
