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
  /**
   * Requests allowed per client (IP address) and window on the OAuth start and callback routes, together;
   * beyond it they answer 429. @default { limit: 30, windowMs: 60000 }
   */
  readonly rateLimit?: { readonly limit: number; readonly windowMs: number };
  /**
   * `GET /metrics`: the library's OpenTelemetry metrics in Prometheus text format. Put it behind your
   * network's access rules (it is not authenticated). @default true
   */
  readonly metrics?: boolean;
  /**
   * Watch every connected mailbox for new mail (logged) and run an initial sync when one is connected
   * (`inbox.ts`). In dev mode without Dovecot there is no IMAP server: off unless set.
   * @default true with real providers or Dovecot
   */
  readonly watch?: boolean;
}

/** {@link AppConfig} plus where to listen; `origin` is unset when it follows the port. */
export interface ServerConfig extends Omit<AppConfig, 'origin'> {
  readonly port: number;
  /** The address to listen on: `HOST`, else `127.0.0.1` in dev mode, else `undefined` (every interface). */
  readonly host: string | undefined;
  readonly origin: string | undefined;
}

const TRUE = new Set(['1', 'true', 'yes', 'on']);
const FALSE = new Set(['0', 'false', 'no', 'off']);

/** Whether the origin is this machine only (`localhost`, `127.x.x.x`, `[::1]`). */
function isLoopback(origin: string): boolean {
  const { hostname } = new URL(origin);
  return hostname === 'localhost' || hostname === '[::1]' || /^127(\.\d{1,3}){3}$/.test(hostname);
}

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
 * APP_ORIGIN, HOST, PORT, DATABASE_URL, DEV, NODE_ENV. Dev mode is on with `DEV=1` or `--dev`. Without
 * provider credentials it is also on by itself, but only for a local run: with `NODE_ENV=production` or an
 * `APP_ORIGIN` that is not loopback this throws instead (dev mode's provider accepts any password), unless
 * `DEV=1` asks for it.
 */
export function configFromEnv(env: NodeJS.ProcessEnv, argv: readonly string[] = []): ServerConfig {
  const google = credentials(env, 'GOOGLE_CLIENT_ID', 'GOOGLE_CLIENT_SECRET');
  const ms = credentials(env, 'MS_CLIENT_ID', 'MS_CLIENT_SECRET');

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

  const devVariable = (env.DEV ?? '').trim().toLowerCase();
  if (devVariable !== '' && !TRUE.has(devVariable) && !FALSE.has(devVariable))
    throw new AppConfigurationError('DEV must be 1 (dev mode) or 0');
  const noProvider = google === undefined && ms === undefined;
  let dev = argv.includes('--dev') || TRUE.has(devVariable);
  if (!dev && noProvider) {
    // Dev mode by itself only on a developer's machine: its local provider signs anyone in with any password.
    const production = env.NODE_ENV?.trim() === 'production';
    const publicOrigin = origin !== undefined && !isLoopback(origin);
    if (FALSE.has(devVariable) || production || publicOrigin) {
      const why = FALSE.has(devVariable)
        ? `DEV=${env.DEV?.trim()}`
        : production
          ? 'NODE_ENV=production'
          : `APP_ORIGIN=${origin} is not a loopback origin`;
      throw new AppConfigurationError(
        'no provider is configured: set GOOGLE_CLIENT_ID and GOOGLE_CLIENT_SECRET, or MS_CLIENT_ID and ' +
          `MS_CLIENT_SECRET. Dev mode (a local test provider that accepts any password) does not start by itself ` +
          `here (${why}); set DEV=1 to run it anyway.`,
      );
    }
    dev = true;
  }

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
  // Dev mode listens on loopback only unless HOST says otherwise.
  const host = env.HOST?.trim() || (dev ? '127.0.0.1' : undefined);

  return {
    port,
    host,
    origin,
    ...(google === undefined ? {} : { google }),
    ...(ms === undefined ? {} : { microsoft: { ...ms, tenant: env.MS_TENANT?.trim() || 'common' } }),
    ...(tokenKey === undefined ? {} : { tokenKey }),
    ...(env.SESSION_SECRET?.trim() ? { sessionSecret: env.SESSION_SECRET.trim() } : {}),
    ...(env.DATABASE_URL?.trim() ? { databaseUrl: env.DATABASE_URL.trim() } : {}),
    dev,
  };
}
