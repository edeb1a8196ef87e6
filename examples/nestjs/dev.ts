/**
 * Dev mode: the local OpenID provider from the shared dev kit (examples/dev), registered as provider `local`
 * with this example's callback URI. Login and consent pages, PKCE, refresh-token rotation, revocation; any
 * login, any password. Not needed in production: there the providers are Google and Microsoft.
 */
import { type OAuthProvider, oidc } from 'oauth-mailbox';
import { type LocalProvider, startLocalProvider } from '../dev/local-provider.js';

/** The running dev services. */
export interface DevServices {
  /** The `local` provider to register. */
  readonly provider: OAuthProvider;
  readonly op: LocalProvider;
  close(): Promise<void>;
}

/** Start the local provider with the redirect URI `<origin>/integrations/callback/local`. */
export async function startDevServices(origin: string): Promise<DevServices> {
  const redirectUri = `${origin}/integrations/callback/local`;
  const op = await startLocalProvider({ redirectUris: [redirectUri] });
  const provider = oidc({
    id: 'local',
    displayName: 'Local test provider',
    issuer: op.issuer,
    clientId: op.clientId,
    clientSecret: op.clientSecret,
    redirectUri,
    allowInsecureRequests: true, // http on loopback only; real providers are https
    // No mail server in this example's dev mode (its routes connect, list, refresh and disconnect): port 1,
    // where nothing listens, so a mail call fails with a typed error. The Express example's dev mode runs an
    // SMTP server and Dovecot (examples/express/dev.ts).
    mail: {
      imap: { host: '127.0.0.1', port: 1, secure: false },
      smtp: { host: '127.0.0.1', port: 1, secure: false },
      sasl: 'XOAUTH2',
    },
  });
  return { provider, op, close: () => op.close() };
}
