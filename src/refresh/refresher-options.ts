/**
 * The checks of {@link TokenRefresher}'s options and call arguments: a bad option is a `ConfigurationError`
 * at construction, a bad argument an `InvalidArgumentError` before anything is read.
 * @module
 */

import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { ConfigurationError, InvalidArgumentError } from '../errors.js';
import { integerOption } from '../internal/options.js';
import { type Logger, silentLogger } from '../logger.js';
import type { ProviderRegistry } from '../providers/registry.js';
import { assertId } from '../store/validate.js';
import type { MailboxAccount } from '../tokens/account.js';
import type { TokenPersistence } from '../tokens/persistence.js';
import type { CircuitBreakerOptions } from './circuit-breaker.js';
import type { GetAccessTokenOptions, TokenRefresherOptions } from './refresher-types.js';
import type { RefreshRetryOptions } from './retry.js';
import { refreshTokenGrant, type TokenSource } from './token-source.js';

const MINUTE = 60_000;
/** A resource name, as in `TokenSetInput.resources`. */
const RESOURCE_NAME = /^[a-z][a-z0-9-]{0,31}$/;

/** The refresher's options with their defaults applied. */
export interface RefresherSettings {
  readonly persistence: TokenPersistence;
  readonly registry: ProviderRegistry;
  readonly minValidityMs: number;
  readonly leaseTtlMs: number;
  readonly waitMs: number;
  readonly retry: Required<RefreshRetryOptions>;
  readonly circuitBreaker: CircuitBreakerOptions | false;
  readonly tokenSource: (account: MailboxAccount) => TokenSource;
  readonly logger: Logger;
  readonly holder: string;
  readonly now: () => number;
}

function positiveInt(value: unknown, name: string, fallback: number, allowZero = false): number {
  const kind = allowZero ? 'non-negative' : 'positive';
  const refuse = () =>
    new ConfigurationError(`TokenRefresher: ${name} must be a ${kind} integer (milliseconds or count)`);
  return integerOption(value, fallback, allowZero ? 0 : 1, Number.MAX_SAFE_INTEGER, refuse);
}

/** The options checked, with their defaults; throws `ConfigurationError`. */
export function refresherSettings(options: TokenRefresherOptions): RefresherSettings {
  if (typeof options?.persistence?.load !== 'function') {
    throw new ConfigurationError('TokenRefresher: persistence is required');
  }
  if (typeof options.registry?.get !== 'function')
    throw new ConfigurationError('TokenRefresher: registry is required');
  const retry = options.retry ?? {};
  if (options.tokenSource !== undefined && typeof options.tokenSource !== 'function') {
    throw new ConfigurationError('TokenRefresher: tokenSource must be a function of the account');
  }
  const select = options.tokenSource;
  if (options.holderId !== undefined) {
    // Checked here, not at the first lease (every refresh would fail with it), by the stores' own rules.
    try {
      assertId(options.holderId, 'holderId');
    } catch (cause) {
      throw new ConfigurationError(
        'TokenRefresher: holderId must be a non-empty string of at most 255 characters without control characters',
        { cause },
      );
    }
  }
  return {
    persistence: options.persistence,
    registry: options.registry,
    minValidityMs: positiveInt(options.minValidityMs, 'minValidityMs', 5 * MINUTE, true),
    leaseTtlMs: positiveInt(options.leaseTtlMs, 'leaseTtlMs', MINUTE),
    waitMs: positiveInt(options.waitForOtherRefreshMs, 'waitForOtherRefreshMs', 20_000),
    retry: {
      retries: positiveInt(retry.retries, 'retry.retries', 3, true),
      minDelayMs: positiveInt(retry.minDelayMs, 'retry.minDelayMs', 500, true),
      maxDelayMs: positiveInt(retry.maxDelayMs, 'retry.maxDelayMs', 10_000, true),
      maxRetryTimeMs: positiveInt(retry.maxRetryTimeMs, 'retry.maxRetryTimeMs', 30_000),
    },
    circuitBreaker: options.circuitBreaker ?? {},
    tokenSource: (account) => select?.(account) ?? refreshTokenGrant,
    logger: options.logger ?? silentLogger,
    holder: options.holderId ?? `${hostname()}:${process.pid}:${randomBytes(6).toString('hex')}`,
    now: options.now ?? Date.now,
  };
}

/** Why `getAccessToken(accountId, options)` is refused, or `undefined`. */
export function refuseTokenCall(accountId: unknown, options: GetAccessTokenOptions): Error | undefined {
  if (typeof accountId !== 'string' || accountId.length === 0) {
    return new InvalidArgumentError('accountId must be a non-empty string');
  }
  const { minValidityMs, resource, rejected } = options;
  if (minValidityMs !== undefined && (!Number.isSafeInteger(minValidityMs) || minValidityMs < 0)) {
    return new InvalidArgumentError('minValidityMs must be a non-negative integer (milliseconds)');
  }
  if (resource !== undefined && (typeof resource !== 'string' || !RESOURCE_NAME.test(resource))) {
    return new InvalidArgumentError(
      'resource must be a resource name such as "graph" (lowercase, at most 32 characters)',
    );
  }
  if (
    rejected !== undefined &&
    (typeof rejected !== 'object' ||
      rejected === null ||
      typeof rejected.accessToken !== 'string' ||
      rejected.accountId !== accountId ||
      rejected.resource !== resource)
  ) {
    return new InvalidArgumentError(
      'rejected must be an AccessToken of this account and resource (from getAccessToken)',
    );
  }
  return undefined;
}

/** Checks the arguments of `refreshIfDue`; throws `InvalidArgumentError`. */
export function assertRefreshIfDue(accountId: unknown, minValidityMs: unknown): void {
  if (typeof accountId !== 'string' || accountId.length === 0) {
    throw new InvalidArgumentError('accountId must be a non-empty string');
  }
  if (typeof minValidityMs !== 'number' || !Number.isSafeInteger(minValidityMs) || minValidityMs < 0) {
    throw new InvalidArgumentError('minValidityMs must be a non-negative integer (milliseconds)');
  }
}
