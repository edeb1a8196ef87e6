/**
 * The providers' default HTTP client against real loopback servers: what openid-client relies on from
 * `fetch` (bodies, headers, statuses, no redirects, abort, network errors shaped like undici's), plus
 * keep-alive reuse, a response size cap and TLS verification.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { nodeFetch } from '../../src/http/node-fetch.js';

type Handler = (req: IncomingMessage, body: string, res: ServerResponse) => void;
const servers: Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }
});

async function serve(handler: Handler): Promise<{ url: string; connections: () => number }> {
  let connections = 0;
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => {
      body += c;
    });
    req.on('end', () => handler(req, body, res));
  });
  server.on('connection', () => {
    connections++;
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    connections: () => connections,
  };
}

describe('nodeFetch', () => {
  it('sends the method, headers and a form body, and returns status, headers and body', async () => {
    let seen: { method?: string; type?: string; length?: string; auth?: string; body?: string } = {};
    const { url } = await serve((req, body, res) => {
      seen = {
        method: req.method,
        type: req.headers['content-type'],
        length: req.headers['content-length'],
        auth: req.headers.authorization,
        body,
      };
      res.writeHead(400, 'Bad Request', [
        ['content-type', 'application/json'],
        ['set-cookie', 'a=1'],
        ['set-cookie', 'b=2'],
        ['retry-after', '7'],
      ]);
      res.end(JSON.stringify({ error: 'invalid_grant' }));
    });
    const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: 'r/é' });
    const res = await nodeFetch(`${url}/token?x=1`, {
      method: 'POST',
      headers: { authorization: 'Basic abc', accept: 'application/json' },
      body: form,
    });
    expect(seen).toEqual({
      method: 'POST',
      type: 'application/x-www-form-urlencoded;charset=UTF-8',
      length: String(Buffer.byteLength(form.toString())),
      auth: 'Basic abc',
      body: form.toString(),
    });
    expect(res.status).toBe(400);
    expect(res.ok).toBe(false);
    expect(res.statusText).toBe('Bad Request');
    expect(res.headers.get('retry-after')).toBe('7');
    expect(res.headers.getSetCookie()).toEqual(['a=1', 'b=2']);
    expect(await res.json()).toEqual({ error: 'invalid_grant' });
  });

  it('sends string and byte bodies as given, and GET without a body', async () => {
    const bodies: string[] = [];
    const { url } = await serve((req, body, res) => {
      bodies.push(`${req.method} ${req.headers['content-type'] ?? '-'} ${body}`);
      res.end('ok');
    });
    await nodeFetch(url, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'hello' });
    await nodeFetch(url, { method: 'POST', body: new TextEncoder().encode('bytes') });
    await nodeFetch(new URL(url));
    expect(bodies).toEqual(['POST text/plain hello', 'POST - bytes', 'GET - ']);
    await expect(nodeFetch(url, { method: 'POST', body: new Blob(['x']) })).rejects.toThrow(
      'the request body must be a string, URLSearchParams or bytes',
    );
  });

  it('answers 204 and 304 with a null body, and does not follow redirects', async () => {
    const { url } = await serve((req, _body, res) => {
      if (req.url === '/none') return void res.writeHead(204).end();
      res.writeHead(302, { location: 'https://elsewhere.example/' }).end('moved');
    });
    const none = await nodeFetch(`${url}/none`);
    expect(none.status).toBe(204);
    expect(none.body).toBeNull();
    const moved = await nodeFetch(`${url}/moved`, { redirect: 'manual' });
    expect(moved.status).toBe(302);
    expect(moved.headers.get('location')).toBe('https://elsewhere.example/');
  });

  it('returns a Response whose buffered body reads like fetch: once, clonable, as a stream on demand', async () => {
    const { url } = await serve((_req, _body, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(`\uFEFF${JSON.stringify({ access_token: 'é' })}`);
    });
    const res = await nodeFetch(url);
    expect(res).toBeInstanceOf(Response);
    expect(res.bodyUsed).toBe(false);
    const copy = res.clone();
    expect(await res.json()).toEqual({ access_token: 'é' }); // BOM stripped, UTF-8 decoded
    expect(res.bodyUsed).toBe(true);
    await expect(res.text()).rejects.toBeInstanceOf(TypeError);
    expect(() => res.clone()).toThrow(TypeError);
    expect(await copy.text()).toBe(JSON.stringify({ access_token: 'é' }));

    const bytes = await (await nodeFetch(url)).arrayBuffer();
    expect(new TextDecoder('utf-8', { ignoreBOM: true }).decode(bytes).charCodeAt(0)).toBe(0xfeff);
    const blob = await (await nodeFetch(url)).blob();
    expect(blob.type).toBe('application/json');

    // The body as a stream: reading it uses the body up.
    const streamed = await nodeFetch(url);
    let text = '';
    for await (const chunk of streamed.body as ReadableStream<Uint8Array>)
      text += Buffer.from(chunk).toString();
    expect(text).toContain('access_token');
    expect(streamed.bodyUsed).toBe(true);
    await expect(streamed.json()).rejects.toBeInstanceOf(TypeError);

    // The stream taken but not read: text() still reads it; a clone tees it.
    const taken = await nodeFetch(url);
    expect(taken.body).not.toBeNull();
    const tee = taken.clone();
    expect(await taken.json()).toEqual({ access_token: 'é' });
    expect(await tee.json()).toEqual({ access_token: 'é' });
  });

  it('reads bytes() and formData(); a null body reads as empty every time and is never used', async () => {
    const { url } = await serve((req, _body, res) => {
      if (req.url === '/none') return void res.writeHead(204).end();
      res.writeHead(200, { 'content-type': 'application/x-www-form-urlencoded' });
      res.end('a=1&b=%C3%A9');
    });
    expect(
      Buffer.from(
        await ((await nodeFetch(url)) as Response & { bytes(): Promise<Uint8Array> }).bytes(),
      ).toString(),
    ).toBe('a=1&b=%C3%A9');
    const form = await (await nodeFetch(url)).formData();
    expect([...form.entries()]).toEqual([
      ['a', '1'],
      ['b', 'é'],
    ]);
    const none = await nodeFetch(`${url}/none`);
    expect(await none.text()).toBe('');
    expect(await none.text()).toBe('');
    expect(none.bodyUsed).toBe(false);
    expect(none.clone().status).toBe(204);
  });

  it('sends no content-length without a body, normalizes standard methods only, and refuses a Request', async () => {
    const seen: string[] = [];
    const { url } = await serve((req, _body, res) => {
      seen.push(`${req.method} ${req.headers['content-length'] ?? '-'}`);
      res.end();
    });
    await nodeFetch(url);
    await nodeFetch(url, { method: 'patch', body: 'x' });
    await nodeFetch(url, { method: 'PURGE' });
    expect(seen).toEqual(['GET -', 'PATCH 1', 'PURGE 0']); // node:http, like undici, sends 0 for a bodiless PURGE
    await expect(nodeFetch(new Request(url))).rejects.toThrow('nodeFetch takes a URL');
  });

  it('reuses the connection (keep-alive)', async () => {
    const server = await serve((_req, _body, res) => res.end('{}'));
    for (let i = 0; i < 5; i++) await (await nodeFetch(server.url)).text();
    expect(server.connections()).toBe(1);
  });

  it('rejects with the signal reason on abort, before and during the request', async () => {
    const { url } = await serve((_req, _body, res) => {
      setTimeout(() => res.end('late'), 2_000);
    });
    const early = AbortSignal.abort(new Error('stop now'));
    await expect(nodeFetch(url, { signal: early })).rejects.toThrow('stop now');
    const started = Date.now();
    const timeout = nodeFetch(url, { signal: AbortSignal.timeout(100) });
    await expect(timeout).rejects.toMatchObject({ name: 'TimeoutError' });
    expect(Date.now() - started).toBeLessThan(1_500);
  });

  it('fails like undici on network errors: TypeError("fetch failed") with the errno on cause.code', async () => {
    const { url } = await serve((_req, _body, res) => res.end());
    const closed = url.replace(/:\d+$/, ':1');
    const failure = await nodeFetch(closed).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(TypeError);
    expect(failure).toMatchObject({ message: 'fetch failed', cause: { code: 'ECONNREFUSED' } });

    const { url: resetting } = await serve((req) => req.socket.destroy());
    await expect(nodeFetch(resetting)).rejects.toMatchObject({
      message: 'fetch failed',
      cause: { code: 'ECONNRESET' },
    });
    await expect(nodeFetch('ftp://127.0.0.1/')).rejects.toMatchObject({
      message: 'fetch failed',
      cause: { code: 'ERR_INVALID_PROTOCOL' },
    });
  });

  it('refuses a response body over 1 MiB', async () => {
    const { url } = await serve((_req, _body, res) => res.end(Buffer.alloc(1_048_577, 97)));
    await expect(nodeFetch(url)).rejects.toMatchObject({
      message: 'fetch failed',
      cause: { code: 'ERR_RESPONSE_TOO_LARGE' },
    });
    const { url: fits } = await serve((_req, _body, res) => res.end(Buffer.alloc(1_048_576, 97)));
    expect((await (await nodeFetch(fits)).arrayBuffer()).byteLength).toBe(1_048_576);
  });

  it('verifies TLS certificates (a self-signed server is refused)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'om-tls-'));
    try {
      execFileSync(
        'openssl',
        ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=localhost'].concat([
          '-keyout',
          join(dir, 'key.pem'),
          '-out',
          join(dir, 'cert.pem'),
        ]),
        { stdio: 'ignore' },
      );
      const server = createTlsServer(
        { key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) },
        (_req, res) => res.end('{}'),
      );
      servers.push(server);
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const port = (server.address() as AddressInfo).port;
      await expect(nodeFetch(`https://localhost:${port}/`)).rejects.toMatchObject({
        message: 'fetch failed',
        cause: { code: 'DEPTH_ZERO_SELF_SIGNED_CERT' },
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
