/**
 * The faults every emulated endpoint (the OAuth providers' token endpoint, the Gmail API, Graph) can answer
 * its next request with, and how they are answered: one queue, one meaning of each fault.
 * @module
 */
import { HttpResponse } from 'msw';

/**
 * A fault an emulated endpoint answers its next request with: an HTTP answer (status, body, headers), a
 * dropped connection (`'network'`), or a delay before the normal answer (for timeouts and aborts).
 *
 * @example
 * ```ts
 * google.failNext({ status: 503, headers: { 'retry-after': '5' } }, 'network', { delayMs: 2_000 });
 * ```
 */
export type HttpFault =
  | {
      /** Answer with this HTTP status. */
      readonly status: number;
      /** The body: JSON (an object) or text (a string). @default {} */
      readonly body?: string | Record<string, unknown>;
      /** Response headers, such as `retry-after`. */
      readonly headers?: Record<string, string>;
    }
  /** A network error (the request fails without a response). */
  | 'network'
  | {
      /** Wait this long, in milliseconds, then answer normally. */
      readonly delayMs: number;
    };

/**
 * The answer to an {@link HttpFault}: a `Response`, or `undefined` (after the delay of a `delayMs` fault)
 * for the endpoint to answer normally. A text body is sent as `textType`.
 * @internal
 */
export async function answerFault(
  fault: HttpFault,
  textType: string,
  headers: Record<string, string> = {},
): Promise<Response | undefined> {
  if (fault === 'network') return HttpResponse.error();
  if ('delayMs' in fault) {
    await new Promise((resolve) => setTimeout(resolve, fault.delayMs));
    return undefined;
  }
  const text = typeof fault.body === 'string';
  return new HttpResponse(text ? (fault.body as string) : JSON.stringify(fault.body ?? {}), {
    status: fault.status,
    headers: { 'content-type': text ? textType : 'application/json', ...headers, ...fault.headers },
  });
}
