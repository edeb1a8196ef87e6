/**
 * The HTTP layer of the mail API transports (Gmail API, Microsoft Graph): bearer tokens from the refresher,
 * one forced refresh on 401, `Retry-After` on 429 / 503 / 5xx with bounded retries and a longest wait,
 * `AbortSignal` around every attempt and wait, an injectable `fetch`, and typed errors without secrets.
 * @internal
 * @module
 */
import {
  InvalidArgumentError,
  MailAuthenticationError,
  MailboxAuthError,
  MailConnectionError,
  MailRequestError,
} from '../errors.js';
import { parseRetryAfter } from '../http/retry-after.js';
import { linkSignals } from '../internal/abort.js';
import { type BackoffOptions, backoffDelay } from '../internal/backoff.js';
import { integerOption } from '../internal/options.js';
import { delay } from '../internal/timers.js';
import type { AccessToken } from '../refresh/access-token.js';
import { apiSpanAttributes } from '../telemetry/attributes.js';
import { SPANS } from '../telemetry/names.js';
import { recordHttpStatus, telemetryOf } from '../telemetry/telemetry.js';
import type { MailTransport } from '../transport-names.js';
import type { MailContext } from './context.js';
import { echoableForms, scrubText } from './scrub.js';

/**
 * Options of the Gmail API and Microsoft Graph transports (`auth.mailbox(id, { api })`).
 *
 * @example
 * ```ts
 * auth.mailbox(accountId, { transport: 'graph', api: { pollIntervalMs: 10_000, retries: 5, fetch: myFetch } });
 * ```
 */
export interface MailApiOptions {
  /** The fetch used for every API request. @default globalThis.fetch (looked up at call time) */
  readonly fetch?: typeof fetch;
  /**
   * The API's origin and root, for a proxy or a test server.
   * @default 'https://gmail.googleapis.com' (Gmail) or 'https://graph.microsoft.com/v1.0' (Graph)
   */
  readonly baseUrl?: string;
  /** Timeout of each HTTP request, in milliseconds. @default 30000 */
  readonly timeoutMs?: number;
  /** Retries of a throttled or failed request (429, 5xx, network), after the first attempt. @default 3 */
  readonly retries?: number;
  /** First backoff when the API sent no `Retry-After`, in milliseconds (then doubling, with jitter). @default 1000 */
  readonly minRetryDelayMs?: number;
  /**
   * The longest wait before a retry, in milliseconds: a `Retry-After` beyond it fails at once with a
   * `MailConnectionError` carrying `retryAfterMs`, for the caller to schedule.
   * @default 60000
   */
  readonly maxRetryWaitMs?: number;
  /** Messages asked for per page when listing. @default 50 */
  readonly pageSize?: number;
  /** How often a watcher polls for new messages (Gmail `history.list`, Graph delta), in milliseconds. @default 30000 */
  readonly pollIntervalMs?: number;
}

/** A request to one of the APIs. */
export interface ApiRequest {
  /** What the request does, for error messages (`users.messages.list`, `sendMail`, ...): never an id. */
  readonly operation: string;
  readonly method?: 'GET' | 'POST' | 'PATCH';
  /** A path under the base URL, or an absolute URL the API returned (a next page or delta link). */
  readonly url: string;
  readonly query?: Readonly<Record<string, string | number | readonly string[] | undefined>>;
  /** A JSON body. */
  readonly json?: unknown;
  /** A raw body with its content type. */
  readonly body?: { readonly data: string | Uint8Array; readonly contentType: string };
  readonly headers?: Readonly<Record<string, string>>;
  /** What to read from a successful response. @default 'json' */
  readonly accept?: 'json' | 'bytes' | 'none';
  /**
   * Whether the request may be repeated when the API may have acted on it: after a network failure, a
   * truncated answer, or a 500 / 502 / 504. Throttling (429, 503, Gmail's 403 rate limits) is always retried:
   * the API did not act. @default true
   */
  readonly idempotent?: boolean;
  readonly signal?: AbortSignal | undefined;
}

/** A successful response. */
export interface ApiResponse<T> {
  readonly status: number;
  readonly data: T;
  readonly headers: Headers;
}

/** A safe summary of an API error body: its code, HTTP status and message, nothing else. */
class MailApiErrorCause extends Error {
  readonly code: string | undefined;
  readonly status: number;
  constructor(message: string, status: number, code: string | undefined) {
    super(message);
    this.name = 'MailApiError';
    this.status = status;
    this.code = code;
  }
}

/** The API's code and message from Gmail's `{ error: { code, message, status, errors: [{ reason }] } }` or Graph's `{ error: { code, message } }`. */
function readError(body: unknown): { apiCode: string | undefined; message: string } {
  const error = (body as { error?: unknown } | null)?.error;
  if (typeof error !== 'object' || error === null) return { apiCode: undefined, message: '' };
  const e = error as { code?: unknown; message?: unknown; status?: unknown; errors?: unknown };
  const reason = Array.isArray(e.errors)
    ? (e.errors[0] as { reason?: unknown } | undefined)?.reason
    : undefined;
  const apiCode =
    typeof reason === 'string'
      ? reason
      : typeof e.code === 'string'
        ? e.code
        : typeof e.status === 'string'
          ? e.status
          : undefined;
  return {
    apiCode: apiCode?.slice(0, 100),
    message: typeof e.message === 'string' ? e.message.slice(0, 300) : '',
  };
}

/** Gmail answers some throttling with 403 and one of these reasons. */
const THROTTLE_REASONS = new Set(['rateLimitExceeded', 'userRateLimitExceeded']);
const RETRY_STATUSES = new Set([429, 500, 502, 503, 504]);
/** Throttling answers that say the API did not act on the request: retried even for a send. */
const NOT_ACTED_STATUSES = new Set([429, 503]);

function positive(value: number | undefined, name: string, fallback: number, allowZero = false): number {
  const kind = allowZero ? 'non-negative' : 'positive';
  const refuse = () =>
    new InvalidArgumentError(`api.${name} must be a ${kind} integer (milliseconds or count)`);
  return integerOption(value, fallback, allowZero ? 0 : 1, Number.MAX_SAFE_INTEGER, refuse);
}

/** Validated {@link MailApiOptions}. */
export interface ResolvedApiOptions {
  readonly fetch: typeof fetch | undefined;
  readonly baseUrl: string;
  readonly timeoutMs: number;
  readonly retries: number;
  readonly minRetryDelayMs: number;
  readonly maxRetryWaitMs: number;
  readonly pageSize: number;
  readonly pollIntervalMs: number;
}

/** Check the options once, when the client is made. */
export function resolveApiOptions(options: MailApiOptions = {}, defaultBaseUrl: string): ResolvedApiOptions {
  if (options.fetch !== undefined && typeof options.fetch !== 'function') {
    throw new InvalidArgumentError('api.fetch must be a function');
  }
  const baseUrl = options.baseUrl ?? defaultBaseUrl;
  let parsed: URL;
  try {
    parsed = new URL(baseUrl);
  } catch (cause) {
    throw new InvalidArgumentError('api.baseUrl must be an absolute http(s) URL', { cause });
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') {
    throw new InvalidArgumentError('api.baseUrl must be an absolute http(s) URL');
  }
  const pageSize = positive(options.pageSize, 'pageSize', 50);
  if (pageSize > 500) throw new InvalidArgumentError('api.pageSize must be at most 500');
  return {
    fetch: options.fetch,
    baseUrl: baseUrl.replace(/\/+$/, ''),
    timeoutMs: positive(options.timeoutMs, 'timeoutMs', 30_000),
    retries: positive(options.retries, 'retries', 3, true),
    minRetryDelayMs: positive(options.minRetryDelayMs, 'minRetryDelayMs', 1000, true),
    maxRetryWaitMs: positive(options.maxRetryWaitMs, 'maxRetryWaitMs', 60_000, true),
    pageSize,
    pollIntervalMs: positive(options.pollIntervalMs, 'pollIntervalMs', 30_000),
  };
}

/**
 * Calls one mail API for one account. Every request carries a bearer token from the refresher (the
 * `resource`'s token when set); a 401 gets one forced refresh and one more attempt, a second 401 is a
 * `MailAuthenticationError`; 429 / 5xx are retried after `Retry-After` (or a jittered backoff) up to
 * `retries` times; other refusals are `MailRequestError`. The token is only ever put in the
 * `authorization` header.
 */
export class MailApiClient {
  readonly #context: MailContext;
  readonly #accountId: string;
  readonly #protocol: MailTransport;
  readonly #name: string;
  readonly #resource: string | undefined;
  readonly #options: ResolvedApiOptions;
  readonly #backoffOptions: BackoffOptions;
  readonly #onResult: (ok: boolean) => void;

  constructor(
    context: MailContext,
    accountId: string,
    protocol: MailTransport,
    options: ResolvedApiOptions,
    resource: string | undefined,
    onResult: (ok: boolean) => void = () => {},
  ) {
    this.#context = context;
    this.#accountId = accountId;
    this.#protocol = protocol;
    this.#name =
      protocol === 'graph' ? 'Microsoft Graph' : protocol === 'gmail-api' ? 'The Gmail API' : protocol;
    this.#options = options;
    this.#backoffOptions = { minDelayMs: options.minRetryDelayMs, maxDelayMs: options.maxRetryWaitMs };
    this.#resource = resource;
    this.#onResult = onResult;
  }

  get options(): ResolvedApiOptions {
    return this.#options;
  }

  /** A token for this API (the resource's when set). */
  token(options: { readonly rejected?: AccessToken; readonly signal?: AbortSignal | undefined } = {}) {
    return this.#context.refresher.getAccessToken(this.#accountId, {
      ...(this.#resource === undefined ? {} : { resource: this.#resource }),
      ...(options.rejected === undefined ? {} : { rejected: options.rejected }),
      ...(options.signal === undefined ? {} : { signal: options.signal }),
    });
  }

  /** Perform a request with refresh-on-401 and bounded retries. */
  async request<T = unknown>(request: ApiRequest): Promise<ApiResponse<T>> {
    if (request.signal === undefined) return this.#request(request);
    // A per-request child of the caller's (often long-lived: a watcher's) signal, unlinked when the request
    // ends: the per-attempt `AbortSignal.any` below then derives from a signal that dies with the request.
    const link = linkSignals([request.signal]);
    try {
      return await this.#request<T>({ ...request, signal: link.signal });
    } finally {
      link.dispose();
    }
  }

  async #request<T>(request: ApiRequest): Promise<ApiResponse<T>> {
    const { signal } = request;
    signal?.throwIfAborted();
    const url = this.#url(request);
    let token: AccessToken = await this.token({ signal });
    let refreshed = false;
    let retries = 0;
    for (;;) {
      signal?.throwIfAborted();
      let response: Response;
      try {
        response = await this.#send(url, request, token);
      } catch (err) {
        if (signal?.aborted) throw signal.reason;
        this.#onResult(false);
        const failure = new MailConnectionError(
          `${this.#name} could not be reached (${request.operation})`,
          this.#errorOptions(undefined, undefined, err),
        );
        if (request.idempotent === false || retries >= this.#options.retries) throw failure;
        await delay(backoffDelay(retries, this.#backoffOptions), signal);
        retries++;
        continue;
      }
      if (response.ok) {
        let data: T;
        try {
          data = await this.#read<T>(response, request);
        } catch (failure) {
          // A truncated or malformed answer: the API acted, but what it said is lost; ask again if that is safe.
          if (!(failure instanceof MailConnectionError)) throw failure;
          this.#onResult(false);
          if (request.idempotent === false || retries >= this.#options.retries) throw failure;
          await delay(backoffDelay(retries, this.#backoffOptions), signal);
          retries++;
          continue;
        }
        this.#onResult(true);
        return { status: response.status, data, headers: response.headers };
      }
      const body: unknown = await response.json().catch(() => undefined);
      if (signal?.aborted) throw signal.reason;
      const error = readError(body);
      // An API (or a proxy before it) that quotes the request's Authorization header must not put the token
      // into our error's text.
      const echoable = echoableForms(token.accessToken);
      const apiCode = error.apiCode === undefined ? undefined : scrubText(error.apiCode, echoable);
      const text = scrubText(error.message || response.statusText, echoable);
      const cause = new MailApiErrorCause(text, response.status, apiCode);
      const status = response.status;
      if (status === 401) {
        if (!refreshed) {
          // The token may have expired early or been revoked: one forced refresh, then try again.
          refreshed = true;
          token = await this.token({ rejected: token, signal });
          continue;
        }
        throw await this.#refused(
          `${this.#name} refused the OAuth token of this account even after a refresh (${request.operation}, HTTP 401${apiCode ? ` ${apiCode}` : ''})`,
          status,
          apiCode,
          cause,
        );
      }
      const throttled = RETRY_STATUSES.has(status) || (status === 403 && THROTTLE_REASONS.has(apiCode ?? ''));
      if (throttled) {
        this.#onResult(false);
        const retryAfterMs = parseRetryAfter(response.headers.get('retry-after'));
        telemetryOf(this.#context.refresher).apiThrottled(this.#protocol, status, retryAfterMs);
        const waitMs = retryAfterMs ?? backoffDelay(retries, this.#backoffOptions);
        const failure = new MailConnectionError(
          `${this.#name} is throttling or unavailable (${request.operation}, HTTP ${status}${apiCode ? ` ${apiCode}` : ''})`,
          {
            ...this.#errorOptions(status, apiCode, cause),
            ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
          },
        );
        const acted = !NOT_ACTED_STATUSES.has(status) && status !== 403; // 403 here: a Gmail rate limit
        if (request.idempotent === false && acted) {
          throw new MailConnectionError(
            `${this.#name} failed (${request.operation}, HTTP ${status}${apiCode ? ` ${apiCode}` : ''}); it may have acted on the request, so it was not repeated`,
            this.#errorOptions(status, apiCode, cause),
          );
        }
        if (retries >= this.#options.retries || waitMs > this.#options.maxRetryWaitMs) throw failure;
        await delay(waitMs, signal);
        retries++;
        continue;
      }
      if (status === 403) {
        throw await this.#refused(
          `${this.#name} refused the request for lack of permission (${request.operation}, HTTP 403${apiCode ? ` ${apiCode}` : ''}): the consent may lack a scope, or API access is disabled for this mailbox`,
          status,
          apiCode,
          cause,
        );
      }
      this.#onResult(true); // the API answered: the mailbox is reachable, the request was wrong
      throw new MailRequestError(
        `${this.#name} refused the request (${request.operation}, HTTP ${status}${apiCode ? ` ${apiCode}` : ''})`,
        this.#errorOptions(status, apiCode, cause),
      );
    }
  }

  async #send(url: URL, request: ApiRequest, token: AccessToken): Promise<Response> {
    const timeout = AbortSignal.timeout(this.#options.timeoutMs);
    const signal = request.signal === undefined ? timeout : AbortSignal.any([request.signal, timeout]);
    const headers: Record<string, string> = {
      accept: request.accept === 'bytes' ? '*/*' : 'application/json',
      ...request.headers,
      authorization: `Bearer ${token.accessToken}`,
    };
    let body: string | Uint8Array<ArrayBuffer> | undefined;
    if (request.json !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(request.json);
    } else if (request.body !== undefined) {
      headers['content-type'] = request.body.contentType;
      body = request.body.data as string | Uint8Array<ArrayBuffer>;
    }
    const fetchFn = this.#options.fetch ?? globalThis.fetch;
    const method = request.method ?? 'GET';
    const telemetry = telemetryOf(this.#context.refresher);
    const attributes = apiSpanAttributes(this.#accountId, this.#protocol, method, request.operation);
    return telemetry.span(SPANS.apiCall, attributes, async (span) => {
      const started = performance.now();
      let status: number | undefined;
      try {
        const response = await fetchFn(url, {
          method,
          headers,
          ...(body === undefined ? {} : { body }),
          signal,
        });
        status = response.status;
        recordHttpStatus(span, status);
        return response;
      } finally {
        telemetry.apiCall(this.#protocol, method, status, (performance.now() - started) / 1000);
      }
    });
  }

  async #read<T>(response: Response, request: ApiRequest): Promise<T> {
    const accept = request.accept ?? 'json';
    try {
      if (accept === 'none') {
        await response.arrayBuffer(); // drain it: the connection is reused
        return undefined as T;
      }
      if (accept === 'bytes') return Buffer.from(await response.arrayBuffer()) as T;
      return (await response.json()) as T;
    } catch (err) {
      if (request.signal?.aborted) throw request.signal.reason;
      throw new MailConnectionError(
        `${this.#name} returned a malformed or truncated response (${request.operation})`,
        this.#errorOptions(response.status, undefined, err),
      );
    }
  }

  /** A refused token (401 after a refresh, or 403): typed, and recorded on the account as IMAP does. */
  async #refused(
    message: string,
    status: number,
    apiCode: string | undefined,
    cause: Error,
  ): Promise<MailAuthenticationError> {
    this.#onResult(true);
    const failure = new MailAuthenticationError(message, this.#errorOptions(status, apiCode, cause));
    await this.#context.persistence
      .recordFailure(this.#accountId, { code: failure.code, message: failure.message }, { status: 'error' })
      .catch(() => {});
    return failure;
  }

  #errorOptions(status: number | undefined, apiCode: string | undefined, cause: unknown) {
    return {
      accountId: this.#accountId,
      protocol: this.#protocol,
      ...(status === undefined ? {} : { status }),
      ...(apiCode === undefined ? {} : { apiCode }),
      cause:
        cause instanceof MailboxAuthError || cause instanceof MailApiErrorCause ? cause : summarize(cause),
    };
  }

  #url(request: ApiRequest): URL {
    const base = new URL(this.#options.baseUrl);
    const url = /^https?:\/\//.test(request.url)
      ? new URL(request.url)
      : new URL(`${this.#options.baseUrl}/${request.url.replace(/^\/+/, '')}`);
    if (url.origin !== base.origin) {
      // A next link, delta link or cursor pointing elsewhere must not receive the account's token.
      throw new MailRequestError(
        `${this.#name}: a link to another origin (${url.origin}) was refused; the token is only sent to ${base.origin}`,
        { accountId: this.#accountId, protocol: this.#protocol },
      );
    }
    for (const [key, value] of Object.entries(request.query ?? {})) {
      if (value === undefined) continue;
      if (Array.isArray(value)) for (const v of value) url.searchParams.append(key, String(v));
      else url.searchParams.set(key, String(value));
    }
    return url;
  }
}

/** A network error's name, code and message (fetch failures keep the errno on `cause.code`), nothing else. */
function summarize(err: unknown): Error {
  const e = err instanceof Error ? err : new Error(String(err));
  const inner = (e as { cause?: { code?: unknown } }).cause;
  const own = (e as { code?: unknown }).code;
  const code = typeof own === 'string' ? own : inner?.code;
  const out = new Error(e.message);
  out.name = e.name;
  if (typeof code === 'string') (out as Error & { code?: string }).code = code;
  return out;
}
