/**
 * Server-rendered HTML: a tagged template that escapes every interpolated value, the page, and the human
 * message of each error code. No front-end build, no script.
 */
import {
  type AccountHealth,
  ERROR_CODES,
  errorCategory,
  type MailboxAuthErrorCode,
  type ProviderSummary,
} from 'oauth-mailbox';

/** Markup that is already safe (built by {@link html}). */
export class SafeHtml {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value;
  }
}

const ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

function render(value: unknown): string {
  if (value instanceof SafeHtml) return value.value;
  if (Array.isArray(value)) return value.map(render).join('');
  if (value === undefined || value === null || value === false) return '';
  return String(value).replace(/[&<>"']/g, (c) => ESCAPES[c] ?? c);
}

/** `html\`<p>${text}</p>\``: values are escaped, nested `html` fragments and arrays of them are not. */
export function html(strings: TemplateStringsArray, ...values: unknown[]): SafeHtml {
  let out = strings[0] ?? '';
  values.forEach((value, i) => {
    out += render(value) + (strings[i + 1] ?? '');
  });
  return new SafeHtml(out);
}

/** What the user is told for each error code. Only codes reach the browser; the details stay in the log. */
const MESSAGES: { readonly [code in MailboxAuthErrorCode]?: string } = {
  ERR_AUTHORIZATION_DENIED: 'You declined access at the provider, so nothing was connected.',
  ERR_INVALID_STATE: 'This sign-in attempt expired or was already used. Please connect again.',
  ERR_AUTHORIZATION_RESPONSE_INVALID:
    'The provider sent back an answer we could not accept. Please try again.',
  ERR_TOKEN_EXCHANGE_FAILED: 'The provider did not complete the sign-in. Please try again.',
  ERR_PROVIDER_UNAVAILABLE: 'The provider is not reachable right now. Please try again in a few minutes.',
  ERR_CONFIGURATION: 'This provider is misconfigured on our side. The operator has been notified.',
  ERR_UNKNOWN_PROVIDER: 'This provider is not available.',
  ERR_STORAGE: 'We could not save your mailbox. Please try again.',
  ERR_REAUTHORIZATION_REQUIRED:
    'The provider no longer accepts this connection. Please connect the mailbox again.',
  ERR_TOKEN_EXPIRED: 'The connection has expired. Please connect the mailbox again.',
  ERR_TOKEN_REFRESH_FAILED: 'We could not renew access to your mailbox. Please try again later.',
  ERR_MAIL_AUTHENTICATION_FAILED: 'The mail server refused our access. Please connect the mailbox again.',
  ERR_MAIL_CONNECTION_FAILED: 'The mail server is not reachable right now. Please try again later.',
  ERR_MAIL_REQUEST_REJECTED: 'The mail server refused the message.',
  ERR_ACCOUNT_NOT_FOUND: 'This mailbox is not connected.',
};

/** A known error code, or `ERR_UNEXPECTED` (so a crafted `?error=` cannot put arbitrary text on the page). */
export function knownCode(code: unknown): MailboxAuthErrorCode | 'ERR_UNEXPECTED' {
  return ERROR_CODES.find((known) => known === code) ?? 'ERR_UNEXPECTED';
}

/** The sentence for an error code (any string; unknown codes get a generic one). */
export function errorMessage(code: string): string {
  const known = knownCode(code);
  if (known === 'ERR_UNEXPECTED') return 'Something went wrong. Please try again.';
  return (
    MESSAGES[known] ??
    (errorCategory(known) === 'transient'
      ? 'A temporary problem occurred. Please try again later.'
      : 'The request could not be completed.')
  );
}

/** A message box at the top of the page. */
export interface Banner {
  readonly kind: 'success' | 'error';
  readonly text: string;
  /** The error code, shown small under the sentence. */
  readonly code?: string;
}

/** One connected mailbox as listed on the page. */
export interface AccountView {
  readonly health: AccountHealth;
  readonly providerName: string;
}

/** A dev-mode panel: where the local services are and what the SMTP server received. */
export interface DevView {
  readonly issuer: string;
  readonly smtpPort: number;
  readonly imapPort: number | undefined;
  readonly received: readonly { readonly from: string; readonly to: string; readonly subject: string }[];
}

/** Everything the home page shows. */
export interface HomeView {
  readonly userId: string;
  readonly csrfToken: string;
  readonly providers: readonly ProviderSummary[];
  readonly accounts: readonly AccountView[];
  readonly banner?: Banner;
  readonly dev?: DevView;
}

const STYLE = `
  :root { color-scheme: light; --ink: #1c2430; --muted: #5c6675; --line: #dde2ea; --accent: #2557d6; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink); background: #f5f7fb; }
  a { color: var(--accent); }
  main { max-width: 760px; margin: 0 auto; padding: 32px 20px 48px; }
  header h1 { font-size: 22px; margin: 0 0 4px; }
  header p { margin: 0 0 24px; color: var(--muted); }
  section { background: #fff; border: 1px solid var(--line); border-radius: 10px; padding: 18px 20px; margin: 0 0 20px; }
  h2 { font-size: 16px; margin: 0 0 12px; }
  .providers { display: flex; flex-wrap: wrap; gap: 10px; }
  .button, button { display: inline-block; font: inherit; font-size: 14px; padding: 7px 14px; border-radius: 7px; border: 1px solid var(--accent); background: var(--accent); color: #fff; text-decoration: none; cursor: pointer; }
  button.secondary { background: #fff; color: var(--accent); }
  button.danger { background: #fff; color: #b42318; border-color: #e4a29b; }
  .banner { border-radius: 10px; padding: 12px 16px; margin: 0 0 20px; border: 1px solid; }
  .banner.success { background: #ecfbf1; border-color: #9fd8b2; color: #14532d; }
  .banner.error { background: #fff1f0; border-color: #f0b1aa; color: #7a1a12; }
  .banner code { display: block; font-size: 12px; opacity: .8; margin-top: 2px; }
  ul.accounts { list-style: none; margin: 0; padding: 0; }
  ul.accounts li { border-top: 1px solid var(--line); padding: 12px 0; display: flex; gap: 12px; align-items: center; justify-content: space-between; flex-wrap: wrap; }
  ul.accounts li:first-child { border-top: 0; padding-top: 0; }
  .email { font-weight: 600; }
  .meta { color: var(--muted); font-size: 13px; }
  .status { display: inline-block; font-size: 12px; padding: 1px 8px; border-radius: 99px; background: #eef1f6; margin-left: 6px; font-weight: 500; }
  .status.active { background: #dcf5e5; color: #14532d; }
  .status.reauth_required, .status.error, .status.revoked { background: #fde7e4; color: #7a1a12; }
  .actions { display: flex; gap: 8px; }
  .actions form { margin: 0; }
  .empty { color: var(--muted); margin: 0; }
  .dev { background: #fffbea; border-color: #f2dc8c; font-size: 14px; }
  .dev code { font-size: 13px; }
  footer { color: var(--muted); font-size: 13px; }
`;

function layout(title: string, body: SafeHtml): SafeHtml {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title}</title>
<style>${new SafeHtml(STYLE)}</style>
</head>
<body><main>${body}</main></body>
</html>`;
}

const when = (date: Date | null): string =>
  date === null ? 'never' : `${date.toISOString().slice(0, 19).replace('T', ' ')} UTC`;

function accountItem(view: AccountView, csrfToken: string): SafeHtml {
  const { health } = view;
  const id = encodeURIComponent(health.accountId);
  return html`<li data-account="${health.accountId}">
  <div>
    <span class="email">${health.email}</span>
    <span class="status ${health.status}">${health.status}</span>
    <div class="meta">${view.providerName} · last token refresh ${when(health.lastSuccessAt)}${
      health.lastError === null
        ? ''
        : html` · last error <code>${health.lastError.code}</code> (${when(health.lastError.at)})`
    }</div>
  </div>
  <div class="actions">
    <form method="post" action="/accounts/${id}/send-test">
      <input type="hidden" name="_csrf" value="${csrfToken}">
      <button type="submit" class="secondary">Send a test message</button>
    </form>
    <form method="post" action="/accounts/${id}/disconnect">
      <input type="hidden" name="_csrf" value="${csrfToken}">
      <button type="submit" class="danger">Disconnect</button>
    </form>
  </div>
</li>`;
}

function devPanel(dev: DevView): SafeHtml {
  return html`<section class="dev">
  <h2>Dev mode</h2>
  <p>"Local test provider" is an OpenID provider running at <code>${dev.issuer}</code>: sign in with any name
  (it becomes <code>name@example.com</code>) and any password. Mail goes to a local SMTP server on port
  <code>${dev.smtpPort}</code> that checks each access token with that provider${
    dev.imapPort === undefined ? '' : html`, and on to Dovecot (IMAP on port <code>${dev.imapPort}</code>)`
  }.</p>
  <p class="meta">Messages received by the local SMTP server: ${dev.received.length}${
    dev.received.length === 0
      ? ''
      : html` (latest: "${dev.received.at(-1)?.subject}" to ${dev.received.at(-1)?.to})`
  }</p>
</section>`;
}

/** The home page: banner, providers, connected mailboxes. */
export function homePage(view: HomeView): SafeHtml {
  return layout(
    'Connect your mailbox',
    html`<header>
  <h1>Connect your mailbox</h1>
  <p>oauth-mailbox · Express example</p>
</header>
${
  view.banner === undefined
    ? ''
    : html`<div class="banner ${view.banner.kind}" role="status">${view.banner.text}${
        view.banner.code === undefined ? '' : html`<code>${view.banner.code}</code>`
      }</div>`
}
<section>
  <h2>Add a mailbox</h2>
  <div class="providers">${view.providers.map(
    (p) =>
      html`<a class="button" href="/oauth/${encodeURIComponent(p.id)}/start">Connect ${p.displayName}</a>`,
  )}</div>
</section>
<section>
  <h2>Your mailboxes</h2>
  ${
    view.accounts.length === 0
      ? html`<p class="empty">No mailbox connected yet.</p>`
      : html`<ul class="accounts">${view.accounts.map((a) => accountItem(a, view.csrfToken))}</ul>`
  }
</section>
${view.dev === undefined ? '' : devPanel(view.dev)}
<footer>Demo user <code>${view.userId.slice(0, 8)}</code> (a random id in a cookie: replace with your own authentication).</footer>`,
  );
}

/** A page for a failed request that has no better place to go (404, 403, 500). */
export function errorPage(status: number, text: string, code?: string): SafeHtml {
  return layout(
    `Error ${status}`,
    html`<header><h1>Something went wrong</h1><p>HTTP ${status}</p></header>
<div class="banner error" role="alert">${text}${code === undefined ? '' : html`<code>${code}</code>`}</div>
<p><a href="/">Back to your mailboxes</a></p>`,
  );
}
