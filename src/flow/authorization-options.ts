/**
 * The options and results of {@link AuthorizationFlow}: what a host passes to its two routes and gets back.
 * @module
 */

import type { Cipher } from '../crypto/cipher.js';
import type { MailboxAuthError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { ProviderRegistry } from '../providers/registry.js';
import type { JsonValue } from '../store/account-store.js';
import type { StateStore } from '../store/state-store.js';
import type { TelemetryOptions } from '../telemetry/telemetry.js';
import type { MailboxAccount } from '../tokens/account.js';
import type { TokenPersistence } from '../tokens/persistence.js';

/**
 * Options of {@link AuthorizationFlow}.
 *
 * @example
 * ```ts
 * const flow = new AuthorizationFlow({ registry, persistence, states: store, cipher, stateTtlMs: 300_000 });
 * ```
 */
export interface AuthorizationFlowOptions {
  /** The providers that can be authorized. */
  readonly registry: ProviderRegistry;
  /** Stores the connected account and its encrypted tokens. */
  readonly persistence: TokenPersistence;
  /** Keeps pending authorizations (state) between the start and the callback. */
  readonly states: StateStore;
  /** Encrypts pending-state payloads (they hold the PKCE verifier). */
  readonly cipher: Cipher;
  /**
   * How long a started authorization stays valid, in milliseconds.
   * @default 600000 (10 minutes)
   */
  readonly stateTtlMs?: number;
  /**
   * Pending authorizations kept per owner; starting more drops the oldest.
   * @default 10
   */
  readonly maxPendingPerOwner?: number;
  /**
   * Pending authorizations kept in all, whoever their owners (a flood of starts from many owners at once);
   * starting more drops the oldest. From 1 to 10,000,000. @default undefined (no global bound)
   */
  readonly maxPendingTotal?: number;
  /** Origins an absolute `returnTo` may point at (relative paths are always accepted). @default [] */
  readonly allowedReturnOrigins?: readonly string[];
  /** The clock, in epoch milliseconds. @default Date.now */
  readonly now?: () => number;
  /** Where the code exchange's span goes (see `docs/operations.md`). @default the global OpenTelemetry providers */
  readonly telemetry?: TelemetryOptions;
  /** Where a throwing event listener is reported (the flow goes on). @default silent */
  readonly logger?: Logger;
}

/**
 * Options of {@link AuthorizationFlow.startAuthorization}.
 *
 * @example
 * ```ts
 * await auth.startAuthorization('microsoft', { owner: user.id, loginHint: user.email, returnTo: '/settings/mail', metadata: { team: 'sales' } });
 * ```
 */
export interface StartAuthorizationOptions {
  /** The host's user (or tenant) who connects the mailbox. The callback must come from the same owner. */
  readonly owner: string;
  /** Pre-fill the provider's login form. */
  readonly loginHint?: string;
  /** Extra scopes for this authorization. */
  readonly scopes?: readonly string[];
  /** Host data stored on the account (JSON). */
  readonly metadata?: { readonly [key: string]: JsonValue };
  /** Where the host wants to send the browser after the callback: a path, or a URL on an allowed origin. */
  readonly returnTo?: string;
}

/**
 * What {@link AuthorizationFlow.startAuthorization} returns.
 *
 * @example
 * ```ts
 * const { url, expiresAt }: StartedAuthorization = await auth.startAuthorization('google', { owner });
 * res.redirect(url.href);
 * ```
 */
export interface StartedAuthorization {
  /** Redirect the browser here. */
  readonly url: URL;
  /** The `state` value (256 random bits), already stored server-side. */
  readonly state: string;
  /** When the authorization lapses. */
  readonly expiresAt: Date;
}

/**
 * Options of {@link AuthorizationFlow.completeAuthorization}.
 *
 * @example
 * ```ts
 * await auth.completeAuthorization('google', request, { owner: session.userId, signal: AbortSignal.timeout(10_000) });
 * ```
 */
export interface CompleteAuthorizationOptions {
  /** The owner of the current session: must be the one who started the authorization. */
  readonly owner: string;
  /** Stops waiting for the provider (token exchange, userinfo). */
  readonly signal?: AbortSignal;
}

/**
 * What {@link AuthorizationFlow.completeAuthorization} returns.
 *
 * @example
 * ```ts
 * const { account, created, returnTo }: CompletedAuthorization = await auth.completeAuthorization('google', request, { owner });
 * ```
 */
export interface CompletedAuthorization {
  /** The stored account (no secret in it). */
  readonly account: MailboxAccount;
  /** `false` when an already connected mailbox was reconnected (same account id). */
  readonly created: boolean;
  /** The `returnTo` given at the start, if any. */
  readonly returnTo: string | undefined;
}

/**
 * What {@link AuthorizationFlow.disconnect} did.
 *
 * @example
 * ```ts
 * const { revoked, revocationError }: DisconnectResult = await auth.disconnect(accountId);
 * if (revocationError) log.warn(revocationError.code);
 * ```
 */
export interface DisconnectResult {
  /** The account that was disconnected. */
  readonly accountId: string;
  /** `true` if the provider revoked the token. */
  readonly revoked: boolean;
  /** Why revocation was skipped or failed (the local tokens are deleted anyway). */
  readonly revocationError: MailboxAuthError | undefined;
  /** `true` if the local account was deleted. */
  readonly deleted: boolean;
}

/**
 * Events of {@link AuthorizationFlow} (and of `auth.on`): a mailbox connected or disconnected, from any
 * route of this process. No secret is in them.
 *
 * @example
 * ```ts
 * auth.on('connected', ({ accountId, created }: AuthorizationFlowEvents['connected']) => {
 *   orchestrator.add(accountId);
 *   if (created) void initialSync(accountId);
 * });
 * ```
 */
export interface AuthorizationFlowEvents {
  /** A mailbox was connected (`completeAuthorization`), or reconnected (`created: false`, same account id). */
  connected: {
    /** The account. */
    readonly accountId: string;
    /** Its provider id. */
    readonly provider: string;
    /** Its owner. */
    readonly owner: string;
    /** The mailbox address. */
    readonly email: string;
    /** The account's metadata, as stored. */
    readonly metadata: MailboxAccount['metadata'];
    /** `false` when an already connected mailbox was reconnected. */
    readonly created: boolean;
  };
  /** A mailbox was disconnected (`disconnect`): its account is deleted. */
  disconnected: {
    /** The account. */
    readonly accountId: string;
    /** Its provider id. */
    readonly provider: string;
    /** Its owner. */
    readonly owner: string;
    /** The account's metadata, as it was. */
    readonly metadata: MailboxAccount['metadata'];
    /** `true` if the provider revoked the token. */
    readonly revoked: boolean;
  };
}
