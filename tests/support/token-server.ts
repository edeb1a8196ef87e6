/**
 * A real OAuth 2.0 token endpoint on loopback that rotates refresh tokens: each refresh token is valid
 * once, and reuse is answered with `invalid_grant` (as Microsoft and many OIDC servers do). It counts
 * everything, so a test can prove that no refresh token was ever reused.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type OAuth2Options, oauth2 } from '../../src/index.js';

export interface TokenServer {
  readonly url: string;
  readonly stats: { refreshes: number; invalidGrants: number; aborted: number; hanging: number };
  /** Register an account's first refresh token. */
  issueRefreshToken(account: string): string;
  /** The newest valid refresh token and access token of an account. */
  latest(account: string): { refreshToken: string | undefined; accessToken: string | undefined };
  /** Hold refresh requests for this account until the client goes away (nothing is rotated). */
  hang(account: string): void;
  /** Answer this account's refresh requests again. */
  unhang(account: string): void;
  /**
   * Hold every refresh answer until refresh requests from `clients` different client ids have arrived (so a
   * test can prove that several processes each took part of the work, without timing them).
   */
  holdUntilClients(clients: number): void;
  /** Refresh requests per client id. */
  readonly byClient: ReadonlyMap<string, number>;
  /** Make the account's current access tokens inactive (introspection says so), as an early expiry would. */
  expireAccessTokens(account: string): void;
  /** Revoke the grant: refresh and access tokens of the account stop working. */
  revoke(account: string): void;
  close(): Promise<void>;
}

export async function startTokenServer(
  options: { latencyMs?: number; accessTokenTtlS?: number } = {},
): Promise<TokenServer> {
  const valid = new Map<string, string>(); // refresh token -> account
  const access = new Map<string, string>(); // access token -> account
  const newest = new Map<string, { refreshToken?: string; accessToken?: string }>();
  const hanging = new Set<string>();
  const byClient = new Map<string, number>();
  let gate: { clients: number; open: Promise<void>; release: () => void } | undefined;
  const stats = { refreshes: 0, invalidGrants: 0, aborted: 0, hanging: 0 };
  const send = (res: ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
    res.end(JSON.stringify(body));
  };
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let body = '';
    req.on('data', (chunk) => {
      body += chunk;
    });
    req.on('end', async () => {
      const params = new URLSearchParams(body);
      if (req.url === '/issue') {
        // For benchmarks that run this server in another process: issue first refresh tokens in bulk.
        const accounts = JSON.parse(body) as string[];
        return send(
          res,
          200,
          accounts.map((account) => {
            const token = `rt-${account}-initial-${randomBytes(8).toString('hex')}`;
            valid.set(token, account);
            newest.set(account, { refreshToken: token });
            return token;
          }),
        );
      }
      if (req.url === '/stats') return send(res, 200, stats);
      if (req.url === '/introspect') {
        // RFC 7662, for mail servers (Dovecot) that validate the bearer tokens.
        const owner = access.get(params.get('token') ?? '');
        return send(
          res,
          200,
          owner === undefined ? { active: false } : { active: true, username: owner, scope: 'mail' },
        );
      }
      if (req.url !== '/token' || params.get('grant_type') !== 'refresh_token')
        return send(res, 400, { error: 'unsupported_grant_type' });
      const token = params.get('refresh_token') ?? '';
      const account = valid.get(token);
      if (account !== undefined && hanging.has(account)) {
        stats.hanging++;
        res.on('close', () => {
          stats.aborted++;
        });
        return; // never answer; the token stays valid
      }
      // Rotate at once (before the simulated latency): two concurrent uses of one token cannot both win.
      stats.refreshes++;
      const client = clientIdOf(req, params);
      byClient.set(client, (byClient.get(client) ?? 0) + 1);
      if (gate !== undefined && byClient.size >= gate.clients) gate.release();
      let issued: { refreshToken: string; accessToken: string } | undefined;
      if (account !== undefined) {
        valid.delete(token);
        issued = {
          refreshToken: `rt-${account}-${randomBytes(12).toString('hex')}`,
          accessToken: `at-${account}-${randomBytes(12).toString('hex')}`,
        };
        valid.set(issued.refreshToken, account);
        access.set(issued.accessToken, account);
        newest.set(account, issued);
      } else {
        stats.invalidGrants++;
      }
      if (options.latencyMs) await new Promise((r) => setTimeout(r, options.latencyMs));
      if (gate !== undefined) await gate.open;
      if (issued === undefined) {
        return send(res, 400, {
          error: 'invalid_grant',
          error_description: 'refresh token reused, revoked or unknown',
        });
      }
      const { refreshToken, accessToken } = issued;
      send(res, 200, {
        access_token: accessToken,
        refresh_token: refreshToken,
        token_type: 'Bearer',
        expires_in: options.accessTokenTtlS ?? 3600,
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    stats,
    issueRefreshToken(account) {
      const token = `rt-${account}-initial-${randomBytes(8).toString('hex')}`;
      valid.set(token, account);
      newest.set(account, { refreshToken: token });
      return token;
    },
    latest: (account) => ({
      refreshToken: newest.get(account)?.refreshToken,
      accessToken: newest.get(account)?.accessToken,
    }),
    hang: (account) => void hanging.add(account),
    holdUntilClients(clients) {
      let release = () => {};
      const open = new Promise<void>((r) => {
        release = r;
      });
      gate = { clients, open, release };
      if (byClient.size >= clients) release();
    },
    byClient,
    unhang: (account) => void hanging.delete(account),
    expireAccessTokens(account) {
      for (const [token, owner] of access) if (owner === account) access.delete(token);
    },
    revoke(account) {
      for (const map of [valid, access])
        for (const [token, owner] of map) if (owner === account) map.delete(token);
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** The client id of a token request: HTTP Basic credentials, else the `client_id` parameter. */
function clientIdOf(req: IncomingMessage, params: URLSearchParams): string {
  const basic = /^Basic (.+)$/i.exec(req.headers.authorization ?? '');
  if (basic !== null) {
    const decoded = Buffer.from(basic[1] as string, 'base64').toString('utf8');
    return decodeURIComponent(decoded.slice(0, decoded.indexOf(':')));
  }
  return params.get('client_id') ?? '';
}

/**
 * An `oauth2` provider (id `rotating` by default) whose endpoints are the token server at `url`; its mail
 * servers are unreachable placeholders unless `overrides` gives real ones.
 */
export function tokenServerProvider(url: string, overrides: Partial<OAuth2Options> = {}) {
  return oauth2({
    id: 'rotating',
    clientId: 'c',
    clientSecret: 's',
    redirectUri: 'http://127.0.0.1/cb',
    authorizationEndpoint: `${url}/authorize`,
    tokenEndpoint: `${url}/token`,
    scopes: ['mail'],
    identify: async () => ({ email: 'unused@example.com' }),
    mail: {
      imap: { host: '127.0.0.1', port: 1, secure: false },
      smtp: { host: '127.0.0.1', port: 1, secure: false },
      sasl: 'XOAUTH2',
    },
    allowInsecureRequests: true,
    ...overrides,
  });
}
