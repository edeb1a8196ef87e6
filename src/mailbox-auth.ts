/**
 * The facade: one object for the host's routes.
 * @module
 */
import { inspect } from 'node:util';
import type { ImapFlow } from 'imapflow';
import type { Cipher } from './crypto/cipher.js';
import { ConfigurationError } from './errors.js';
import { AuthorizationFlow } from './flow/authorization.js';
import type * as authorization from './flow/authorization-options.js';
import type { CallbackInput } from './flow/callback.js';
import { validateRedirectUris } from './flow/redirects.js';
import { Lifecycle } from './internal/lifecycle.js';
import { integerOption } from './internal/options.js';
import { silentLogger } from './logger.js';
import { ActivityRecorder } from './mail/activity.js';
import { MailboxClient, type MailboxClientContext } from './mail/client.js';
import type { MailboxClientOptions } from './mail/client-options.js';
import { connectImap } from './mail/imap.js';
import { WatchOrchestrator, type WatchOrchestratorOptions } from './mail/orchestrator.js';
import type { MailConnectOptions } from './mail/settings.js';
import { createSmtpTransport, type SmtpTransport } from './mail/smtp.js';
import type { TransportDefinition } from './mail/transport.js';
import { checkTransports } from './mail/transports.js';
import {
  type AccountHealth,
  accountHealth,
  type HealthOptions,
  type HealthReport,
  health,
} from './operations/health.js';
import {
  type FleetMailboxHealth,
  type MailboxHealthOptions,
  mailboxHealth,
} from './operations/mailbox-health.js';
import {
  type RefreshExpiringOptions,
  type RefreshReport,
  refreshExpiring,
} from './operations/refresh-expiring.js';
import { type RotateKeysOptions, type RotateKeysReport, rotateKeys } from './operations/rotate-keys.js';
import { ProviderRegistry, type ProviderSummary } from './providers/registry.js';
import type { OAuthProvider } from './providers/types.js';
import {
  type AccessToken,
  type GetAccessTokenOptions,
  TokenRefresher,
  type TokenRefresherEvents,
  type TokenRefresherOptions,
} from './refresh/refresher.js';
import type { AccountStore } from './store/account-store.js';
import type { StateStore } from './store/state-store.js';
import type { TelemetryOptions } from './telemetry/telemetry.js';
import type { MailboxAccount } from './tokens/account.js';
import { TokenPersistence } from './tokens/persistence.js';

/**
 * Options of {@link createMailboxAuth}.
 *
 * @example
 * ```ts
 * const options: MailboxAuthOptions = { providers: [google(googleConfig)], store: memoryStore(), cipher, allowedOrigins: ['https://app.example.com'] };
 * ```
 */
export interface MailboxAuthOptions {
  /** The providers, or a registry you built. */
  readonly providers: readonly OAuthProvider[] | ProviderRegistry;
  /** Stores accounts and pending authorizations (`memoryStore()`, or a database adapter). */
  readonly store: AccountStore & StateStore;
  /** Encrypts tokens at rest and pending-state payloads. */
  readonly cipher: Cipher;
  /**
   * Origins allowed for redirect URIs and absolute `returnTo` values. When given, every provider's redirect
   * URI is checked at creation (https outside localhost, no loopback URI in production).
   */
  readonly allowedOrigins?: readonly string[];
  /** Refuse loopback redirect URIs. @default process.env.NODE_ENV === 'production' */
  readonly production?: boolean;
  /** Lifetime of a started authorization, in milliseconds. @default 600000 */
  readonly stateTtlMs?: number;
  /** Pending authorizations kept per owner. @default 10 */
  readonly maxPendingPerOwner?: number;
  /** Pending authorizations kept in all, whoever their owners; the oldest dropped first. @default no bound */
  readonly maxPendingTotal?: number;
  /** The clock, in epoch milliseconds. @default Date.now */
  readonly now?: () => number;
  /** Token refresh settings (skew, lease, retries, circuit breaker, logger). */
  readonly refresh?: Omit<TokenRefresherOptions, 'persistence' | 'registry' | 'now'>;
  /**
   * Mail transports besides the built-in `imap`, `gmail-api` and `graph`, from {@link defineTransport}: a
   * provider preset that lists one's name in `mailTransports` reads and sends through it. @default []
   */
  readonly transports?: readonly TransportDefinition[];
  /**
   * Where the library's OpenTelemetry metrics and spans go (see `docs/operations.md`).
   * @default the global providers of `@opentelemetry/api` (no-ops until the host registers an SDK)
   */
  readonly telemetry?: TelemetryOptions;
  /**
   * How long the mailbox clients' activity (the figures of {@link MailboxAuth.mailboxHealth}) waits before
   * it is written to the store, in milliseconds: at most one write per account per interval, and at once
   * when a watcher stops, a client disconnects or the auth closes. @default 10_000
   */
  readonly mailboxActivityFlushMs?: number;
}

/**
 * What {@link createMailboxAuth} returns: the two route calls, disconnect, and the building blocks.
 *
 * @example
 * ```ts
 * const auth: MailboxAuth = createMailboxAuth({ providers, store, cipher });
 * const { accessToken } = await auth.getAccessToken(accountId);
 * ```
 */
export interface MailboxAuth {
  /** The configured providers. */
  readonly registry: ProviderRegistry;
  /** Reads and writes accounts and their encrypted tokens. */
  readonly persistence: TokenPersistence;
  /** The authorization code flow behind `startAuthorization` / `completeAuthorization` / `disconnect`. */
  readonly flow: AuthorizationFlow;
  /** The token refresher behind `getAccessToken`. */
  readonly refresher: TokenRefresher;
  /**
   * A valid access token for the account, or with `{ resource: 'graph' }` for one of the provider's extra
   * resources (see {@link TokenRefresher.getAccessToken}).
   */
  getAccessToken(accountId: string, options?: GetAccessTokenOptions): Promise<AccessToken>;
  /**
   * Listen to the refresher's events (`refreshed`, `refreshFailed`, `reauthorizationRequired`, `circuitOpen`,
   * `circuitClosed`) and the flow's (`connected` after `completeAuthorization`, `disconnected` after
   * `disconnect`). A listener that throws is logged and does not fail the call that emitted.
   */
  on<E extends keyof MailboxAuthEvents>(
    event: E,
    listener: (payload: MailboxAuthEvents[E]) => void,
  ): MailboxAuth;
  /** Stop listening. */
  off<E extends keyof MailboxAuthEvents>(
    event: E,
    listener: (payload: MailboxAuthEvents[E]) => void,
  ): MailboxAuth;
  /** A logged-in IMAP client for the account (see {@link connectImap}). */
  connectImap(accountId: string, options?: MailConnectOptions): Promise<ImapFlow>;
  /** A nodemailer SMTP transport for the account, tokens from the refresher (see {@link createSmtpTransport}). */
  createSmtpTransport(accountId: string, options?: MailConnectOptions): Promise<SmtpTransport>;
  /**
   * A mailbox client for the account: fetch unread, mark read, send, watch (see {@link MailboxClient}), over
   * the provider's transport or `options.transport` (`imap`, `gmail-api`, `graph`). An unknown transport
   * name is an `InvalidArgumentError` here; one the provider does not offer, at first use.
   */
  mailbox(accountId: string, options?: MailboxClientOptions): MailboxClient;
  /** Watchers for many accounts, split between instances by store leases (see {@link WatchOrchestrator}). */
  watchOrchestrator(options: WatchOrchestratorOptions): WatchOrchestrator;
  /** Refresh every active account expiring within `withinMs` (see {@link refreshExpiring}). */
  refreshExpiring(options: RefreshExpiringOptions): Promise<RefreshReport>;
  /** Counts by status, expiring tokens, recent failures, circuits (see {@link health}). */
  health(options?: HealthOptions): Promise<HealthReport>;
  /** One account's health. */
  accountHealth(accountId: string): Promise<AccountHealth>;
  /**
   * The mailbox health of each listed account (1 to 1000 ids) over the whole fleet: messages processed and
   * failed, errors, average callback time in the last 24 hours, last success and last error, as every
   * instance's mailbox clients and watchers recorded them in the store (see {@link FleetMailboxHealth}).
   * Rejects with a `ConfigurationError` when the store keeps no mailbox activity.
   */
  mailboxHealth(accountIds: readonly string[], options?: MailboxHealthOptions): Promise<FleetMailboxHealth[]>;
  /** Re-encrypt every account with the cipher's current key, resumably (see {@link rotateKeys}). */
  rotateKeys(options?: RotateKeysOptions): Promise<RotateKeysReport>;
  /** Providers for a "connect your mailbox" page. */
  listProviders(): ProviderSummary[];
  /** Route 1: store a single-use state and return the provider's URL (see {@link AuthorizationFlow.startAuthorization}). */
  startAuthorization(
    providerId: string,
    options: authorization.StartAuthorizationOptions,
  ): Promise<authorization.StartedAuthorization>;
  /** Route 2: check the callback, exchange the code and store the account (see {@link AuthorizationFlow.completeAuthorization}). */
  completeAuthorization(
    providerId: string,
    callback: CallbackInput,
    options: authorization.CompleteAuthorizationOptions,
  ): Promise<authorization.CompletedAuthorization>;
  /** Revoke at the provider where possible, delete locally, and forget the cached token (see {@link AuthorizationFlow.disconnect}). */
  disconnect(
    accountId: string,
    options?: { readonly signal?: AbortSignal },
  ): Promise<authorization.DisconnectResult>;
  /** An account without its tokens. */
  getAccount(accountId: string): Promise<MailboxAccount>;
  /**
   * Shut down: stop every watch orchestrator and disconnect every mailbox client this auth created (watch
   * leases released), stop the refresher's timers and background write retries, abort the calls in flight
   * that take a signal (`refreshExpiring`, `health`, `rotateKeys`, `disconnect`, ...), wait for every call
   * in flight to settle (a token request already sent is answered and stored first, then its refresh lease
   * released), and release the leases still held for writes that never succeeded. The store, and any
   * `ImapFlow` or SMTP transport handed out by `connectImap` / `createSmtpTransport`, are yours: close them
   * after (`await pool.end()`). Calling it again returns the same promise. Afterwards every method throws
   * (or rejects with) a `ClosedError` (`ERR_CLOSED`), and a call that the close cut short rejects with one,
   * its own failure as `cause`.
   */
  close(): Promise<void>;
}

/**
 * Events of {@link MailboxAuth}: the refresher's and the authorization flow's.
 *
 * @example
 * ```ts
 * auth.on('connected', ({ accountId, created }: MailboxAuthEvents['connected']) => {
 *   orchestrator.add(accountId);
 *   if (created) void initialSync(accountId);
 * });
 * auth.on('disconnected', ({ accountId }) => orchestrator.remove(accountId));
 * ```
 */
export type MailboxAuthEvents = TokenRefresherEvents & authorization.AuthorizationFlowEvents;

const FLOW_EVENTS: ReadonlySet<string> = new Set(['connected', 'disconnected']);

/**
 * Wire providers, a store and a cipher into one object for the host's routes.
 *
 * @example
 * ```ts
 * import { createMailboxAuth, google, microsoft, memoryStore, aesGcmCipher } from 'oauth-mailbox';
 * const auth = createMailboxAuth({
 *   providers: [
 *     google({ clientId, clientSecret, redirectUri: 'https://app.example.com/oauth/google/callback' }),
 *     microsoft({ clientId: msId, clientSecret: msSecret, redirectUri: 'https://app.example.com/oauth/microsoft/callback' }),
 *   ],
 *   store: memoryStore(),
 *   cipher: aesGcmCipher({ keys: { k2026: process.env.TOKEN_KEY! }, current: 'k2026' }),
 *   allowedOrigins: ['https://app.example.com'],
 * });
 * const { url } = await auth.startAuthorization('google', { owner: 'user-1' });
 * const { account } = await auth.completeAuthorization('google', callbackUrl, { owner: 'user-1' });
 * const { accessToken } = await auth.getAccessToken(account.id);
 * const mailbox = auth.mailbox(account.id); // IMAP/SMTP, or { transport: 'gmail-api' | 'graph' }
 * auth.on('reauthorizationRequired', ({ accountId }) => notifyUser(accountId));
 * ```
 */
export function createMailboxAuth(options: MailboxAuthOptions): MailboxAuth {
  if (typeof options !== 'object' || options === null) {
    throw new ConfigurationError(
      'createMailboxAuth: options must be an object with providers, store and cipher',
    );
  }
  const registry =
    options.providers instanceof ProviderRegistry
      ? options.providers
      : Array.isArray(options.providers)
        ? new ProviderRegistry(options.providers)
        : undefined;
  if (registry === undefined) {
    throw new ConfigurationError(
      'createMailboxAuth: providers must be an array of providers or a ProviderRegistry',
    );
  }
  if (options.allowedOrigins !== undefined) {
    validateRedirectUris(registry.providers(), {
      allowedOrigins: options.allowedOrigins,
      ...(options.production === undefined ? {} : { production: options.production }),
    });
  }
  const persistence = new TokenPersistence({
    store: options.store,
    cipher: options.cipher,
    ...(options.now === undefined ? {} : { now: options.now }),
  });
  const flow = new AuthorizationFlow({
    registry,
    persistence,
    ...(options.refresh?.logger === undefined ? {} : { logger: options.refresh.logger }),
    states: options.store,
    cipher: options.cipher,
    ...(options.stateTtlMs === undefined ? {} : { stateTtlMs: options.stateTtlMs }),
    ...(options.maxPendingPerOwner === undefined ? {} : { maxPendingPerOwner: options.maxPendingPerOwner }),
    ...(options.maxPendingTotal === undefined ? {} : { maxPendingTotal: options.maxPendingTotal }),
    ...(options.allowedOrigins === undefined ? {} : { allowedReturnOrigins: options.allowedOrigins }),
    ...(options.now === undefined ? {} : { now: options.now }),
    ...(options.telemetry === undefined ? {} : { telemetry: options.telemetry }),
  });
  const refresher = new TokenRefresher({
    ...options.refresh,
    persistence,
    registry,
    ...(options.now === undefined ? {} : { now: options.now }),
    ...(options.telemetry === undefined ? {} : { telemetry: options.telemetry }),
  });
  const activity = new ActivityRecorder({
    persistence,
    logger: options.refresh?.logger ?? silentLogger,
    flushIntervalMs: integerOption(
      options.mailboxActivityFlushMs,
      10_000,
      1,
      86_400_000,
      () =>
        new ConfigurationError('mailboxActivityFlushMs must be an integer from 1 to 86400000 (milliseconds)'),
    ),
  });
  const mail: MailboxClientContext = {
    persistence,
    registry,
    refresher,
    activity,
    // Checked now (a bad or duplicate definition is a ConfigurationError at creation, not at first use).
    ...(options.transports === undefined ? {} : { transports: checkTransports(options.transports) }),
  };
  const lifecycle = new Lifecycle('MailboxAuth');
  const auth: MailboxAuth = {
    registry,
    persistence,
    flow,
    refresher,
    getAccessToken: (accountId, get) => refresher.getAccessToken(accountId, get),
    connectImap: (accountId, connect) => connectImap(mail, accountId, connect),
    createSmtpTransport: (accountId, connect) => createSmtpTransport(mail, accountId, connect),
    mailbox: (accountId, mailboxOptions) => new MailboxClient(mail, accountId, mailboxOptions),
    watchOrchestrator: (watchOptions) => new WatchOrchestrator(mail, watchOptions),
    refreshExpiring: (refresh) => refreshExpiring(refresher, persistence, refresh),
    health: (check) => health(persistence, refresher, check),
    accountHealth: (accountId) => accountHealth(persistence, accountId),
    mailboxHealth: (accountIds, check) => mailboxHealth(persistence, activity, accountIds, check),
    rotateKeys: (rotate) => rotateKeys(persistence, rotate),
    on: (event, listener) => {
      if (FLOW_EVENTS.has(event)) flow.on(event as 'connected', listener as never);
      else refresher.on(event as keyof TokenRefresherEvents, listener as never);
      return auth;
    },
    off: (event, listener) => {
      if (FLOW_EVENTS.has(event)) flow.off(event as 'connected', listener as never);
      else refresher.off(event as keyof TokenRefresherEvents, listener as never);
      return auth;
    },
    listProviders: () => registry.list(),
    startAuthorization: (providerId, start) => flow.startAuthorization(providerId, start),
    completeAuthorization: (providerId, callback, complete) =>
      flow.completeAuthorization(providerId, callback, complete),
    disconnect: async (accountId, disconnect) => {
      const result = await flow.disconnect(accountId, disconnect);
      refresher.invalidate(accountId);
      return result;
    },
    getAccount: (accountId) => persistence.getAccount(accountId),
    close: () =>
      lifecycle.close({
        stop: (value) =>
          value instanceof WatchOrchestrator
            ? value.stopAll()
            : value instanceof MailboxClient
              ? value.disconnect()
              : Promise.resolve(),
        settle: () => refresher.close(),
        // Leases kept for rotated tokens whose store write never succeeded: the tokens are lost with this
        // process, so another may refresh at once rather than after the lease lapses.
        release: async () => {
          await activity.close(); // what the stopped clients recorded, written
          await refresher.settled(); // refreshes a mailbox client started, whose caller already gave up
          await Promise.all(
            refresher
              .pendingWrites()
              .map((id) => persistence.releaseLease(id, refresher.holderId).catch(() => undefined)),
          );
        },
      }),
  };
  // Every method refuses to run after close(); async calls are counted in flight, and those taking a
  // signal (at this argument index) are aborted by the close.
  lifecycle.guard(auth, {
    getAccessToken: 'async',
    on: 'sync',
    off: 'sync',
    connectImap: 1,
    createSmtpTransport: 1,
    mailbox: 'adopt',
    watchOrchestrator: 'adopt',
    refreshExpiring: 0,
    health: 0,
    accountHealth: 'async',
    mailboxHealth: 'async',
    rotateKeys: 0,
    listProviders: 'sync',
    startAuthorization: 'async',
    completeAuthorization: 2,
    disconnect: 1,
    getAccount: 'async',
  });
  Object.defineProperty(auth, inspect.custom, {
    value: () =>
      `MailboxAuth { providers: [${registry
        .list()
        .map((p) => p.id)
        .join(', ')}] }`,
  });
  return Object.freeze(auth);
}
