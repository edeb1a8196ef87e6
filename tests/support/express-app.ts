/**
 * The Express example (examples/express) in-process on a loopback port, in dev mode unless told otherwise,
 * with its log lines captured (the tests check that no token ever reaches them).
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createApp, type MailboxApp } from '../../examples/express/app.js';
import type { AppConfig } from '../../examples/express/config.js';

export interface RunningExample {
  readonly origin: string;
  readonly example: MailboxApp;
  readonly logs: string[];
  close(): Promise<void>;
}

export async function startExample(config: Partial<AppConfig> = {}): Promise<RunningExample> {
  // Listen first: the dev provider registers the redirect URI with the real port.
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const logs: string[] = [];
  const example = await createApp({
    dev: { dovecot: false },
    ...config,
    origin,
    log: (line) => logs.push(line),
  });
  server.on('request', example.app);
  return {
    origin,
    example,
    logs,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await example.close();
    },
  };
}

/** A browser without a browser: fetch with a cookie jar, redirects not followed. */
export class Visitor {
  readonly #jar = new Map<string, string>();
  /** Every HTML body received, to check what ever reached the browser. */
  readonly pages: string[] = [];

  constructor(readonly origin: string) {}

  async request(
    path: string | URL,
    init: { method?: string; form?: Record<string, string> } = {},
  ): Promise<{ status: number; location: string | null; body: string }> {
    const url = new URL(path, this.origin);
    const res = await fetch(url, {
      method: init.method ?? (init.form === undefined ? 'GET' : 'POST'),
      redirect: 'manual',
      headers: {
        ...(this.#jar.size === 0 ? {} : { cookie: [...this.#jar].map(([k, v]) => `${k}=${v}`).join('; ') }),
        ...(init.form === undefined ? {} : { 'content-type': 'application/x-www-form-urlencoded' }),
      },
      ...(init.form === undefined ? {} : { body: new URLSearchParams(init.form).toString() }),
    });
    for (const cookie of res.headers.getSetCookie()) {
      const [pair = ''] = cookie.split(';');
      const eq = pair.indexOf('=');
      if (eq > 0) this.#jar.set(pair.slice(0, eq), pair.slice(eq + 1));
    }
    const body = await res.text();
    if ((res.headers.get('content-type') ?? '').includes('text/html')) this.pages.push(body);
    return { status: res.status, location: res.headers.get('location'), body };
  }

  /** The CSRF token in the page's forms. */
  static csrf(html: string): string {
    const token = /name="_csrf" value="([^"]+)"/.exec(html)?.[1];
    if (token === undefined) throw new Error('no CSRF token on the page');
    return token;
  }
}
