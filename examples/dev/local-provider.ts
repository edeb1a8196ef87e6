/**
 * A real OpenID Provider on loopback (`oidc-provider`, the certified implementation) standing in for a mail
 * provider: authorization code + PKCE, refresh-token rotation on every use, revocation, and development
 * login and consent pages that work in a real browser (any login, any password; the login is the email).
 *
 * Its access tokens are opaque; `introspect()` (and the `/dev/introspect` route, RFC 7662 style, for
 * Dovecot) tells whether one is live and whose it is, so the local mail servers can check the bearer
 * tokens the library presents.
 *
 * Used by `npm run demo`, the Express example's dev mode, the browser test and the e2e tests.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type Provider from 'oidc-provider';
import type { Configuration } from 'oidc-provider';

/** Options of {@link startLocalProvider}. */
export interface LocalProviderOptions {
  /** Redirect URIs registered for the client (exact match, as a real provider does). */
  readonly redirectUris: readonly string[];
  /** Listen on this loopback port. @default a free port */
  readonly port?: number;
  /** @default 'mailbox-demo' */
  readonly clientId?: string;
  /** @default random */
  readonly clientSecret?: string;
  /** Lifetime of access tokens, in seconds. @default 3600 */
  readonly accessTokenTtlSeconds?: number;
  /** Let oidc-provider print its development notices. @default false */
  readonly verbose?: boolean;
}

/** The result of {@link LocalProvider.introspect}. */
export interface Introspected {
  readonly active: boolean;
  /** The email the token was issued to, when active. */
  readonly username?: string;
  readonly scope?: string;
}

/** A running {@link startLocalProvider}. */
export interface LocalProvider {
  /** The issuer URL (`http://127.0.0.1:PORT`): give it to `oidc({ issuer, allowInsecureRequests: true })`. */
  readonly issuer: string;
  readonly clientId: string;
  readonly clientSecret: string;
  /** RFC 7662-style endpoint for Dovecot's `introspection_url` (no client authentication, loopback only). */
  readonly introspectionUrl: string;
  /** Token requests served so far (authorization code and refresh grants). */
  readonly tokenRequests: number;
  /** Whether an access token is live, and whose it is. */
  introspect(accessToken: string): Promise<Introspected>;
  /** The underlying `oidc-provider` instance. */
  readonly provider: Provider;
  close(): Promise<void>;
}

/** Drop oidc-provider's development notices (it prints them on console.warn / console.info). */
function muteNotices(): () => void {
  const { warn, info } = console;
  const quiet =
    (original: (...args: unknown[]) => void) =>
    (...args: unknown[]) => {
      if (typeof args[0] === 'string' && args[0].includes('oidc-provider')) return;
      original(...args);
    };
  console.warn = quiet(warn);
  console.info = quiet(info);
  return () => {
    console.warn = warn;
    console.info = info;
  };
}

async function readBody(req: IncomingMessage): Promise<string> {
  let body = '';
  for await (const chunk of req) body += chunk;
  return body;
}

/**
 * Start a local OpenID Provider.
 *
 * @example
 * ```ts
 * const op = await startLocalProvider({ redirectUris: ['http://127.0.0.1:3000/oauth/local/callback'] });
 * const local = oidc({ id: 'local', issuer: op.issuer, clientId: op.clientId, clientSecret: op.clientSecret, ... });
 * ```
 */
export async function startLocalProvider(options: LocalProviderOptions): Promise<LocalProvider> {
  const restore = options.verbose === true ? () => {} : muteNotices();
  // Imported after muting: on Node 20 it warns "unsupported runtime" when it loads.
  const { default: OidcProvider } = await import('oidc-provider');
  const server: Server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const issuer = `http://127.0.0.1:${port}`;
  const clientId = options.clientId ?? 'mailbox-demo';
  const clientSecret = options.clientSecret ?? randomBytes(32).toString('base64url');

  const configuration: Configuration = {
    clients: [
      {
        client_id: clientId,
        client_secret: clientSecret,
        redirect_uris: [...options.redirectUris],
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_post',
      },
    ],
    // The login typed on the dev login page is the account; an address is used as is, a name gets a domain.
    findAccount: (_ctx, sub) => ({
      accountId: sub,
      claims: () => ({ sub, email: sub.includes('@') ? sub : `${sub}@example.com`, email_verified: true }),
    }),
    claims: { openid: ['sub'], email: ['email', 'email_verified'] },
    features: {
      devInteractions: { enabled: true },
      revocation: {
        enabled: true,
        allowedPolicy: (_ctx, client, token) => token.clientId === client.clientId,
      },
    },
    pkce: { required: () => true },
    rotateRefreshToken: true,
    issueRefreshToken: (_ctx, client) => client.grantTypeAllowed('refresh_token'),
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    ttl: {
      AccessToken: options.accessTokenTtlSeconds ?? 3600,
      AuthorizationCode: 60,
      IdToken: 3600,
      RefreshToken: 14 * 86_400,
      Interaction: 600,
      Session: 3600,
      Grant: 14 * 86_400,
    },
  };
  const provider = new OidcProvider(issuer, configuration);
  let tokenRequests = 0;
  provider.on('grant.success', () => {
    tokenRequests++;
  });

  const introspect = async (accessToken: string): Promise<Introspected> => {
    const token = await provider.AccessToken.find(accessToken).catch(() => undefined);
    if (token === undefined || token.isExpired || token.accountId === undefined) return { active: false };
    const sub = token.accountId;
    return {
      active: true,
      username: sub.includes('@') ? sub : `${sub}@example.com`,
      ...(token.scope === undefined ? {} : { scope: token.scope }),
    };
  };

  const callback = provider.callback();
  server.on('request', (req, res) => {
    if (req.method === 'POST' && req.url === '/dev/introspect') {
      readBody(req)
        .then((body) => introspect(new URLSearchParams(body).get('token') ?? ''))
        .then(
          (result) => {
            res.writeHead(200, { 'content-type': 'application/json' });
            res.end(JSON.stringify(result));
          },
          () => {
            res.writeHead(500).end();
          },
        );
      return;
    }
    callback(req, res);
  });

  return {
    issuer,
    clientId,
    clientSecret,
    introspectionUrl: `${issuer}/dev/introspect`,
    get tokenRequests() {
      return tokenRequests;
    },
    introspect,
    provider,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      restore();
    },
  };
}
