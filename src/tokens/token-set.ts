import { inspect } from 'node:util';
import { InvalidArgumentError } from '../errors.js';
import { describeType } from '../internal/text.js';

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
  /**
   * When the access token was issued: a `Date` or epoch milliseconds. The refresh skew never exceeds half
   * the lifetime from here to `expiresAt`. `null`/omitted: the account's last token write.
   */
  readonly issuedAt?: Date | number | null | undefined;
  /** The token type. @default 'Bearer' */
  readonly tokenType?: string | undefined;
  /**
   * Access tokens for other resources obtained with the same refresh token (Microsoft issues one access
   * token per resource: `graph` for Microsoft Graph beside the IMAP/SMTP token), by resource name.
   * Omitted: none (`saveTokens` without a refresh token keeps the stored ones).
   */
  readonly resources?: Readonly<Record<string, ResourceTokenInput>> | undefined;
}

/**
 * An access token for one extra resource, as given to {@link TokenPersistence} inside
 * {@link TokenSetInput.resources}.
 *
 * @example
 * ```ts
 * const graph: ResourceTokenInput = { accessToken, expiresAt: Date.now() + 3_600_000, scopes: ['https://graph.microsoft.com/Mail.ReadWrite'] };
 * ```
 */
export interface ResourceTokenInput {
  /** The access token for this resource. */
  readonly accessToken: string;
  /** When it expires: a `Date` or epoch milliseconds; `null`/omitted when unknown. */
  readonly expiresAt?: Date | number | null | undefined;
  /** When it was issued: a `Date` or epoch milliseconds; `null`/omitted when unknown. */
  readonly issuedAt?: Date | number | null | undefined;
  /** The scopes it was granted, when the provider said. @default [] */
  readonly scopes?: readonly string[] | undefined;
  /** The token type. @default 'Bearer' */
  readonly tokenType?: string | undefined;
}

const REDACTED = '[redacted]';
/** A resource name: a short lowercase identifier such as `graph`. */
const RESOURCE_NAME = /^[a-z][a-z0-9-]{0,31}$/;

function expiryOf(exp: unknown, name: string): Date | null {
  if (exp === undefined || exp === null) return null;
  const ms = exp instanceof Date ? exp.getTime() : exp;
  if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0) {
    throw new InvalidArgumentError(`${name} must be a valid Date, epoch milliseconds, or null`);
  }
  return new Date(Math.floor(ms));
}

function tokenTypeOf(value: unknown, name: string): string {
  if (value !== undefined && (typeof value !== 'string' || value.length === 0)) {
    throw new InvalidArgumentError(`${name} must be a non-empty string`);
  }
  return (value as string | undefined) ?? 'Bearer';
}

/**
 * The access token of one extra resource of an account (see {@link TokenSet.resource}). Like
 * {@link TokenSet}, its secret is readable through a getter but never serialized.
 *
 * @example
 * ```ts
 * const graph = (await persistence.load(accountId)).tokens?.resource('graph');
 * console.log(graph?.expiresAt, graph?.scopes); // the token itself prints as [redacted]
 * ```
 */
export class ResourceToken {
  readonly #accessToken: string;
  /** When it expires, or `null` when unknown. */
  readonly expiresAt: Date | null;
  /** When it was issued, or `null` when unknown. */
  readonly issuedAt: Date | null;
  /** The scopes it was granted (empty when the provider did not say). */
  readonly scopes: readonly string[];
  /** The token type, usually `Bearer`. */
  readonly tokenType: string;

  constructor(input: ResourceTokenInput, name = 'resource') {
    if (typeof input !== 'object' || input === null) {
      throw new InvalidArgumentError(
        `tokens.resources.${name} must be an object (got ${describeType(input)})`,
      );
    }
    if (typeof input.accessToken !== 'string' || input.accessToken.length === 0) {
      throw new InvalidArgumentError(`tokens.resources.${name}.accessToken must be a non-empty string`);
    }
    const scopes = input.scopes ?? [];
    if (!Array.isArray(scopes) || !scopes.every((s) => typeof s === 'string' && s.length > 0)) {
      throw new InvalidArgumentError(`tokens.resources.${name}.scopes must be an array of non-empty strings`);
    }
    this.#accessToken = input.accessToken;
    this.expiresAt = expiryOf(input.expiresAt, `tokens.resources.${name}.expiresAt`);
    this.issuedAt = expiryOf(input.issuedAt, `tokens.resources.${name}.issuedAt`);
    this.scopes = Object.freeze([...scopes]);
    this.tokenType = tokenTypeOf(input.tokenType, `tokens.resources.${name}.tokenType`);
  }

  /** The access token. */
  get accessToken(): string {
    return this.#accessToken;
  }

  /** The plain values, for {@link TokenSetInput.resources}. @internal */
  toInput(): ResourceTokenInput {
    return {
      accessToken: this.#accessToken,
      expiresAt: this.expiresAt,
      issuedAt: this.issuedAt,
      scopes: this.scopes,
      tokenType: this.tokenType,
    };
  }

  /** A redacted view. */
  toJSON(): Record<string, unknown> {
    return {
      accessToken: REDACTED,
      expiresAt: this.expiresAt?.toISOString() ?? null,
      scopes: this.scopes,
      tokenType: this.tokenType,
    };
  }

  /** @internal */
  [inspect.custom](_depth: number, options: object): string {
    return `ResourceToken ${inspect(this.toJSON(), options)}`;
  }

  /** @internal */
  toString(): string {
    return '[ResourceToken]';
  }
}

function resourcesOf(input: unknown): ReadonlyMap<string, ResourceToken> {
  const map = new Map<string, ResourceToken>();
  if (input === undefined || input === null) return map;
  if (typeof input !== 'object' || Array.isArray(input)) {
    throw new InvalidArgumentError(`tokens.resources must be an object (got ${describeType(input)})`);
  }
  for (const [name, value] of Object.entries(input)) {
    if (!RESOURCE_NAME.test(name)) {
      throw new InvalidArgumentError(
        'tokens.resources keys must be resource names: a lowercase letter, then up to 31 of a-z, 0-9 or -',
      );
    }
    map.set(
      name,
      value instanceof ResourceToken ? value : new ResourceToken(value as ResourceTokenInput, name),
    );
  }
  return map;
}

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
  /** When the access token was issued, or `null` when unknown (tokens stored by earlier versions). */
  readonly issuedAt: Date | null;
  /** The token type, usually `Bearer`. */
  readonly tokenType: string;
  readonly #resources: ReadonlyMap<string, ResourceToken>;

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
    this.expiresAt = expiryOf(input.expiresAt, 'tokens.expiresAt');
    this.issuedAt = expiryOf(input.issuedAt, 'tokens.issuedAt');
    this.tokenType = tokenTypeOf(input.tokenType, 'tokens.tokenType');
    this.#resources = resourcesOf(input.resources);
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
   * The access token of an extra resource (such as `graph`), or `undefined` when none is stored.
   *
   * @example
   * ```ts
   * const graph = tokens.resource('graph');
   * if (graph === undefined || graph.expiresAt! < new Date()) await auth.getAccessToken(id, { resource: 'graph' });
   * ```
   */
  resource(name: string): ResourceToken | undefined {
    return this.#resources.get(name);
  }

  /** The names of the extra resources that have a stored access token. */
  resourceNames(): string[] {
    return [...this.#resources.keys()];
  }

  /** Every extra resource token as plain input values (for a copy with one replaced). @internal */
  resourceInputs(): Record<string, ResourceTokenInput> {
    return Object.fromEntries([...this.#resources].map(([name, token]) => [name, token.toInput()]));
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

  /**
   * A copy with some fields replaced, keeping the refresh token and the resource tokens when the change has
   * none. @internal
   */
  merge(next: TokenSetInput): TokenSet {
    return new TokenSet({
      accessToken: next.accessToken,
      refreshToken: next.refreshToken ?? this.#refreshToken,
      idToken: next.idToken ?? this.#idToken,
      expiresAt: next.expiresAt ?? null,
      issuedAt: next.issuedAt ?? null,
      tokenType: next.tokenType ?? this.tokenType,
      resources: next.resources ?? this.resourceInputs(),
    });
  }

  /**
   * The plain secret values, for encryption. Resource tokens go under `rs` (absent when there are none, so
   * records without resources keep the exact format older versions wrote and read). @internal
   */
  toSecretJSON(): string {
    const blob: Record<string, unknown> = {
      v: 1,
      at: this.#accessToken,
      rt: this.#refreshToken,
      it: this.#idToken,
      tt: this.tokenType,
    };
    if (this.issuedAt !== null) blob.ia = this.issuedAt.getTime();
    if (this.#resources.size > 0) {
      blob.rs = Object.fromEntries(
        [...this.#resources].map(([name, token]) => [
          name,
          {
            at: token.accessToken,
            exp: token.expiresAt?.getTime() ?? null,
            sc: token.scopes,
            tt: token.tokenType,
            ...(token.issuedAt === null ? {} : { ia: token.issuedAt.getTime() }),
          },
        ]),
      );
    }
    return JSON.stringify(blob);
  }

  /** Parse what {@link toSecretJSON} produced (with or without resource tokens). @internal */
  static fromSecretJSON(json: string, expiresAt: number | null): TokenSet {
    const data = JSON.parse(json) as {
      v?: unknown;
      at?: unknown;
      rt?: unknown;
      it?: unknown;
      tt?: unknown;
      rs?: unknown;
      ia?: unknown;
    };
    if (data.v !== 1 || typeof data.at !== 'string') throw new Error('unknown token blob format');
    let resources: Record<string, ResourceTokenInput> | undefined;
    if (data.rs !== undefined) {
      if (typeof data.rs !== 'object' || data.rs === null) throw new Error('unknown token blob format');
      resources = {};
      for (const [name, value] of Object.entries(data.rs as Record<string, unknown>)) {
        const r = value as { at?: unknown; exp?: unknown; sc?: unknown; tt?: unknown; ia?: unknown };
        resources[name] = {
          accessToken: r.at as string,
          expiresAt: r.exp as number | null,
          issuedAt: typeof r.ia === 'number' ? r.ia : null,
          scopes: r.sc as string[],
          tokenType: typeof r.tt === 'string' ? r.tt : undefined,
        };
      }
    }
    return new TokenSet({
      accessToken: data.at,
      refreshToken: data.rt as string | null,
      idToken: data.it as string | null,
      tokenType: typeof data.tt === 'string' ? data.tt : undefined,
      expiresAt,
      issuedAt: typeof data.ia === 'number' ? data.ia : null,
      resources,
    });
  }

  /** A redacted view: which tokens exist, never their values. */
  toJSON(): Record<string, unknown> {
    const out: Record<string, unknown> = {
      accessToken: REDACTED,
      refreshToken: this.#refreshToken === null ? null : REDACTED,
      idToken: this.#idToken === null ? null : REDACTED,
      expiresAt: this.expiresAt?.toISOString() ?? null,
      tokenType: this.tokenType,
    };
    if (this.#resources.size > 0) {
      out.resources = Object.fromEntries([...this.#resources].map(([name, token]) => [name, token.toJSON()]));
    }
    return out;
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
