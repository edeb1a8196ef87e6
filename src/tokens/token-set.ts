import { inspect } from 'node:util';
import { describeType } from '../crypto/keys.js';
import { InvalidArgumentError } from '../errors.js';

/**
 * Tokens as given to {@link TokenPersistence}.
 *
 * @example
 * ```ts
 * await persistence.saveTokens(accountId, { accessToken, refreshToken: null, expiresAt: Date.now() + 3_600_000 });
 * ```
 */
export interface TokenSetInput {
  /** The access token. */
  readonly accessToken: string;
  /** The refresh token. Omit or `null` to keep the stored one (providers often send none on refresh). */
  readonly refreshToken?: string | null | undefined;
  /** The OpenID Connect id_token, when there is one. */
  readonly idToken?: string | null | undefined;
  /** When the access token expires: a `Date` or epoch milliseconds. `null`/omitted when unknown. */
  readonly expiresAt?: Date | number | null | undefined;
  /** The token type. @default 'Bearer' */
  readonly tokenType?: string | undefined;
}

const REDACTED = '[redacted]';

function optionalToken(value: unknown, name: string): string | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'string' || value.length === 0) {
    throw new InvalidArgumentError(`${name} must be a non-empty string or null (got ${describeType(value)})`);
  }
  return value;
}

/**
 * A set of OAuth tokens whose secret values are readable through getters but never serialized:
 * `JSON.stringify`, `util.inspect`, `console.log`, object spread and `Object.keys` show no token.
 *
 * @example
 * ```ts
 * const { tokens } = await persistence.load(accountId);
 * imap.login(tokens.accessToken);         // the value is there when asked for
 * console.log(tokens);                     // TokenSet { accessToken: '[redacted]', … }
 * ```
 */
export class TokenSet {
  readonly #accessToken: string;
  readonly #refreshToken: string | null;
  readonly #idToken: string | null;
  /** When the access token expires, or `null` when unknown. */
  readonly expiresAt: Date | null;
  /** The token type, usually `Bearer`. */
  readonly tokenType: string;

  constructor(input: TokenSetInput) {
    if (typeof input !== 'object' || input === null) {
      throw new InvalidArgumentError(`tokens must be an object (got ${describeType(input)})`);
    }
    if (typeof input.accessToken !== 'string' || input.accessToken.length === 0) {
      throw new InvalidArgumentError('tokens.accessToken must be a non-empty string');
    }
    this.#accessToken = input.accessToken;
    this.#refreshToken = optionalToken(input.refreshToken, 'tokens.refreshToken');
    this.#idToken = optionalToken(input.idToken, 'tokens.idToken');
    const exp = input.expiresAt;
    if (exp === undefined || exp === null) {
      this.expiresAt = null;
    } else {
      const ms = exp instanceof Date ? exp.getTime() : exp;
      if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0) {
        throw new InvalidArgumentError('tokens.expiresAt must be a valid Date, epoch milliseconds, or null');
      }
      this.expiresAt = new Date(Math.floor(ms));
    }
    if (
      input.tokenType !== undefined &&
      (typeof input.tokenType !== 'string' || input.tokenType.length === 0)
    ) {
      throw new InvalidArgumentError('tokens.tokenType must be a non-empty string');
    }
    this.tokenType = input.tokenType ?? 'Bearer';
  }

  /** The access token. */
  get accessToken(): string {
    return this.#accessToken;
  }

  /** The refresh token, or `null` when none is stored. */
  get refreshToken(): string | null {
    return this.#refreshToken;
  }

  /** The id_token, or `null`. */
  get idToken(): string | null {
    return this.#idToken;
  }

  /**
   * Whether the access token expires within `withinMs` of `now` (an unknown expiry counts as not expired).
   *
   * @example
   * ```ts
   * if (tokens.isExpired(5 * 60_000)) await refresh();
   * ```
   */
  isExpired(withinMs = 0, now: number = Date.now()): boolean {
    return this.expiresAt !== null && this.expiresAt.getTime() - withinMs <= now;
  }

  /** A copy with some fields replaced, keeping the refresh token when the change has none. @internal */
  merge(next: TokenSetInput): TokenSet {
    return new TokenSet({
      accessToken: next.accessToken,
      refreshToken: next.refreshToken ?? this.#refreshToken,
      idToken: next.idToken ?? this.#idToken,
      expiresAt: next.expiresAt ?? null,
      tokenType: next.tokenType ?? this.tokenType,
    });
  }

  /** The plain secret values, for encryption. @internal */
  toSecretJSON(): string {
    return JSON.stringify({
      v: 1,
      at: this.#accessToken,
      rt: this.#refreshToken,
      it: this.#idToken,
      tt: this.tokenType,
    });
  }

  /** Parse what {@link toSecretJSON} produced. @internal */
  static fromSecretJSON(json: string, expiresAt: number | null): TokenSet {
    const data = JSON.parse(json) as { v?: unknown; at?: unknown; rt?: unknown; it?: unknown; tt?: unknown };
    if (data.v !== 1 || typeof data.at !== 'string') throw new Error('unknown token blob format');
    return new TokenSet({
      accessToken: data.at,
      refreshToken: data.rt as string | null,
      idToken: data.it as string | null,
      tokenType: typeof data.tt === 'string' ? data.tt : undefined,
      expiresAt,
    });
  }

  /** A redacted view: which tokens exist, never their values. */
  toJSON(): Record<string, unknown> {
    return {
      accessToken: REDACTED,
      refreshToken: this.#refreshToken === null ? null : REDACTED,
      idToken: this.#idToken === null ? null : REDACTED,
      expiresAt: this.expiresAt?.toISOString() ?? null,
      tokenType: this.tokenType,
    };
  }

  /** @internal */
  [inspect.custom](_depth: number, options: object): string {
    return `TokenSet ${inspect(this.toJSON(), options)}`;
  }

  /** @internal */
  toString(): string {
    return '[TokenSet]';
  }
}
