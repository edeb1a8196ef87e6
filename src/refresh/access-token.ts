/**
 * The access token the refresher hands out: readable, never serialized.
 * @module
 */

import { inspect } from 'node:util';

/**
 * A usable access token. `accessToken` is readable but never serialized: `JSON.stringify` and
 * `util.inspect` show `[redacted]`.
 *
 * @example
 * ```ts
 * const token: AccessToken = await auth.getAccessToken(accountId);
 * fetch(url, { headers: { authorization: `Bearer ${token.accessToken}` } });
 * ```
 */
export class AccessToken {
  readonly #token: string;
  /** The account the token is for. */
  readonly accountId: string;
  /** The account's provider id. */
  readonly provider: string;
  /** The mailbox address (the SASL user for IMAP and SMTP). */
  readonly email: string;
  /** When it expires, or `null` when the provider did not say. */
  readonly expiresAt: Date | null;
  /** The extra resource this token is for (such as `graph`), or `undefined` for the primary token. */
  readonly resource: string | undefined;

  /** @internal */
  constructor(
    token: string,
    account: { id: string; provider: string; email: string },
    expiresAtMs: number | null,
    resource?: string,
  ) {
    this.#token = token;
    this.accountId = account.id;
    this.provider = account.provider;
    this.email = account.email;
    this.expiresAt = expiresAtMs === null ? null : new Date(expiresAtMs);
    this.resource = resource;
  }

  /** The bearer token. */
  get accessToken(): string {
    return this.#token;
  }

  /** A redacted view: the token shows as `[redacted]`. */
  toJSON(): Record<string, unknown> {
    return {
      accountId: this.accountId,
      provider: this.provider,
      email: this.email,
      ...(this.resource === undefined ? {} : { resource: this.resource }),
      expiresAt: this.expiresAt?.toISOString() ?? null,
      accessToken: '[redacted]',
    };
  }

  /** @internal */
  [inspect.custom](_depth: number, options: object): string {
    return `AccessToken ${inspect(this.toJSON(), options)}`;
  }
}
