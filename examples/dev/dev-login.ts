/**
 * Be the user's browser on the local OpenID Provider's development pages, without a browser: follow the
 * authorization URL's redirects with a cookie jar, sign in, consent (or abort), and stop at the redirect to
 * the client's redirect URI, which is returned (it carries `code`, `state` and `iss`, or `error`).
 *
 * Used by `npm run demo` (the automatic authorization) and the e2e tests. The browser test drives the same
 * pages in headless Chromium instead.
 */

/** Options of {@link completeDevLogin}. */
export interface DevLoginOptions {
  /** The login to type on the login page (an email, or a name that gets `@example.com`). */
  readonly login: string;
  /** Where the provider sends the browser back: the walk stops at the first redirect there. */
  readonly redirectUri: string;
  /** Press "abort" on the consent page instead of consenting. @default false */
  readonly denyConsent?: boolean;
}

/**
 * Walk the login and consent pages and return the callback URL.
 *
 * @example
 * ```ts
 * const { url } = await auth.startAuthorization('local', { owner: 'user-1' });
 * const callback = await completeDevLogin(url, { login: 'ada@example.com', redirectUri });
 * await auth.completeAuthorization('local', callback, { owner: 'user-1' });
 * ```
 */
export async function completeDevLogin(start: URL, options: DevLoginOptions): Promise<URL> {
  const jar = new Map<string, string>();
  const issuerOrigin = start.origin;
  let request: { url: URL; body?: URLSearchParams } = { url: start };
  const pages: string[] = [];
  for (let hop = 0; hop < 15; hop++) {
    const res = await fetch(request.url, {
      method: request.body === undefined ? 'GET' : 'POST',
      redirect: 'manual',
      headers: {
        ...(jar.size === 0 ? {} : { cookie: [...jar].map(([name, value]) => `${name}=${value}`).join('; ') }),
        ...(request.body === undefined ? {} : { 'content-type': 'application/x-www-form-urlencoded' }),
      },
      ...(request.body === undefined ? {} : { body: request.body.toString() }),
    });
    for (const cookie of res.headers.getSetCookie()) {
      const pair = cookie.split(';', 1)[0] ?? '';
      const eq = pair.indexOf('=');
      if (eq <= 0) continue;
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      if (value === '' || /;\s*expires=Thu, 01 Jan 1970/i.test(cookie)) jar.delete(name);
      else jar.set(name, value);
    }
    const location = res.headers.get('location');
    if (res.status >= 300 && res.status < 400 && location !== null) {
      await res.body?.cancel();
      const next = new URL(location, request.url);
      if (next.origin + next.pathname === options.redirectUri) return next;
      if (next.origin !== issuerOrigin) throw new Error(`redirected off the provider to ${next.origin}`);
      request = { url: next };
      continue;
    }
    const html = await res.text();
    if (res.status !== 200) throw new Error(`the provider answered ${res.status}: ${html.slice(0, 300)}`);
    const action = /<form[^>]*action="([^"]+)"/.exec(html)?.[1];
    const prompt = /name="prompt" value="([a-z]+)"/.exec(html)?.[1];
    if (action === undefined || prompt === undefined) throw new Error('not a login or consent page');
    pages.push(prompt);
    const submit = new URL(action.replaceAll('&amp;', '&'), request.url);
    const uid = /^\/interaction\/([^/]+)$/.exec(submit.pathname)?.[1];
    if (uid === undefined) throw new Error(`unexpected form action ${submit.pathname}`);
    if (prompt === 'login') {
      request = {
        url: submit,
        body: new URLSearchParams({ prompt: 'login', login: options.login, password: 'anything' }),
      };
    } else if (prompt === 'consent' && options.denyConsent === true) {
      request = { url: new URL(`/interaction/${uid}/abort`, issuerOrigin) };
    } else if (prompt === 'consent') {
      request = { url: submit, body: new URLSearchParams({ prompt: 'consent' }) };
    } else {
      throw new Error(`unknown prompt ${prompt}`);
    }
  }
  throw new Error(`no redirect to the client after 15 hops (pages: ${pages.join(', ')})`);
}
