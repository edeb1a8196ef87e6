import { AuthorizationResponseError, InvalidArgumentError } from '../errors.js';

/**
 * What a callback route can pass: the request, its URL (object or string), or its query parameters.
 *
 * @example
 * ```ts
 * await auth.completeAuthorization('google', new URL(req.url, origin), { owner }); // or a string, URLSearchParams, a Request
 * ```
 */
export type CallbackInput = URL | string | URLSearchParams | Request;

/**
 * Largest accepted value of one callback parameter, in characters.
 *
 * @example
 * ```ts
 * if (code.length > MAX_PARAMETER_LENGTH) return res.status(400).end(); // the library refuses it too
 * ```
 */
export const MAX_PARAMETER_LENGTH = 4096;
/**
 * Largest accepted callback query, in characters; for a `form_post` body, in bytes (read no further).
 *
 * @example
 * ```ts
 * if (req.url.length > MAX_QUERY_LENGTH) return res.status(414).end();
 * ```
 */
export const MAX_QUERY_LENGTH = 16_384;

/**
 * The text of a `form_post` body, read at most {@link MAX_QUERY_LENGTH} bytes deep: a `content-length` over
 * the bound is refused before any read, and a body without one (chunked) is read chunk by chunk and cancelled
 * as soon as more than the bound has arrived. Decoded as `Request.text()` does (UTF-8, a character split
 * across chunks kept whole, a BOM dropped).
 */
async function readBoundedBody(request: Request): Promise<string> {
  const declared = request.headers.get('content-length');
  if (declared !== null && Number(declared) > MAX_QUERY_LENGTH) throw tooLarge();
  if (request.bodyUsed) {
    throw new InvalidArgumentError('The callback Request body was already read');
  }
  const body = request.body;
  if (body === null) return '';
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let size = 0;
  let text = '';
  for (;;) {
    let chunk: Awaited<ReturnType<typeof reader.read>>;
    try {
      chunk = await reader.read();
    } catch (cause) {
      throw new AuthorizationResponseError('The authorization response body could not be read', { cause });
    }
    if (chunk.done) return text + decoder.decode();
    if (!(chunk.value instanceof Uint8Array)) {
      reader.cancel().catch(() => {});
      throw new AuthorizationResponseError('The authorization response body is not a byte stream');
    }
    size += chunk.value.byteLength;
    if (size > MAX_QUERY_LENGTH) {
      // Not awaited: a source slow to cancel must not hold the refusal; its failure is of no interest.
      reader.cancel().catch(() => {});
      throw tooLarge();
    }
    text += decoder.decode(chunk.value, { stream: true });
  }
}

function tooLarge(): AuthorizationResponseError {
  return new AuthorizationResponseError('The authorization response is too large');
}

/**
 * Read the authorization response parameters of a callback. `form_post` responses (a POST with an
 * `application/x-www-form-urlencoded` body) are read from the body.
 * @internal
 */
export async function readCallbackParameters(callback: CallbackInput): Promise<URLSearchParams> {
  let params: URLSearchParams;
  if (callback instanceof URLSearchParams) {
    params = new URLSearchParams(callback);
  } else if (callback instanceof URL) {
    params = new URLSearchParams(callback.search);
  } else if (typeof callback === 'string') {
    let url: URL;
    try {
      url = new URL(callback);
    } catch (cause) {
      throw new InvalidArgumentError(
        'callback must be an absolute URL, a URL object, URLSearchParams or a Request',
        {
          cause,
        },
      );
    }
    params = new URLSearchParams(url.search);
  } else if (typeof Request !== 'undefined' && callback instanceof Request) {
    const type = callback.headers.get('content-type') ?? '';
    if (callback.method === 'POST' && type.includes('application/x-www-form-urlencoded')) {
      params = new URLSearchParams(await readBoundedBody(callback));
    } else {
      params = new URLSearchParams(new URL(callback.url).search);
    }
  } else {
    throw new InvalidArgumentError(
      'callback must be an absolute URL, a URL object, URLSearchParams or a Request',
    );
  }
  if (params.toString().length > MAX_QUERY_LENGTH) throw tooLarge();
  const seen = new Set<string>();
  for (const [name, value] of params) {
    if (value.length > MAX_PARAMETER_LENGTH || name.length > 256) {
      throw new AuthorizationResponseError(
        `The authorization response parameter "${name.slice(0, 64)}" is too large`,
      );
    }
    if (seen.has(name)) {
      throw new AuthorizationResponseError(
        `The authorization response repeats the parameter "${name.slice(0, 64)}"`,
      );
    }
    seen.add(name);
  }
  return params;
}
