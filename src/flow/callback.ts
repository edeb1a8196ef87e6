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
 * Largest accepted callback query, in characters.
 *
 * @example
 * ```ts
 * if (req.url.length > MAX_QUERY_LENGTH) return res.status(414).end();
 * ```
 */
export const MAX_QUERY_LENGTH = 16_384;

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
      const body = await callback.text();
      if (body.length > MAX_QUERY_LENGTH) {
        throw new AuthorizationResponseError('The authorization response is too large');
      }
      params = new URLSearchParams(body);
    } else {
      params = new URLSearchParams(new URL(callback.url).search);
    }
  } else {
    throw new InvalidArgumentError(
      'callback must be an absolute URL, a URL object, URLSearchParams or a Request',
    );
  }
  if (params.toString().length > MAX_QUERY_LENGTH) {
    throw new AuthorizationResponseError('The authorization response is too large');
  }
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
