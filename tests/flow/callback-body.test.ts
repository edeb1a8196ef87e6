/** A `form_post` callback `Request`: its body is read only up to the 16 KiB bound, then the stream is cancelled. */
import { describe, expect, it } from 'vitest';
import { MAX_QUERY_LENGTH, readCallbackParameters } from '../../src/flow/callback.js';
import { AuthorizationResponseError, InvalidArgumentError, isMailboxAuthError } from '../../src/index.js';

const CALLBACK = 'https://app.example.com/oauth/callback';
const FORM = { 'content-type': 'application/x-www-form-urlencoded' };
const encoder = new TextEncoder();

function formPost(
  body: string | ReadableStream<Uint8Array> | null,
  headers: Record<string, string> = {},
): Request {
  return new Request(CALLBACK, {
    method: 'POST',
    headers: { ...FORM, ...headers },
    body,
    ...(body instanceof ReadableStream ? { duplex: 'half' } : {}),
  } as RequestInit);
}

/** A chunked body of `total` bytes of `a`, in 1 KiB chunks, counting what the reader pulled. */
function countingStream(total: number) {
  const stats = { pulls: 0, bytes: 0, cancelled: false };
  const chunk = new Uint8Array(1024).fill(0x61);
  const stream = new ReadableStream<Uint8Array>(
    {
      pull(controller) {
        stats.pulls++;
        if (stats.bytes >= total) return controller.close();
        stats.bytes += chunk.length;
        controller.enqueue(chunk);
      },
      cancel() {
        stats.cancelled = true;
      },
    },
    { highWaterMark: 0 },
  );
  return { stream, stats };
}

/** A stream of the given chunks, then closed. */
function chunks(...parts: Uint8Array[]): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(controller) {
      for (const part of parts) controller.enqueue(part);
      controller.close();
    },
  });
}

async function refusal(request: Request): Promise<unknown> {
  return readCallbackParameters(request).then(
    () => undefined,
    (error: unknown) => error,
  );
}

describe('readCallbackParameters: a form_post Request body', () => {
  it('reads a body in the bound', async () => {
    const params = await readCallbackParameters(formPost('code=abc&state=xyz'));
    expect(Object.fromEntries(params)).toEqual({ code: 'abc', state: 'xyz' });
  });

  it('reads no body as no parameters', async () => {
    expect([...(await readCallbackParameters(formPost(null)))]).toEqual([]);
  });

  it('accepts a chunked body of exactly the bound', async () => {
    // Parameters of 4000 characters (each under MAX_PARAMETER_LENGTH), the last one filling up to the bound.
    const parts = ['code', 's1', 's2', 's3'].map((name) => `${name}=${'a'.repeat(4000)}`);
    const head = parts.join('&');
    const body = `${head}&s4=${'a'.repeat(MAX_QUERY_LENGTH - head.length - 4)}`;
    const bytes = encoder.encode(body);
    expect(bytes.length).toBe(MAX_QUERY_LENGTH);
    const params = await readCallbackParameters(
      formPost(chunks(bytes.subarray(0, 5000), bytes.subarray(5000))),
    );
    expect(params.get('code')).toHaveLength(4000);
  });

  it('refuses a content-length over the bound before reading anything', async () => {
    const { stream, stats } = countingStream(10 * 1024 * 1024);
    const err = await refusal(formPost(stream, { 'content-length': String(10 * 1024 * 1024) }));
    expect(err).toEqual(new AuthorizationResponseError('The authorization response is too large'));
    expect(isMailboxAuthError(err, 'ERR_AUTHORIZATION_RESPONSE_INVALID')).toBe(true);
    expect(stats.pulls).toBe(0);
  });

  it('stops reading a chunked body (no content-length) once past the bound, and cancels the stream', async () => {
    const { stream, stats } = countingStream(10 * 1024 * 1024);
    const err = await refusal(formPost(stream));
    expect(err).toBeInstanceOf(AuthorizationResponseError);
    expect((err as AuthorizationResponseError).code).toBe('ERR_AUTHORIZATION_RESPONSE_INVALID');
    expect((err as Error).message).toBe('The authorization response is too large');
    // 17 chunks of 1 KiB take it past 16 KiB: nothing of the other 10 MB is pulled.
    expect(stats.bytes).toBe(MAX_QUERY_LENGTH + 1024);
    expect(stats.pulls).toBeLessThanOrEqual(18);
    expect(stats.cancelled).toBe(true);
  });

  it('decodes a UTF-8 character split across two chunks', async () => {
    const bytes = encoder.encode('code=caf\u00e9&state=\u20ac');
    const at = bytes.indexOf(0xc3) + 1; // between the two bytes of é
    const euro = bytes.indexOf(0xe2) + 2; // inside the three bytes of €
    const params = await readCallbackParameters(
      formPost(chunks(bytes.subarray(0, at), bytes.subarray(at, euro), bytes.subarray(euro))),
    );
    expect(Object.fromEntries(params)).toEqual({ code: 'café', state: '€' });
  });

  it('an aborted body stream is a typed error with the cause kept', async () => {
    const aborted = new Error('socket hang up');
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(encoder.encode('code=abc&'));
      },
      pull(controller) {
        controller.error(aborted);
      },
    });
    const err = await refusal(formPost(stream));
    expect(err).toBeInstanceOf(AuthorizationResponseError);
    expect((err as AuthorizationResponseError).code).toBe('ERR_AUTHORIZATION_RESPONSE_INVALID');
    expect((err as Error).message).toBe('The authorization response body could not be read');
    expect((err as Error).cause).toBe(aborted);
  });

  it('a body already read is an InvalidArgumentError, not a TypeError', async () => {
    const request = formPost('code=abc&state=xyz');
    await request.text();
    expect(await refusal(request)).toEqual(
      new InvalidArgumentError('The callback Request body was already read'),
    );
  });
});
