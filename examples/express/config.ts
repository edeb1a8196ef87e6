/**
 * The example's configuration, read from the environment (and `--dev` on the command line). Kept apart from
 * the app so the tests can build a configuration without touching `process.env`.
 */

/** A configuration problem the operator can fix: printed without a stack trace. */
export class AppConfigurationError extends Error {
  override readonly name = 'AppConfigurationError';
}

/** OAuth client credentials of one provider. */
export interface ClientCredentials {
  readonly clientId: string;
  readonly clientSecret: string;
}

/** What {@link createApp} needs. */
export interface AppConfig {
  /**
   * The public origin of the app (`https://mail.example.com`). Redirect URIs are
   * `<origin>/oauth/<provider>/callback`: register exactly these with each provider.
   */
  readonly origin: string;
  /** Google, listed only when configured. */
  readonly google?: ClientCredentials;
  /** Microsoft 365 / Outlook.com, listed only when configured. */
  readonly microsoft?: ClientCredentials & { readonly tenant?: string };
  /**
   * The token encryption key (32 bytes as base64, base64url or hex). Required outside dev mode; in dev mode a
   * random key is made for the run.
   */
  readonly tokenKey?: string;
  /**
   * Signs the demo session cookie. Random per run when unset (everyone is signed out on restart, which only
   * matters with a database).
   */
  readonly sessionSecret?: string;
  /** PostgreSQL connection string; without it accounts live in memory and are lost on restart. */
  readonly databaseUrl?: string;
  /**
   * Dev mode: a local OpenID provider (`local`), an SMTP server that checks tokens, and Dovecot for IMAP when
   * it can run (`dovecot: false` skips it). No external account needed.
   */
  readonly dev?: boolean | { readonly dovecot?: boolean };
  /** Where the app writes its log lines (never a token or secret). @default console.error */
  readonly log?: (line: string) => void;
}

/** {@link AppConfig} plus the port to listen on; `origin` is unset when it follows the port. */
export interface ServerConfig extends Omit<AppConfig, 'origin'> {
  readonly port: number;
  readonly origin: string | undefined;
}

const TRUE = new Set(['1', 'true', 'yes', 'on']);

function credentials(
  env: NodeJS.ProcessEnv,
  idName: string,
  secretName: string,
): ClientCredentials | undefined {
  const clientId = env[idName]?.trim() ?? '';
  const clientSecret = env[secretName]?.trim() ?? '';
  if (clientId === '' && clientSecret === '') return undefined;
  if (clientId === '') throw new AppConfigurationError(`${idName} is missing (${secretName} is set)`);
  if (clientSecret === '') throw new AppConfigurationError(`${secretName} is missing (${idName} is set)`);
  return { clientId, clientSecret };
}

/**
 * Read the configuration: GOOGLE_CLIENT_ID/SECRET, MS_CLIENT_ID/SECRET/MS_TENANT, TOKEN_KEY, SESSION_SECRET,
 * APP_ORIGIN, PORT, DATABASE_URL, DEV. Dev mode is on with `DEV=1`, with `--dev`, or when no provider has
 * credentials.
 */
export function configFromEnv(env: NodeJS.ProcessEnv, argv: readonly string[] = []): ServerConfig {
  const google = credentials(env, 'GOOGLE_CLIENT_ID', 'GOOGLE_CLIENT_SECRET');
  const ms = credentials(env, 'MS_CLIENT_ID', 'MS_CLIENT_SECRET');
  const dev =
    argv.includes('--dev') || TRUE.has((env.DEV ?? '').toLowerCase()) || (google === undefined && !ms);

  const tokenKey = env.TOKEN_KEY?.trim() || undefined;
  if (tokenKey === undefined && !dev) {
    throw new AppConfigurationError(
      'TOKEN_KEY is required outside dev mode: 32 random bytes, base64 ' +
        `(node -e "console.log(crypto.randomBytes(32).toString('base64'))"). Keep it in your secret manager; ` +
        'losing it loses every connected mailbox.',
    );
  }

  const port = Number(env.PORT ?? 3000);
  if (!Number.isInteger(port) || port < 0 || port > 65_535)
    throw new AppConfigurationError('PORT must be a port number (0-65535)');

  let origin: string | undefined;
  if (env.APP_ORIGIN?.trim()) {
    let url: URL;
    try {
      url = new URL(env.APP_ORIGIN.trim());
    } catch {
      throw new AppConfigurationError('APP_ORIGIN must be a URL such as https://mail.example.com');
    }
    if (url.origin !== env.APP_ORIGIN.trim().replace(/\/$/, ''))
      throw new AppConfigurationError('APP_ORIGIN must be an origin only (scheme, host, port; no path)');
    origin = url.origin;
  }

  return {
    port,
    origin,
    ...(google === undefined ? {} : { google }),
    ...(ms === undefined ? {} : { microsoft: { ...ms, tenant: env.MS_TENANT?.trim() || 'common' } }),
    ...(tokenKey === undefined ? {} : { tokenKey }),
    ...(env.SESSION_SECRET?.trim() ? { sessionSecret: env.SESSION_SECRET.trim() } : {}),
    ...(env.DATABASE_URL?.trim() ? { databaseUrl: env.DATABASE_URL.trim() } : {}),
    dev,
  };
}
