import { ConfigurationError, InvalidArgumentError, isMailboxAuthError } from '../errors.js';
import { describeType, hasControlCharacter } from '../internal/text.js';
import type { OAuthProvider } from '../providers/types.js';

const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]', '::1']);

/**
 * Is this URL on the local machine?
 *
 * @example
 * ```ts
 * isLoopback(new URL('http://localhost:3000/cb')); // true
 * ```
 */
export function isLoopback(url: URL): boolean {
  return LOOPBACK.has(url.hostname) || url.hostname.endsWith('.localhost');
}

/**
 * The outcome of a callback, for {@link buildReturnUrl}.
 *
 * @example
 * ```ts
 * const outcome: CallbackOutcome = { status: 'error', provider: 'google', error };
 * res.redirect(buildReturnUrl('/settings', outcome, origin).href);
 * ```
 */
export type CallbackOutcome =
  | {
      /** The mailbox was connected. */
      readonly status: 'success';
      /** The provider id of the callback route. */
      readonly provider: string;
      /** The connected account's id (sent as `account`). */
      readonly accountId: string;
    }
  | {
      /** The authorization failed. */
      readonly status: 'error';
      /** The provider id of the callback route. */
      readonly provider: string;
      /** What `completeAuthorization` threw: only its stable `code` is sent (`ERR_UNEXPECTED` for a non-library error). */
      readonly error: unknown;
    };

/**
 * The URL to send the browser back to after the callback: `?status=success&provider=…&account=…` or
 * `?status=error&provider=…&error=<code>` (the stable error code only: no message, no secret).
 *
 * @example
 * ```ts
 * try {
 *   const { account } = await auth.completeAuthorization('google', req.url, { owner });
 *   res.redirect(buildReturnUrl('/settings/mail', { status: 'success', provider: 'google', accountId: account.id }, appOrigin).href);
 * } catch (error) {
 *   res.redirect(buildReturnUrl('/settings/mail', { status: 'error', provider: 'google', error }, appOrigin).href);
 * }
 * ```
 */
export function buildReturnUrl(target: string | URL, outcome: CallbackOutcome, base?: string | URL): URL {
  if (
    typeof outcome !== 'object' ||
    outcome === null ||
    (outcome.status !== 'success' && outcome.status !== 'error')
  ) {
    throw new InvalidArgumentError(
      `buildReturnUrl: outcome must be a callback outcome ({ status: 'success' | 'error', ... }) (got ${describeType(outcome)})`,
    );
  }
  if (typeof target !== 'string' && !(target instanceof URL)) {
    throw new InvalidArgumentError(
      `buildReturnUrl: target must be a string or a URL (got ${describeType(target)})`,
    );
  }
  let url: URL;
  try {
    url = new URL(target, base);
  } catch (cause) {
    throw new InvalidArgumentError('buildReturnUrl: target is not a URL (give a base for a path)', { cause });
  }
  url.searchParams.set('status', outcome.status);
  url.searchParams.set('provider', outcome.provider);
  if (outcome.status === 'success') {
    url.searchParams.set('account', outcome.accountId);
  } else {
    url.searchParams.set('error', isMailboxAuthError(outcome.error) ? outcome.error.code : 'ERR_UNEXPECTED');
  }
  return url;
}

/**
 * Options of {@link validateRedirectUris}.
 *
 * @example
 * ```ts
 * validateRedirectUris(registry.providers(), { allowedOrigins: ['https://app.example.com'], production: true });
 * ```
 */
export interface RedirectValidationOptions {
  /** Origins the redirect URIs may use, such as `https://app.example.com`. */
  readonly allowedOrigins: readonly string[];
  /**
   * Production: refuse loopback redirect URIs (a dev configuration deployed by mistake).
   * @default process.env.NODE_ENV === 'production'
   */
  readonly production?: boolean;
}

/**
 * Check every provider's redirect URI at start-up: an allowed origin, https except on loopback, no
 * fragment, and no loopback URI in production. Throws a `ConfigurationError` naming the provider.
 *
 * @example
 * ```ts
 * validateRedirectUris(registry.providers(), { allowedOrigins: [process.env.APP_ORIGIN!] });
 * ```
 */
export function validateRedirectUris(
  providers: readonly OAuthProvider[],
  options: RedirectValidationOptions,
): void {
  if (!Array.isArray(options?.allowedOrigins) || options.allowedOrigins.length === 0) {
    throw new ConfigurationError('allowedOrigins must list at least one origin');
  }
  const allowed = new Set(
    options.allowedOrigins.map((origin) => {
      try {
        return new URL(origin).origin;
      } catch (cause) {
        throw new ConfigurationError(`allowedOrigins: "${String(origin).slice(0, 200)}" is not a URL`, {
          cause,
        });
      }
    }),
  );
  const production = options.production ?? process.env.NODE_ENV === 'production';
  for (const provider of providers) {
    const url = new URL(provider.redirectUri);
    const where = `redirectUri of provider "${provider.id}" (${url.origin}${url.pathname})`;
    if (!allowed.has(url.origin)) {
      throw new ConfigurationError(`The ${where} is not on an allowed origin (${[...allowed].join(', ')})`, {
        providerId: provider.id,
      });
    }
    if (url.hash !== '')
      throw new ConfigurationError(`The ${where} must not have a fragment`, { providerId: provider.id });
    if (isLoopback(url)) {
      if (production) {
        throw new ConfigurationError(
          `The ${where} points at this machine in production: a development setting?`,
          {
            providerId: provider.id,
          },
        );
      }
    } else if (url.protocol !== 'https:') {
      throw new ConfigurationError(`The ${where} must use https outside localhost`, {
        providerId: provider.id,
      });
    }
  }
}

/**
 * The `returnTo` of an authorization start, checked: a path on the app's own origin, or an absolute https
 * (or loopback) URL on one of `allowedOrigins`. Anything else is an {@link InvalidArgumentError}.
 * @internal
 */
export function checkReturnTo(value: unknown, allowedOrigins: ReadonlySet<string>): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > 2048) {
    throw new InvalidArgumentError('returnTo must be a non-empty string of at most 2048 characters');
  }
  const returnTo = value;
  // URL parsers drop tabs and newlines and read `\` as `/`: `/\t/evil.example` would become
  // `//evil.example`, another origin. Such characters have no business in a return address.
  if (hasControlCharacter(returnTo) || returnTo.includes('\\')) {
    throw new InvalidArgumentError('returnTo must not contain control characters or backslashes');
  }
  if (returnTo.startsWith('/') && !returnTo.startsWith('//')) {
    // Belt and braces: a path must stay on the app's origin once resolved.
    if (new URL(returnTo, 'https://app.invalid').origin === 'https://app.invalid') return returnTo;
    throw new InvalidArgumentError(
      'returnTo must be a path on this app or an absolute URL on an allowed origin',
    );
  }
  let url: URL;
  try {
    url = new URL(returnTo);
  } catch {
    throw new InvalidArgumentError(
      'returnTo must be a path starting with / or an absolute URL on an allowed origin',
    );
  }
  if (!allowedOrigins.has(url.origin) || (url.protocol !== 'https:' && !isLoopback(url))) {
    throw new InvalidArgumentError(
      `returnTo must be a path or a URL on an allowed origin (got origin ${url.origin})`,
    );
  }
  return returnTo;
}
