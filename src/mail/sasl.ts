/**
 * SASL initial responses for OAuth 2.0 bearer tokens: XOAUTH2 (Google, Microsoft) and OAUTHBEARER
 * (RFC 7628; Yahoo, AOL, Dovecot).
 * @module
 */
import { InvalidArgumentError } from '../errors.js';
import { hasControlCharacter, isWellFormed } from '../internal/text.js';

/** A SASL field value: a non-empty string without control characters. @internal */
export function checkSaslField(value: unknown, name: string): string {
  if (typeof value !== 'string' || value.length === 0) {
    throw new InvalidArgumentError(`${name} must be a non-empty string`);
  }
  if (hasControlCharacter(value)) {
    // A control character (or DEL) would let a value end a field and inject another one.
    // Never echo the value: it may be a token.
    throw new InvalidArgumentError(`${name} contains control characters (refused: SASL field injection)`);
  }
  if (!isWellFormed(value)) {
    // UTF-8 would send U+FFFD in its place: another login than the one given.
    throw new InvalidArgumentError(`${name} is ill-formed UTF-16 (a lone surrogate)`);
  }
  return value;
}

/**
 * The base64 XOAUTH2 initial response: `user=<user>^Aauth=Bearer <token>^A^A`.
 *
 * @example
 * ```ts
 * import { buildXOAuth2 } from 'oauth-mailbox';
 * socket.write(`A1 AUTHENTICATE XOAUTH2 ${buildXOAuth2('ada@example.com', accessToken)}\r\n`);
 * ```
 */
export function buildXOAuth2(user: string, accessToken: string): string {
  checkSaslField(user, 'user');
  checkSaslField(accessToken, 'accessToken');
  return Buffer.from(xoauth2Text(user, accessToken), 'utf8').toString('base64');
}

/** The XOAUTH2 initial response before base64, unchecked. @internal */
export function xoauth2Text(user: string, accessToken: string): string {
  return `user=${user}\x01auth=Bearer ${accessToken}\x01\x01`;
}

/** The OAUTHBEARER initial response before base64, unchecked (RFC 5801 escaping of the user). @internal */
export function oauthBearerText(
  user: string,
  accessToken: string,
  server: { readonly host: string; readonly port: number },
): string {
  const authzid = user.replace(/=/g, '=3D').replace(/,/g, '=2C');
  return `n,a=${authzid},\x01host=${server.host}\x01port=${server.port}\x01auth=Bearer ${accessToken}\x01\x01`;
}

/**
 * The base64 OAUTHBEARER (RFC 7628) initial response:
 * `n,a=<user>,^Ahost=<host>^Aport=<port>^Aauth=Bearer <token>^A^A`. A `,` or `=` in the user is escaped as
 * `=2C` / `=3D` (RFC 5801).
 *
 * @example
 * ```ts
 * import { buildOAuthBearer } from 'oauth-mailbox';
 * const response = buildOAuthBearer('ada@yahoo.com', accessToken, { host: 'imap.mail.yahoo.com', port: 993 });
 * ```
 */
export function buildOAuthBearer(
  user: string,
  accessToken: string,
  server: { readonly host: string; readonly port: number },
): string {
  checkSaslField(user, 'user');
  checkSaslField(accessToken, 'accessToken');
  checkSaslField(server?.host, 'host');
  if (!Number.isInteger(server.port) || server.port < 1 || server.port > 65_535) {
    throw new InvalidArgumentError('port must be an integer from 1 to 65535');
  }
  return Buffer.from(oauthBearerText(user, accessToken, server), 'utf8').toString('base64');
}
