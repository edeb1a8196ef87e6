/**
 * The Express example: a page to connect mailboxes (Google, Microsoft, or the local test provider in dev
 * mode), the OAuth start and callback routes, and per-mailbox "send a test message" and "disconnect".
 *
 * `createApp(config)` builds the app and everything it runs on; `server.ts` reads the environment and
 * listens. Routes:
 *
 * - `GET /`                              the page (providers, status banner, your mailboxes and their health)
 * - `GET /oauth/:provider/start`         redirect to the provider's consent page
 * - `GET /oauth/:provider/callback`      the provider's redirect back; then to `/?status=success|error...`
 * - `POST /accounts/:id/send-test`       send a message from the mailbox to itself (CSRF token required)
 * - `POST /accounts/:id/disconnect`      revoke at the provider and delete (CSRF token required)
 * - `GET /metrics`                       the library's OpenTelemetry metrics, Prometheus text format (when
 *                                        `config.metrics` is not `false`)
 *
 * The `/oauth/…` routes are rate-limited per client (`express-rate-limit`): 429 beyond the limit.
 */
import { randomBytes } from 'node:crypto';
import express, { type Express, type NextFunction, type Request, type Response } from 'express';
import { rateLimit } from 'express-rate-limit';
import {
  aesGcmCipher,
  buildReturnUrl,
  createMailboxAuth,
  google,
  isMailboxAuthError,
  type MailboxAccount,
  type MailboxAuth,
  type MailboxClientOptions,
  microsoft,
  type OAuthProvider,
} from 'oauth-mailbox';
import { type AppConfig, AppConfigurationError } from './config.js';
import { type DevServices, startDevServices } from './dev.js';
import { httpStatus } from './http-status.js';
import { type Inboxes, watchInboxes } from './inbox.js';
import { createMetrics, type Metrics } from './metrics.js';
import { sessionOf, sessions } from './session.js';
import { openStore } from './store.js';
import {
  type Banner,
  type DevView,
  errorMessage,
  errorPage,
  homePage,
  knownCode,
  type SafeHtml,
} from './views.js';

/** What {@link createApp} returns. */
export interface MailboxApp {
  /** The Express app: `app.listen(port)`, or mount it in your server. */
  readonly app: Express;
  /** The library facade, for your own routes and jobs. */
  readonly auth: MailboxAuth;
  /** The local services in dev mode. */
  readonly dev: DevServices | undefined;
  /** The mailbox watchers (`config.watch`), or `undefined` when off. */
  readonly inboxes: Inboxes | undefined;
  /**
   * Stop the dev services and close the database pool. Runs once (a second call does nothing); a step that
   * fails is logged and the others still run.
   */
  close(): Promise<void>;
}

/** The dev mode's local mail servers need plain text on loopback; real providers get TLS. */
function mailboxOptions(provider: string): MailboxClientOptions {
  return provider === 'local'
    ? { smtp: { allowInsecureHosts: ['127.0.0.1'] }, imap: { allowInsecureHosts: ['127.0.0.1'] } }
    : {};
}

/** The first value of a query parameter, when it is a plain string. */
function query(req: Request, name: string): string | undefined {
  const value = req.query[name];
  return typeof value === 'string' ? value : undefined;
}

function send(res: Response, status: number, page: SafeHtml): void {
  res.status(status).type('html').send(page.value);
}

/**
 * Build the app. In dev mode it first starts the local provider, the SMTP server and (when possible)
 * Dovecot, with the provider's redirect URI on `config.origin`.
 */
export async function createApp(config: AppConfig): Promise<MailboxApp> {
  const origin = new URL(config.origin).origin;
  const log = config.log ?? ((line: string) => console.error(line));
  const dev =
    config.dev === undefined || config.dev === false ? undefined : config.dev === true ? {} : config.dev;
  if (config.tokenKey === undefined && dev === undefined)
    throw new AppConfigurationError('TOKEN_KEY is required outside dev mode');

  const closers: (() => Promise<void>)[] = [];
  const close = async () => {
    // Newest first, and once: splice empties the list. A failing step is logged; the others still run.
    for (const closer of closers.splice(0).reverse()) {
      try {
        await closer();
      } catch (error) {
        log(`close: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
  };

  try {
    const { store, close: closeStore } = await openStore(config.databaseUrl);
    closers.push(closeStore);

    const providers: OAuthProvider[] = [];
    if (config.google !== undefined)
      providers.push(google({ ...config.google, redirectUri: `${origin}/oauth/google/callback` }));
    if (config.microsoft !== undefined)
      providers.push(microsoft({ ...config.microsoft, redirectUri: `${origin}/oauth/microsoft/callback` }));
    let services: DevServices | undefined;
    if (dev !== undefined) {
      services = await startDevServices({
        origin,
        log,
        ...(dev.dovecot === undefined ? {} : { dovecot: dev.dovecot }),
      });
      closers.push(services.close);
      providers.push(services.provider);
    }

    const metrics = config.metrics === false ? undefined : createMetrics();
    if (metrics !== undefined) closers.push(metrics.close);
    const auth = createMailboxAuth({
      providers,
      store,
      // The library's metrics (refreshes, leases, circuits, API calls, watchers) go to /metrics.
      ...(metrics === undefined ? {} : { telemetry: { meterProvider: metrics.meterProvider } }),
      // Tokens are encrypted at rest with this key. A random one (dev mode) makes stored tokens unreadable
      // after a restart: fine in memory, not with a database.
      cipher: aesGcmCipher({ keys: { k1: config.tokenKey ?? randomBytes(32) }, current: 'k1' }),
      // Redirect URIs and `returnTo` values must be on this origin (checked now, not at the first login).
      allowedOrigins: [origin],
    });
    auth.on('reauthorizationRequired', ({ accountId }) =>
      log(`account ${accountId} needs to be connected again (the provider refused its refresh token)`),
    );

    // Watchers stop before the store closes (closers run newest first).
    closers.push(() => auth.close());
    const watching = config.watch ?? (services === undefined || services.dovecot !== undefined);
    const inboxes = watching ? await watchInboxes(auth, { log, clientOptions: mailboxOptions }) : undefined;
    if (inboxes !== undefined) closers.push(inboxes.close);

    const app = buildRoutes({ auth, origin, log, services, config, metrics });
    return { app, auth, dev: services, inboxes, close };
  } catch (error) {
    await close();
    throw error;
  }
}

interface RouteContext {
  readonly metrics: Metrics | undefined;
  readonly auth: MailboxAuth;
  readonly origin: string;
  readonly log: (line: string) => void;
  readonly services: DevServices | undefined;
  readonly config: AppConfig;
}

function buildRoutes({ auth, origin, log, services, config, metrics }: RouteContext): Express {
  const app = express();
  app.disable('x-powered-by');
  // Before the session: a scrape carries no cookie and needs none.
  if (metrics !== undefined) app.get('/metrics', metrics.handler);
  const session = sessions({
    // Random per run when unset: restarting signs every browser out (a new demo user).
    secret: config.sessionSecret ?? randomBytes(32).toString('base64url'),
    secure: origin.startsWith('https:'),
  });
  const providerNames = new Map(auth.listProviders().map((p) => [p.id, p.displayName]));

  /** Log a failure: library errors carry a stable code and a message without secrets. */
  const logError = (where: string, error: unknown) => {
    if (isMailboxAuthError(error)) log(`${where}: ${error.code}: ${error.message}`);
    else log(`${where}: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  };

  /** The account, if it exists and belongs to this visitor; another owner's id looks like a missing one. */
  const ownedAccount = async (res: Response, id: string): Promise<MailboxAccount | undefined> => {
    const account = await auth.getAccount(id).catch((error: unknown) => {
      if (
        isMailboxAuthError(error, 'ERR_ACCOUNT_NOT_FOUND') ||
        isMailboxAuthError(error, 'ERR_INVALID_ARGUMENT')
      )
        return undefined;
      throw error;
    });
    return account?.owner === sessionOf(res).userId ? account : undefined;
  };

  const renderHome = async (res: Response, status: number, banner: Banner | undefined) => {
    const { userId, csrfToken } = sessionOf(res);
    // One page is plenty for a demo; page with `nextCursor` if a user can have more than 100 mailboxes.
    const { accounts } = await auth.persistence.listAccounts({ owner: userId }, { limit: 100 });
    const views = await Promise.all(
      accounts.map(async (account) => ({
        health: await auth.accountHealth(account.id),
        providerName: providerNames.get(account.provider) ?? account.provider,
      })),
    );
    let dev: DevView | undefined;
    if (services !== undefined) {
      const mine = new Set(accounts.map((a) => a.email));
      dev = {
        issuer: services.op.issuer,
        smtpPort: services.sink.port,
        imapPort: services.dovecot?.imapPort,
        received: services.sink.messages
          .filter((m) => mine.has(m.user))
          .map((m) => ({
            from: m.from,
            to: m.to.join(', '),
            subject: /^Subject: (.*)$/im.exec(m.raw.toString('utf8'))?.[1]?.trim() ?? '',
          })),
      };
    }
    send(
      res,
      status,
      homePage({
        userId,
        csrfToken,
        providers: auth.listProviders(),
        accounts: views,
        ...(banner === undefined ? {} : { banner }),
        ...(dev === undefined ? {} : { dev }),
      }),
    );
  };

  // Security headers: no script at all, forms only to ourselves, not framed, never cached.
  app.use((_req, res, next) => {
    res.set({
      'Content-Security-Policy':
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
      'X-Content-Type-Options': 'nosniff',
      'Referrer-Policy': 'no-referrer',
      'Cache-Control': 'no-store',
    });
    next();
  });
  app.use(session.middleware);

  app.get('/', async (req, res) => {
    let banner: Banner | undefined;
    const status = query(req, 'status');
    const notice = query(req, 'notice');
    const account = query(req, 'account');
    const owned = account === undefined ? undefined : await ownedAccount(res, account);
    const name = providerNames.get(query(req, 'provider') ?? '') ?? 'the provider';
    if (status === 'success') {
      banner = {
        kind: 'success',
        text: owned ? `Connected ${owned.email} (${name}).` : `Connected (${name}).`,
      };
    } else if (status === 'error') {
      // The callback put only a stable code in the URL; unknown values are shown as ERR_UNEXPECTED.
      const code = knownCode(query(req, 'error'));
      banner = { kind: 'error', text: `Could not connect to ${name}: ${errorMessage(code)}`, code };
    } else if (notice === 'sent') {
      banner = { kind: 'success', text: `Test message sent to ${owned?.email ?? 'the mailbox'}.` };
    } else if (notice === 'disconnected') {
      banner = {
        kind: 'success',
        text:
          query(req, 'revoked') === '1'
            ? 'Mailbox disconnected, and access revoked at the provider.'
            : 'Mailbox disconnected.',
      };
    }
    await renderHome(res, 200, banner);
  });

  // Starting and completing authorizations costs state writes and provider calls: limit each client (by IP
  // address; behind a proxy set `app.set('trust proxy', …)` so it is the client's). Unknown providers count
  // too. The counters live in memory: several instances need a shared store (`rate-limit-redis`).
  const { limit, windowMs } = config.rateLimit ?? { limit: 30, windowMs: 60_000 };
  app.use(
    '/oauth',
    rateLimit({
      limit,
      windowMs,
      standardHeaders: 'draft-8', // RateLimit-Policy and RateLimit; Retry-After on a 429
      legacyHeaders: false,
      handler: (_req, res) =>
        send(
          res,
          429,
          errorPage(
            429,
            'Too many attempts to connect a mailbox from your network. Wait a minute and try again.',
          ),
        ),
    }),
  );

  // Unknown provider ids are a 404 before any library call.
  app.param('provider', (_req, res, next, id: string) => {
    if (providerNames.has(id)) return next();
    send(res, 404, errorPage(404, errorMessage('ERR_UNKNOWN_PROVIDER'), 'ERR_UNKNOWN_PROVIDER'));
  });

  app.get('/oauth/:provider/start', async (req, res) => {
    const { url } = await auth.startAuthorization(req.params.provider as string, {
      owner: sessionOf(res).userId,
      returnTo: '/',
    });
    res.redirect(url.href);
  });

  app.get('/oauth/:provider/callback', async (req, res) => {
    const provider = req.params.provider as string;
    let target: URL;
    try {
      // The URL carries the code and state: hand it to the library, never to a log.
      const { account, created, returnTo } = await auth.completeAuthorization(
        provider,
        new URL(req.originalUrl, origin),
        { owner: sessionOf(res).userId },
      );
      log(`${created ? 'connected' : 'reconnected'} ${provider} account ${account.id}`);
      target = buildReturnUrl(
        returnTo ?? '/',
        { status: 'success', provider, accountId: account.id },
        origin,
      );
    } catch (error) {
      logError(`callback ${provider}`, error);
      // Only the stable code reaches the browser: /?status=error&provider=…&error=ERR_…
      target = buildReturnUrl('/', { status: 'error', provider, error }, origin);
    }
    res.redirect(target.href);
  });

  // Forms post url-encoded bodies; anything without this session's CSRF token is refused.
  const form = express.urlencoded({ extended: false, limit: '4kb' });
  const csrf = (req: Request, res: Response, next: NextFunction) => {
    if (session.validCsrf(req, res)) return next();
    send(
      res,
      403,
      errorPage(403, 'This form has expired or was sent from another site. Reload the page and try again.'),
    );
  };

  app.post('/accounts/:id/send-test', form, csrf, async (req, res) => {
    const account = await ownedAccount(res, req.params.id as string);
    if (account === undefined)
      return send(res, 404, errorPage(404, errorMessage('ERR_ACCOUNT_NOT_FOUND'), 'ERR_ACCOUNT_NOT_FOUND'));
    const mailbox = auth.mailbox(account.id, mailboxOptions(account.provider));
    try {
      await mailbox.send({
        to: account.email,
        subject: 'Test message from oauth-mailbox',
        text: `This message was sent from ${account.email} to itself over SMTP, authenticated with OAuth (XOAUTH2).`,
      });
    } catch (error) {
      if (!isMailboxAuthError(error)) throw error;
      logError(`send-test ${account.id}`, error);
      // Show the page again with the typed error, under the matching status code.
      return renderHome(res, httpStatus(error), {
        kind: 'error',
        text: `The test message was not sent: ${errorMessage(error.code)}`,
        code: error.code,
      });
    } finally {
      await mailbox.disconnect(); // closes this client's SMTP connection; the account stays connected
    }
    log(`sent a test message from account ${account.id}`);
    // Post/redirect/get: reloading the page does not send again.
    res.redirect(303, `/?notice=sent&account=${encodeURIComponent(account.id)}`);
  });

  app.post('/accounts/:id/disconnect', form, csrf, async (req, res) => {
    const account = await ownedAccount(res, req.params.id as string);
    if (account === undefined)
      return send(res, 404, errorPage(404, errorMessage('ERR_ACCOUNT_NOT_FOUND'), 'ERR_ACCOUNT_NOT_FOUND'));
    const { revoked, revocationError } = await auth.disconnect(account.id);
    if (revocationError !== undefined) logError(`revoke ${account.id}`, revocationError);
    log(`disconnected account ${account.id}`);
    res.redirect(303, `/?notice=disconnected${revoked ? '&revoked=1' : ''}`);
  });

  app.use((_req, res) => {
    send(res, 404, errorPage(404, 'There is no such page.'));
  });

  // Express 5 sends rejected promises of async handlers here.
  app.use((error: unknown, req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) return next(error);
    logError(`${req.method} ${req.path}`, error);
    if (isMailboxAuthError(error)) {
      const status = httpStatus(error);
      return send(res, status, errorPage(status, errorMessage(error.code), error.code));
    }
    // body-parser's errors (oversized or malformed form) carry a 4xx status.
    const status = (error as { status?: unknown } | null)?.status;
    if (typeof status === 'number' && status >= 400 && status < 500)
      return send(res, status, errorPage(status, 'The request could not be read.'));
    send(res, 500, errorPage(500, errorMessage('ERR_UNEXPECTED')));
  });

  return app;
}
