import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import * as library from '../src/index.js';
import {
  AccountNotFoundError,
  AuthorizationDeniedError,
  AuthorizationResponseError,
  ClosedError,
  ConfigurationError,
  CryptoError,
  ERROR_CODES,
  errorCategory,
  InvalidArgumentError,
  InvalidStateError,
  isMailboxAuthError,
  MailAuthenticationError,
  MailboxAuthError,
  type MailboxAuthErrorByCode,
  type MailboxAuthErrorCode,
  MailConnectionError,
  MailRequestError,
  ProviderUnavailableError,
  ReauthorizationRequiredError,
  StorageError,
  TokenExchangeError,
  TokenExpiredError,
  TokenRefreshError,
  UnknownProviderError,
  VersionConflictError,
} from '../src/index.js';

const cases: [MailboxAuthError, MailboxAuthErrorCode, string, boolean][] = [
  [new ConfigurationError('m'), 'ERR_CONFIGURATION', 'configuration', false],
  [new InvalidArgumentError('m'), 'ERR_INVALID_ARGUMENT', 'request', false],
  [new UnknownProviderError('m'), 'ERR_UNKNOWN_PROVIDER', 'configuration', false],
  [new InvalidStateError('m', { reason: 'expired' }), 'ERR_INVALID_STATE', 'request', false],
  [new AuthorizationDeniedError('m'), 'ERR_AUTHORIZATION_DENIED', 'request', false],
  [
    new AuthorizationResponseError('m', { oauthError: 'invalid_scope' }),
    'ERR_AUTHORIZATION_RESPONSE_INVALID',
    'request',
    false,
  ],
  [new TokenExchangeError('m', { status: 400 }), 'ERR_TOKEN_EXCHANGE_FAILED', 'request', false],
  [new TokenExpiredError('m'), 'ERR_TOKEN_EXPIRED', 'reauthorization', false],
  [
    new TokenRefreshError('m', { retryAfterMs: 5000, status: 503 }),
    'ERR_TOKEN_REFRESH_FAILED',
    'transient',
    true,
  ],
  [new ReauthorizationRequiredError('m'), 'ERR_REAUTHORIZATION_REQUIRED', 'reauthorization', false],
  [
    new ProviderUnavailableError('m', { retryAfterMs: 60_000 }),
    'ERR_PROVIDER_UNAVAILABLE',
    'transient',
    true,
  ],
  [new StorageError('m', { operation: 'getAccount' }), 'ERR_STORAGE', 'transient', true],
  [
    new VersionConflictError('m', { expectedVersion: 1, actualVersion: 2 }),
    'ERR_VERSION_CONFLICT',
    'transient',
    true,
  ],
  [new CryptoError('m', { reason: 'unknown_key', keyId: 'k1' }), 'ERR_CRYPTO', 'configuration', false],
  [new AccountNotFoundError('m'), 'ERR_ACCOUNT_NOT_FOUND', 'request', false],
  [
    new MailAuthenticationError('m', { protocol: 'imap' }),
    'ERR_MAIL_AUTHENTICATION_FAILED',
    'reauthorization',
    false,
  ],
  [new MailConnectionError('m', { protocol: 'smtp' }), 'ERR_MAIL_CONNECTION_FAILED', 'transient', true],
  [
    new MailRequestError('m', { protocol: 'gmail-api', status: 404, apiCode: 'notFound' }),
    'ERR_MAIL_REQUEST_REJECTED',
    'request',
    false,
  ],
  [new ClosedError('m'), 'ERR_CLOSED', 'request', false],
];

describe('errors', () => {
  it.each(cases)('%s has a stable code, category and retryability', (err, code, category, retryable) => {
    expect(err).toBeInstanceOf(MailboxAuthError);
    expect(err).toBeInstanceOf(Error);
    expect(err.code).toBe(code);
    expect(err.category).toBe(category);
    expect(errorCategory(code)).toBe(category);
    expect(err.retryable).toBe(retryable);
    expect(err.name).toBe(err.constructor.name);
    expect(isMailboxAuthError(err)).toBe(true);
    expect(isMailboxAuthError(err, code)).toBe(true);
    expect(JSON.parse(JSON.stringify(err))).toMatchObject({
      name: err.name,
      code,
      category,
      message: 'm',
      retryable,
    });
    expect(err.stack).toContain(err.name);
  });

  it('covers every code exactly once', () => {
    expect(new Set(cases.map((c) => c[1])).size).toBe(cases.length);
    expect(new Set(cases.map((c) => c[1]))).toEqual(new Set(ERROR_CODES));
  });

  it('gives every exported error class a static code, the one its errors carry, and each code one class', () => {
    type ErrorClass = { readonly name: string; readonly code?: string } & (new (
      message: string,
      options: { readonly reason: 'malformed' },
    ) => MailboxAuthError);
    const classes = (Object.values(library) as unknown[]).filter(
      (value): value is ErrorClass =>
        typeof value === 'function' && Object.prototype.isPrototypeOf.call(MailboxAuthError, value),
    );
    expect(classes.length).toBeGreaterThan(0);
    for (const ErrorClass of classes) {
      // `reason` is required by InvalidStateError and CryptoError; 'malformed' is valid for both.
      const err = new ErrorClass('m', { reason: 'malformed' });
      expect(ErrorClass.code, ErrorClass.name).toBe(err.code);
      expect(err, ErrorClass.name).toBeInstanceOf(ErrorClass);
    }
    const codes = classes.map((ErrorClass) => ErrorClass.code);
    expect([...codes].sort()).toEqual([...ERROR_CODES].sort()); // each code exactly once
    expect(MailboxAuthError.code).toBeUndefined();
  });

  it('keeps the cause without making it enumerable', () => {
    const cause = new Error('socket hang up');
    const err = new StorageError('store failed', { cause, accountId: 'a1', operation: 'putAccount' });
    expect(err.cause).toBe(cause);
    expect(Object.keys(err)).not.toContain('cause');
    expect(err.accountId).toBe('a1');
    expect(JSON.parse(JSON.stringify(err))).toMatchObject({
      accountId: 'a1',
      operation: 'putAccount',
      causes: [{ name: 'Error', message: 'socket hang up' }],
    });
  });

  it('summarizes non-Error causes by type only', () => {
    const err = new ConfigurationError('bad', { cause: { secret: 'x' } });
    expect(JSON.parse(JSON.stringify(err)).causes).toEqual([{ name: 'object' }]);
    expect(new ConfigurationError('no cause').cause).toBeUndefined();
  });

  it('exposes typed details', () => {
    expect(new InvalidStateError('m', { reason: 'owner_mismatch' }).reason).toBe('owner_mismatch');
    expect(new TokenRefreshError('m', { retryAfterMs: 1500 }).retryAfterMs).toBe(1500);
    expect(new AuthorizationResponseError('m').oauthError).toBeUndefined();
    expect(new CryptoError('m', { reason: 'expired' }).keyId).toBeUndefined();
    expect(isMailboxAuthError(new Error('x'))).toBe(false);
    expect(isMailboxAuthError(new StorageError('x'), 'ERR_CRYPTO')).toBe(false);
    const throttled = new MailConnectionError('m', { protocol: 'graph', status: 429, retryAfterMs: 5000 });
    expect([throttled.protocol, throttled.status, throttled.retryAfterMs]).toEqual(['graph', 429, 5000]);
    expect(new MailRequestError('m', { apiCode: 'notFound', status: 404 }).apiCode).toBe('notFound');
  });

  it('recognizes errors from another copy of the library (ESM and CJS side by side) by brand and name', () => {
    const foreign = Object.assign(new Error('from the other copy'), {
      name: 'StorageError',
      code: 'ERR_STORAGE',
    });
    Object.defineProperty(foreign, Symbol.for('oauth-mailbox.MailboxAuthError'), { value: true });
    expect(foreign).toBeInstanceOf(MailboxAuthError);
    expect(foreign).toBeInstanceOf(StorageError);
    expect(foreign).not.toBeInstanceOf(CryptoError);
    expect(isMailboxAuthError(foreign, 'ERR_STORAGE')).toBe(true);
    const impostor = Object.assign(new Error('no brand'), { name: 'StorageError', code: 'ERR_STORAGE' });
    expect(impostor).not.toBeInstanceOf(MailboxAuthError);
    expect(impostor).not.toBeInstanceOf(StorageError);
    expect(null).not.toBeInstanceOf(MailboxAuthError);
  });

  it("a host's subclass without errorName keeps its own name and is not mistaken for its parent", () => {
    class AppTokenError extends ReauthorizationRequiredError {}
    const mine = new AppTokenError('app');
    expect(mine.name).toBe('AppTokenError');
    expect(mine).toBeInstanceOf(AppTokenError);
    expect(new ReauthorizationRequiredError('lib')).not.toBeInstanceOf(AppTokenError);
  });

  it('keeps its names and cross-copy instanceof when a host bundler minifies class names', async () => {
    // A minified bundle of src/errors.ts, as Next.js or esbuild --minify would make inside a host app.
    const { build } = await import('esbuild');
    const out = await build({
      entryPoints: ['src/errors.ts'],
      bundle: true,
      minify: true,
      format: 'esm',
      platform: 'node',
      write: false,
    });
    const dir = mkdtempSync(join(tmpdir(), 'om-minified-'));
    try {
      const file = join(dir, 'errors.mjs');
      writeFileSync(file, out.outputFiles[0]?.text ?? '');
      const minified = (await import(pathToFileURL(file).href)) as typeof import('../src/errors.js');
      expect(minified.InvalidStateError.name).not.toBe('InvalidStateError'); // the bundler did mangle it
      const bundled = new minified.InvalidStateError('bad state', { reason: 'expired' });
      expect(bundled.name).toBe('InvalidStateError');
      expect(String(bundled)).toBe('InvalidStateError: bad state');
      expect(bundled).toBeInstanceOf(InvalidStateError); // bundled error, this copy's class
      expect(bundled).not.toBeInstanceOf(StorageError);
      expect(new InvalidStateError('x', { reason: 'expired' })).toBeInstanceOf(minified.InvalidStateError);
      expect(new StorageError('x')).not.toBeInstanceOf(minified.InvalidStateError);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

// Compile-time (npm run typecheck): the class each row of the error table names carries that row's code.
// A row naming another class leaves its code in `Mismatched`, and the assignment below fails naming it.
type Mismatched = {
  [C in MailboxAuthErrorCode]: MailboxAuthErrorByCode[C]['code'] extends C ? never : C;
}[MailboxAuthErrorCode];
const everyRowNamesItsClass: [Mismatched] extends [never] ? true : Mismatched = true;
void everyRowNamesItsClass;
