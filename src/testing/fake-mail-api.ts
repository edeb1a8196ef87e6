/**
 * What the emulated mail APIs (`fakeGmailApi`, `fakeGraph`) share: bearer token checks, faults on demand,
 * request counters.
 * @module
 */
import { randomUUID } from 'node:crypto';
import { HttpResponse } from 'msw';
import { answerFault, type HttpFault } from './faults.js';

/**
 * A fault the next API request answers with: an {@link HttpFault}, or a 401 as for an expired token.
 *
 * @example
 * ```ts
 * gmail.failNext({ status: 503, headers: { 'retry-after': '1' } }, 'network', { delayMs: 2_000 }, 'expired-token');
 * ```
 */
export type MailApiFault = HttpFault | 'expired-token';

/**
 * Where the emulated APIs check bearer tokens: a fake OAuth provider (`fakeGoogle()`, `fakeMicrosoft()`).
 *
 * @example
 * ```ts
 * const google = fakeGoogle({ clientId: 'c' });
 * const gmail = fakeGmailApi({ tokens: google }); // only tokens google issued (and not revoked) are accepted
 * ```
 */
export interface AccessTokenIssuer {
  /** Who a live access token belongs to and its scopes; `undefined` for an unknown or revoked one. */
  accessTokenInfo(token: string):
    | {
        /** The address of the user the token was issued to. */
        readonly email: string;
        /** The token's scopes. */
        readonly scopes: readonly string[];
      }
    | undefined;
}

/**
 * Options of {@link fakeGmailApi} and {@link fakeGraph}.
 *
 * @example
 * ```ts
 * fakeGraph({ tokens: fakeMicrosoft({ clientId: 'c' }), email: 'grace@contoso.com' });
 * ```
 */
export interface FakeMailApiOptions {
  /**
   * Accept only access tokens this issuer knows (and, for Graph, only Graph tokens; for Gmail, only tokens with
   * a Gmail scope). Omitted: any bearer token is accepted until `expireAccessTokens()`.
   */
  readonly tokens?: AccessTokenIssuer;
  /** The mailbox's address. @default 'user@example.com' */
  readonly email?: string;
}

/**
 * Counters of what an emulated API saw.
 *
 * @example
 * ```ts
 * expect(gmail.stats.operations['users.messages.list']).toBe(3); // three pages
 * ```
 */
export interface FakeMailApiStats {
  /** Every request, faults included. */
  requests: number;
  /** Requests answered 401. */
  unauthorized: number;
  /** Requests answered with a fault from `failNext`. */
  faults: number;
  /** Requests by operation (`users.messages.list`, `sendMail`, ...). */
  operations: Record<string, number>;
}

/** The parts of an emulated API that do not depend on which API it is. @internal */
export abstract class FakeMailApiBase {
  /** What the emulated API saw. */
  readonly stats: FakeMailApiStats = { requests: 0, unauthorized: 0, faults: 0, operations: {} };
  /** The mailbox's address. */
  readonly email: string;
  readonly #tokens: AccessTokenIssuer | undefined;
  readonly #faults: MailApiFault[] = [];
  readonly #seen = new Set<string>();
  readonly #expired = new Set<string>();

  constructor(options: FakeMailApiOptions = {}) {
    this.#tokens = options.tokens;
    this.email = options.email ?? 'user@example.com';
  }

  /** Make the next requests fail, in order. */
  failNext(...faults: MailApiFault[]): this {
    this.#faults.push(...faults);
    return this;
  }

  /** Refuse every access token seen so far with 401, as if they had all expired at once. */
  expireAccessTokens(): this {
    for (const token of this.#seen) this.#expired.add(token);
    return this;
  }

  /**
   * Answer the next `count` requests as the API answers when it throttles: 429 (Gmail's `rateLimitExceeded`,
   * Graph's `ApplicationThrottled`) or 503, with `Retry-After` when `retryAfterS` is given.
   */
  throttleNext(
    count = 1,
    options: { readonly retryAfterS?: number; readonly status?: 429 | 503 } = {},
  ): this {
    const status = options.status ?? 429;
    const body = this.throttled(status);
    const headers: Record<string, string> =
      options.retryAfterS === undefined ? {} : { 'retry-after': String(options.retryAfterS) };
    for (let i = 0; i < count; i++) this.failNext({ status, body, headers });
    return this;
  }

  /** The API's body for a throttled (429) or unavailable (503) answer. */
  protected abstract throttled(status: 429 | 503): Record<string, unknown>;

  /** A 401 in the API's own shape. */
  protected abstract unauthorized(reason: 'expired' | 'audience' | 'missing'): Response;

  /** A 403 for a token without the scope the operation needs. */
  protected abstract forbidden(): Response;

  /** Whether a token's scopes allow the operation. */
  protected abstract allowed(scopes: readonly string[], operation: string): boolean;

  /**
   * Count the request, apply a pending fault, and check the bearer token: a `Response` to answer with, or
   * `undefined` to go on.
   */
  protected async gate(request: Request, operation: string): Promise<Response | undefined> {
    this.stats.requests++;
    this.stats.operations[operation] = (this.stats.operations[operation] ?? 0) + 1;
    const fault = this.#faults.shift();
    if (fault !== undefined) {
      this.stats.faults++;
      if (fault === 'expired-token') {
        this.stats.unauthorized++;
        return this.unauthorized('expired');
      }
      const answer = await answerFault(fault, 'text/plain', { date: new Date().toUTCString() });
      if (answer !== undefined) return answer;
    }
    const header = request.headers.get('authorization') ?? '';
    const token = /^Bearer (\S+)$/i.exec(header)?.[1];
    if (token === undefined) {
      this.stats.unauthorized++;
      return this.unauthorized('missing');
    }
    this.#seen.add(token);
    if (this.#expired.has(token)) {
      this.stats.unauthorized++;
      return this.unauthorized('expired');
    }
    if (this.#tokens !== undefined) {
      const info = this.#tokens.accessTokenInfo(token);
      if (info === undefined) {
        this.stats.unauthorized++;
        return this.unauthorized('expired');
      }
      if (!this.allowed(info.scopes, operation)) {
        const audience = this.audienceMismatch(info.scopes);
        if (audience) this.stats.unauthorized++;
        return audience ? this.unauthorized('audience') : this.forbidden();
      }
    }
    return undefined;
  }

  /** Whether the token is for another resource altogether (Graph answers 401, not 403). */
  protected audienceMismatch(_scopes: readonly string[]): boolean {
    return false;
  }

  /** A JSON answer with the headers every answer of the API carries. @internal */
  protected json(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
    return HttpResponse.json(body as Record<string, unknown>, {
      status,
      headers: { date: new Date().toUTCString(), 'request-id': randomUUID(), ...headers },
    });
  }
}

/** A message in RFC 822 form from simple fields (CRLF line ends). @internal */
export function buildRaw(fields: {
  readonly from: string;
  readonly to: string;
  readonly subject: string;
  readonly text: string;
  readonly date: Date;
  readonly messageId: string;
}): Buffer {
  return Buffer.from(
    [
      `From: ${fields.from}`,
      `To: ${fields.to}`,
      `Subject: ${fields.subject}`,
      `Date: ${fields.date.toUTCString()}`,
      `Message-ID: ${fields.messageId}`,
      'MIME-Version: 1.0',
      'Content-Type: text/plain; charset=utf-8',
      '',
      fields.text,
      '',
    ].join('\r\n'),
  );
}
