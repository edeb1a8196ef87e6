/**
 * The default HTTP client of provider requests (token, discovery, revocation, userinfo): a `fetch`-shaped
 * function over `node:http` / `node:https` and their global (keep-alive) agents.
 *
 * Why not the global `fetch`: on Node 20 and 22 each undici `fetch` call builds WHATWG streams, a `Request`,
 * abort-signal plumbing and a `Response` pipeline. For small JSON exchanges this costs more CPU and memory
 * than the request itself: refreshing 10,000 tokens takes about 40% longer and peaks at twice the memory
 * (`npm run bench`, case 5). This client buffers the (small, size-capped) answer and hands back a
 * `Response` (a subclass) whose `text()` / `json()` read those bytes directly, without a stream.
 *
 * It behaves like `fetch` where the library depends on it: network failures reject with
 * `TypeError('fetch failed')` whose `cause` carries the errno `code`; an abort rejects with the signal's
 * reason; redirects are never followed (openid-client asks for `redirect: 'manual'`).
 *
 * Pass `fetch: globalThis.fetch` to a provider to go through undici instead (for a global dispatcher such
 * as a proxy agent), or any other `fetch`.
 * @module
 */
// Default imports, read at call time: interceptors (msw, nock, APM agents) patch `http.request` on the module
// object, which named ESM bindings would not see.
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';

/** Largest response body read, in bytes (token and discovery answers are a few kilobytes). */
const MAX_BODY_BYTES = 1_048_576;
/** Statuses whose response has no body. */
const NULL_BODY = new Set([101, 103, 204, 205, 304]);

function requestBody(body: unknown): string | Uint8Array | undefined {
  if (body === undefined || body === null) return undefined;
  if (typeof body === 'string') return body;
  if (body instanceof URLSearchParams) return body.toString();
  if (body instanceof Uint8Array) return body;
  if (body instanceof ArrayBuffer) return new Uint8Array(body);
  throw new TypeError('nodeFetch: the request body must be a string, URLSearchParams or bytes');
}

function requestHeaders(init: RequestInit | undefined, body: string | Uint8Array | undefined) {
  const headers: Record<string, string> = {};
  new Headers(init?.headers).forEach((value, name) => {
    headers[name] = value;
  });
  if (body !== undefined && headers['content-type'] === undefined && init?.body instanceof URLSearchParams)
    headers['content-type'] = 'application/x-www-form-urlencoded;charset=UTF-8';
  if (body !== undefined) headers['content-length'] = String(Buffer.byteLength(body));
  return headers;
}

/** As fetch: the standard methods are upper-cased, any other is sent as given. */
function normalizeMethod(method: string): string {
  const upper = method.toUpperCase();
  return STANDARD_METHODS.has(upper) ? upper : method;
}
const STANDARD_METHODS = new Set(['DELETE', 'GET', 'HEAD', 'OPTIONS', 'POST', 'PUT', 'PATCH']);

function responseHeaders(res: IncomingMessage): Headers {
  const headers = new Headers();
  const raw = res.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) headers.append(raw[i] as string, raw[i + 1] as string);
  return headers;
}

const utf8 = new TextDecoder(); // strips a BOM, as fetch's text() and json() do

/**
 * A `Response` whose body is already in memory: `text()`, `json()` and `arrayBuffer()` read the bytes
 * directly instead of through a WHATWG stream (undici's body machinery cost more than the request on the
 * refresh path). `body` still gives a stream, made on first access; `clone()` and `bodyUsed` behave as
 * fetch's do.
 */
// lib.dom types Response's methods as properties, which a subclass cannot override: extend it loosely typed.
const ResponseBase: new (
  body: null,
  init: ResponseInit,
) => { readonly headers: Headers; readonly status: number; readonly statusText: string } = Response;

class BufferedResponse extends ResponseBase {
  readonly #bytes: Uint8Array | null;
  #used = false;
  /** A plain `Response` over the bytes, made when `body` is first asked for: it then owns the body. */
  #inner: Response | undefined;

  constructor(bytes: Uint8Array | null, init: ResponseInit) {
    super(null, init);
    this.#bytes = bytes;
  }

  get body(): ReadableStream<Uint8Array> | null {
    if (this.#bytes === null) return null;
    this.#inner ??= new Response(this.#bytes, {
      headers: { 'content-type': this.headers.get('content-type') ?? '' },
    });
    return this.#inner.body;
  }

  get bodyUsed(): boolean {
    return this.#used || this.#inner?.bodyUsed === true;
  }

  /**
   * The bytes, once; after `body` was handed out, the `Response` that owns the stream. A null body reads as
   * empty, any number of times, and never counts as used (as fetch).
   */
  #take(): Uint8Array | Response {
    if (this.#bytes === null) return new Uint8Array(0);
    if (this.#inner !== undefined) return this.#inner;
    if (this.#used) throw new TypeError('Body is unusable: Body has already been read');
    this.#used = true;
    return this.#bytes;
  }

  async bytes(): Promise<Uint8Array> {
    return new Uint8Array(await this.arrayBuffer());
  }

  async formData(): Promise<FormData> {
    const taken = this.#take();
    const headers = { 'content-type': this.headers.get('content-type') ?? '' };
    return (taken instanceof Response ? taken : new Response(taken, { headers })).formData();
  }

  async text(): Promise<string> {
    const taken = this.#take();
    return taken instanceof Response ? taken.text() : utf8.decode(taken);
  }

  async json(): Promise<unknown> {
    const taken = this.#take();
    return taken instanceof Response ? taken.json() : JSON.parse(utf8.decode(taken));
  }

  async arrayBuffer(): Promise<ArrayBuffer> {
    const taken = this.#take();
    if (taken instanceof Response) return taken.arrayBuffer();
    return taken.buffer.slice(taken.byteOffset, taken.byteOffset + taken.byteLength) as ArrayBuffer;
  }

  async blob(): Promise<Blob> {
    const type = this.headers.get('content-type') ?? '';
    return new Blob([await this.arrayBuffer()], { type });
  }

  clone(): Response {
    if (this.bodyUsed) throw new TypeError('Response.clone: Body has already been consumed.');
    const init = { status: this.status, statusText: this.statusText, headers: this.headers };
    // After `body` was handed out the inner Response tees its stream, as fetch's clone does.
    if (this.#inner !== undefined) return new Response(this.#inner.clone().body, init);
    return new BufferedResponse(this.#bytes, init) as unknown as Response;
  }
}

function networkError(cause: unknown): TypeError {
  return new TypeError('fetch failed', { cause });
}

/**
 * A `fetch` for provider requests over `node:http(s)` with keep-alive. Accepts a URL string or `URL` and
 * `method`, `headers`, `body` (string, `URLSearchParams`, bytes), `signal`; never follows redirects.
 * @internal
 */
export const nodeFetch: typeof fetch = (input, init) =>
  new Promise<Response>((resolve, reject) => {
    if (input instanceof Request) {
      // Its method, headers and (streamed) body would have to be honoured; the library never passes one.
      return reject(new TypeError('nodeFetch takes a URL; pass method, headers and body in init'));
    }
    const url = new URL(String(input));
    const signal = init?.signal ?? undefined;
    if (signal?.aborted === true) return reject(signal.reason);
    const secure = url.protocol === 'https:';
    if (!secure && url.protocol !== 'http:') {
      const cause = Object.assign(new Error(`unsupported protocol ${url.protocol}`), {
        code: 'ERR_INVALID_PROTOCOL',
      });
      return reject(networkError(cause));
    }
    let body: string | Uint8Array | undefined;
    try {
      body = requestBody(init?.body);
    } catch (error) {
      return reject(error);
    }
    const req = (secure ? https.request : http.request)({
      protocol: url.protocol,
      hostname: url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname,
      port: url.port,
      path: `${url.pathname}${url.search}`,
      method: normalizeMethod(init?.method ?? 'GET'),
      headers: requestHeaders(init, body),
      // Node's global agents: keep-alive, idle sockets closed after 5 s or the server's Keep-Alive hint, and
      // whatever the host configured on them.
    });
    let settled = false;
    const onAbort = () => {
      if (settled) return;
      settled = true;
      req.destroy();
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    const fail = (error: unknown) => {
      signal?.removeEventListener('abort', onAbort);
      if (settled) return;
      settled = true;
      reject(networkError(error));
    };
    req.once('error', fail);
    req.once('response', (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_BODY_BYTES) {
          res.destroy();
          fail(Object.assign(new Error('response body too large'), { code: 'ERR_RESPONSE_TOO_LARGE' }));
          return;
        }
        chunks.push(chunk);
      });
      res.once('error', fail);
      res.once('end', () => {
        signal?.removeEventListener('abort', onAbort);
        if (settled) return;
        settled = true;
        const status = res.statusCode ?? 0;
        try {
          resolve(
            new BufferedResponse(NULL_BODY.has(status) ? null : Buffer.concat(chunks, size), {
              status,
              statusText: res.statusMessage ?? '',
              headers: responseHeaders(res),
            }) as unknown as Response,
          );
        } catch (error) {
          reject(networkError(error)); // a status Response refuses (outside 200-599)
        }
      });
    });
    req.end(body);
  });

/**
 * A `Response` over a JSON text already in memory, with the status and headers of `like` (for answers the
 * library rewrites before openid-client reads them).
 * @internal
 */
export function bufferedResponse(text: string, like: Response): Response {
  const init = { status: like.status, statusText: like.statusText, headers: like.headers };
  return new BufferedResponse(new TextEncoder().encode(text), init) as unknown as Response;
}
