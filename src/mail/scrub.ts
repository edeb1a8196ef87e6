/**
 * Secrets a server may echo. A mail server or API that quotes the credential in its refusal (a 535 reply that
 * repeats the SASL string, a proxy that echoes the `Authorization` header) would put the access token into
 * the error text this library copies out of the answer, and from there into logs. Every text taken from a
 * server's answer is scrubbed of what the library handed to that server: the token, the SASL strings built
 * from it, and their base64.
 *
 * @module
 */
import { oauthBearerText, xoauth2Text } from './sasl.js';

/** What replaces an echoed secret. */
export const REDACTED = '[redacted]';

/** Shorter values are not scrubbed (they would match ordinary words); no token is this short. */
const MIN_SECRET_LENGTH = 8;

/** How deep a cause chain is scrubbed. */
const MAX_DEPTH = 5;

/**
 * The forms of an access token a server may echo: the token, `Bearer <token>`, the XOAUTH2 string and its
 * base64, and the OAUTHBEARER string (for `server`) and its base64.
 */
export function echoableForms(
  accessToken: string,
  user?: string,
  server?: { readonly host: string; readonly port: number },
): string[] {
  const forms = [accessToken, `Bearer ${accessToken}`];
  if (user !== undefined) {
    const texts = [xoauth2Text(user, accessToken)];
    if (server !== undefined) texts.push(oauthBearerText(user, accessToken, server));
    for (const text of texts) forms.push(text, Buffer.from(text, 'utf8').toString('base64'));
  }
  return forms;
}

/** `text` with every occurrence of every secret replaced by {@link REDACTED} (longest first). */
export function scrubText(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const secret of [...secrets].sort((a, b) => b.length - a.length)) {
    if (secret.length >= MIN_SECRET_LENGTH && out.includes(secret)) out = out.split(secret).join(REDACTED);
  }
  return out;
}

/**
 * Scrub an error a third-party client (nodemailer, imapflow, fetch) built from a server's answer, in place:
 * its message, stack and every own string property (`response`, `responseText`, `command`...), and those of
 * its causes. Returns the same error.
 */
export function scrubError<T>(err: T, secrets: readonly string[], depth = 0): T {
  if (typeof err !== 'object' || err === null || depth > MAX_DEPTH || secrets.length === 0) return err;
  const target = err as Record<string, unknown>;
  for (const key of new Set([...Object.getOwnPropertyNames(target), 'message', 'stack'])) {
    let value: unknown;
    try {
      value = target[key];
    } catch {
      continue;
    }
    if (typeof value === 'string') {
      const clean = scrubText(value, secrets);
      if (clean !== value) {
        try {
          Object.defineProperty(target, key, { value: clean, writable: true, configurable: true });
        } catch {
          // a frozen property: nothing of ours
        }
      }
    } else if (key === 'cause' || key === 'response') {
      scrubError(value, secrets, depth + 1);
    }
  }
  return err;
}
