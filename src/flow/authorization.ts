/**
 * The authorization code flow: start (state, PKCE, nonce) → callback (checks, exchange, identity) → a
 * stored, encrypted account.
 * @module
 */
import { inspect } from 'node:util';
import * as client from 'openid-client';
import type { Cipher } from '../crypto/cipher.js';
import {
  AuthorizationDeniedError,
  AuthorizationResponseError,
  ConfigurationError,
  InvalidArgumentError,
  InvalidStateError,
  isMailboxAuthError,
  type MailboxAuthError,
  StorageError,
  TokenExchangeError,
} from '../errors.js';
import { TypedEvents } from '../events.js';
import { integerOption } from '../internal/options.js';
import { type Logger, silentLogger } from '../logger.js';
import type { ProviderRegistry } from '../providers/registry.js';
import type { StateStore } from '../store/state-store.js';
import { codeExchangeSpanAttributes } from '../telemetry/attributes.js';
import { SPANS } from '../telemetry/names.js';
import { type Telemetry, telemetryFrom } from '../telemetry/telemetry.js';
import type { MailboxAccount } from '../tokens/account.js';
import type { TokenPersistence } from '../tokens/persistence.js';
import type {
  AuthorizationFlowEvents,
  AuthorizationFlowOptions,
  CompleteAuthorizationOptions,
  CompletedAuthorization,
  DisconnectResult,
  StartAuthorizationOptions,
  StartedAuthorization,
} from './authorization-options.js';
import { type CallbackInput, readCallbackParameters } from './callback.js';
import {
  openPendingState,
  type PendingState,
  pendingStateKey,
  STATE_PATTERN,
  sealPendingState,
} from './pending-state.js';
import { checkReturnTo } from './redirects.js';

function text(value: unknown, name: string, max = 255): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > max) {
    throw new InvalidArgumentError(`${name} must be a non-empty string of at most ${max} characters`);
  }
  return value;
}

/**
 * Starts and completes OAuth authorizations for the host's two routes, and disconnects accounts.
 *
 * @example
 * ```ts
 * // GET /oauth/:provider/start
 * const { url } = await flow.startAuthorization(req.params.provider, { owner: req.user.id });
 * res.redirect(url.href);
 * // GET /oauth/:provider/callback
 * const { account } = await flow.completeAuthorization(req.params.provider, fullUrl(req), { owner: req.user.id });
 * ```
 */
export class AuthorizationFlow extends TypedEvents<AuthorizationFlowEvents> {
  readonly #registry: ProviderRegistry;
  readonly #persistence: TokenPersistence;
  readonly #states: StateStore;
  readonly #cipher: Cipher;
  readonly #ttlMs: number;
  readonly #maxPerOwner: number;
  readonly #maxTotal: number | undefined;
  readonly #returnOrigins: ReadonlySet<string>;
  readonly #now: () => number;
  readonly #telemetry: Telemetry;
  readonly #logger: Logger;

  constructor(options: AuthorizationFlowOptions) {
    super();
    const { registry, persistence, states, cipher } = options ?? ({} as AuthorizationFlowOptions);
    if (typeof registry?.get !== 'function')
      throw new ConfigurationError('AuthorizationFlow: registry is required');
    if (typeof persistence?.connect !== 'function')
      throw new ConfigurationError('AuthorizationFlow: persistence is required');
    if (typeof states?.putState !== 'function' || typeof states.takeState !== 'function') {
      throw new ConfigurationError('AuthorizationFlow: states must implement StateStore');
    }
    if (typeof cipher?.encrypt !== 'function')
      throw new ConfigurationError('AuthorizationFlow: cipher is required');
    const refuse = (name: string, range: string) => () =>
      new ConfigurationError(`AuthorizationFlow: ${name} must be an integer from ${range}`);
    const int = (value: unknown, fallback: number, min: number, max: number, name: string) =>
      integerOption(value, fallback, min, max, refuse(name, `${min} to ${max}`));
    const ttl = int(options.stateTtlMs, 600_000, 1000, 3_600_000, 'stateTtlMs');
    const max = int(options.maxPendingPerOwner, 10, 1, 1000, 'maxPendingPerOwner');
    this.#registry = registry;
    this.#persistence = persistence;
    this.#states = states;
    this.#cipher = cipher;
    this.#ttlMs = ttl;
    this.#maxPerOwner = max;
    const total = options.maxPendingTotal;
    const range = 'maxPendingPerOwner to 10000000';
    if (total !== undefined) integerOption(total, max, max, 10_000_000, refuse('maxPendingTotal', range));
    this.#maxTotal = total;
    this.#telemetry = telemetryFrom(options.telemetry);
    this.#logger = options.logger ?? silentLogger;
    this.#returnOrigins = new Set(
      (options.allowedReturnOrigins ?? []).map((origin) => {
        try {
          return new URL(origin).origin;
        } catch (cause) {
          throw new ConfigurationError(`AuthorizationFlow: allowedReturnOrigins has an invalid URL`, {
            cause,
          });
        }
      }),
    );
    this.#now = options.now ?? Date.now;
  }

  /**
   * Begin connecting a mailbox: store a single-use state with a PKCE S256 verifier and an OIDC nonce, and
   * return the provider's authorization URL.
   */
  async startAuthorization(
    providerId: string,
    options: StartAuthorizationOptions,
  ): Promise<StartedAuthorization> {
    const owner = text(options?.owner, 'owner');
    const provider = this.#registry.get(providerId);
    if (options.loginHint !== undefined) text(options.loginHint, 'loginHint', 320);
    const scopes = options.scopes ?? [];
    if (
      !Array.isArray(scopes) ||
      !scopes.every((s) => typeof s === 'string' && s.length > 0 && !/\s/.test(s))
    ) {
      throw new InvalidArgumentError('scopes must be an array of scope strings without spaces');
    }
    if (
      options.metadata !== undefined &&
      (typeof options.metadata !== 'object' || options.metadata === null || Array.isArray(options.metadata))
    ) {
      throw new InvalidArgumentError('metadata must be a plain object');
    }
    const returnTo =
      options.returnTo === undefined ? null : checkReturnTo(options.returnTo, this.#returnOrigins);
    const state = client.randomState();
    const verifier = client.randomPKCECodeVerifier();
    const nonce = provider.openid ? client.randomNonce() : null;
    const payload: PendingState = {
      v: 1,
      verifier,
      nonce,
      scopes,
      metadata: options.metadata ?? null,
      returnTo,
    };
    const key = pendingStateKey(state);
    const sealed = await sealPendingState(this.#cipher, key, payload);
    const url = await provider.authorizationUrl({
      state,
      codeChallenge: await client.calculatePKCECodeChallenge(verifier),
      ...(nonce === null ? {} : { nonce }),
      scopes,
      ...(options.loginHint === undefined ? {} : { loginHint: options.loginHint }),
    });
    const now = this.#now();
    const expiresAt = now + this.#ttlMs;
    try {
      await this.#states.putState(
        key,
        { owner, provider: provider.id, payload: sealed, createdAt: now, expiresAt },
        this.#maxTotal === undefined
          ? { maxPerOwner: this.#maxPerOwner }
          : { maxPerOwner: this.#maxPerOwner, maxTotal: this.#maxTotal },
      );
    } catch (cause) {
      if (isMailboxAuthError(cause)) throw cause;
      throw new StorageError('The state store failed (putState)', { operation: 'putState', cause });
    }
    return { url, state, expiresAt: new Date(expiresAt) };
  }

  /**
   * Finish connecting a mailbox from the provider's callback: take the state exactly once, check it
   * belongs to this owner and provider, map provider errors, exchange the code (PKCE, nonce and `iss`
   * checked), read the email, and store the account (a reconnect updates the same account).
   */
  async completeAuthorization(
    providerId: string,
    callback: CallbackInput,
    options: CompleteAuthorizationOptions,
  ): Promise<CompletedAuthorization> {
    const owner = text(options?.owner, 'owner');
    const provider = this.#registry.get(providerId);
    const params = await readCallbackParameters(callback);
    const state = params.get('state');
    if (state === null || state === '')
      throw new InvalidStateError('The callback has no state parameter', { reason: 'missing', providerId });
    if (!STATE_PATTERN.test(state))
      throw new InvalidStateError('The state parameter is malformed', { reason: 'malformed', providerId });
    const key = pendingStateKey(state);
    let stored: Awaited<ReturnType<StateStore['takeState']>>;
    try {
      stored = await this.#states.takeState(key);
    } catch (cause) {
      if (isMailboxAuthError(cause)) throw cause;
      throw new StorageError('The state store failed (takeState)', { operation: 'takeState', cause });
    }
    if (stored === null || stored.expiresAt <= this.#now()) {
      throw new InvalidStateError(
        'The state is unknown, expired or already used: start the authorization again',
        {
          reason: 'not_found',
          providerId,
        },
      );
    }
    const payload = await openPendingState(this.#cipher, key, stored.payload, providerId);
    if (stored.provider !== provider.id) {
      throw new InvalidStateError('The state was issued for another provider', {
        reason: 'provider_mismatch',
        providerId,
      });
    }
    if (stored.owner !== owner) {
      throw new InvalidStateError('The state was issued to another user', {
        reason: 'owner_mismatch',
        providerId,
      });
    }
    const error = params.get('error');
    if (error !== null) {
      if (error === 'access_denied')
        throw new AuthorizationDeniedError('The user declined the authorization', { providerId });
      throw new AuthorizationResponseError(
        `The provider answered the authorization with an error (${error.slice(0, 64)})`,
        {
          providerId,
          oauthError: error.slice(0, 64),
        },
      );
    }
    if (!params.get('code')) {
      throw new AuthorizationResponseError('The callback has no authorization code', { providerId });
    }
    const callbackUrl = new URL(provider.redirectUri);
    callbackUrl.search = params.toString();
    const result = await this.#telemetry.span(
      SPANS.codeExchange,
      codeExchangeSpanAttributes(provider.id),
      () =>
        provider.exchangeCode(callbackUrl, {
          state,
          codeVerifier: payload.verifier,
          ...(payload.nonce === null ? {} : { nonce: payload.nonce }),
          ...(options.signal === undefined ? {} : { signal: options.signal }),
        }),
    );
    const identity = await provider.identify(
      result,
      options.signal === undefined ? {} : { signal: options.signal },
    );
    const mailbox = { provider: provider.id, owner, email: identity.email };
    if (result.tokens.refreshToken === null) {
      const existing = await this.#persistence.findAccount(mailbox);
      if (existing?.tokens?.refreshToken == null) {
        throw new TokenExchangeError(
          `${provider.id} returned no refresh token: request offline access (Google: access_type=offline and prompt=consent; others: the offline_access scope)`,
          { providerId },
        );
      }
    }
    const requested = [...new Set([...provider.scopes, ...payload.scopes])];
    const { account, created } = await this.#persistence.connect({
      ...mailbox,
      scopes: result.scopes ?? requested,
      tokens: {
        accessToken: result.tokens.accessToken,
        refreshToken: result.tokens.refreshToken,
        idToken: result.tokens.idToken,
        expiresAt: result.tokens.expiresAt,
        tokenType: result.tokens.tokenType,
      },
      ...(payload.metadata === null ? {} : { metadata: payload.metadata }),
    });
    this.emitTo(this.#logger, 'connected', {
      accountId: account.id,
      provider: account.provider,
      owner: account.owner,
      email: account.email,
      metadata: account.metadata,
      created,
    });
    return { account, created, returnTo: payload.returnTo ?? undefined };
  }

  /**
   * Disconnect an account: revoke its refresh token at the provider where there is a revocation endpoint,
   * then delete it locally. A revocation failure (or an undecryptable record, or an unknown provider) still
   * deletes locally and is reported in `revocationError`.
   */
  async disconnect(
    accountId: string,
    options: { readonly signal?: AbortSignal } = {},
  ): Promise<DisconnectResult> {
    let revoked = false;
    let revocationError: MailboxAuthError | undefined;
    let known: MailboxAccount | undefined;
    try {
      const { account, tokens } = await this.#persistence.load(accountId);
      known = account;
      const token = tokens?.refreshToken ?? tokens?.accessToken;
      if (token !== undefined) {
        revoked = await this.#registry
          .get(account.provider)
          .revoke(token, options.signal === undefined ? {} : { signal: options.signal });
      }
    } catch (err) {
      // A missing account, a store failure or an abort stop here; anything else still deletes locally.
      if (!isMailboxAuthError(err) || options.signal?.aborted) throw err;
      if (err.code === 'ERR_ACCOUNT_NOT_FOUND' || err.code === 'ERR_STORAGE') throw err;
      revocationError = err;
    }
    // The tokens could not be read (a key no longer configured, say): the account itself still can.
    known ??= await this.#persistence.getAccount(accountId).catch(() => undefined);
    const deleted = await this.#persistence.deleteAccount(accountId);
    if (deleted && known !== undefined) {
      const { provider, owner, metadata } = known;
      this.emitTo(this.#logger, 'disconnected', { accountId, provider, owner, metadata, revoked });
    }
    return { accountId, revoked, revocationError, deleted };
  }

  /** @internal */
  [inspect.custom](): string {
    return `AuthorizationFlow { providers: [${this.#registry
      .list()
      .map((p) => p.id)
      .join(', ')}] }`;
  }
}
