import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { buildOAuthBearer, buildXOAuth2, InvalidArgumentError } from '../../src/index.js';

const decode = (b64: string) => Buffer.from(b64, 'base64').toString('utf8');

describe('SASL initial responses', () => {
  it('builds XOAUTH2 as user=…^Aauth=Bearer …^A^A', () => {
    expect(decode(buildXOAuth2('ada@example.com', 'ya29.token'))).toBe(
      'user=ada@example.com\x01auth=Bearer ya29.token\x01\x01',
    );
    // Google's documented example.
    expect(buildXOAuth2('someuser@example.com', 'ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg')).toBe(
      'dXNlcj1zb21ldXNlckBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciB5YTI5LnZGOWRmdDRxbVRjMk52YjNSbGNrQmhkSFJoZG1semRHRXVZMjl0Q2cBAQ==',
    );
  });

  it('builds OAUTHBEARER per RFC 7628, escaping , and = in the authzid', () => {
    expect(decode(buildOAuthBearer('ada@yahoo.com', 'tok', { host: 'imap.mail.yahoo.com', port: 993 }))).toBe(
      'n,a=ada@yahoo.com,\x01host=imap.mail.yahoo.com\x01port=993\x01auth=Bearer tok\x01\x01',
    );
    expect(decode(buildOAuthBearer('a,b=c@x.com', 't', { host: 'h', port: 1 }))).toBe(
      'n,a=a=2Cb=3Dc@x.com,\x01host=h\x01port=1\x01auth=Bearer t\x01\x01',
    );
  });

  it('refuses control characters (field injection) without echoing the value', () => {
    for (const bad of ['a\x01auth=Bearer evil', 'a\r\nA2 LOGOUT', 'a\x00', 'a\x7f']) {
      for (const call of [
        () => buildXOAuth2(bad, 'token'),
        () => buildXOAuth2('user@example.com', bad),
        () => buildOAuthBearer(bad, 'token', { host: 'h', port: 1 }),
        () => buildOAuthBearer('u@x', bad, { host: 'h', port: 1 }),
        () => buildOAuthBearer('u@x', 't', { host: bad, port: 1 }),
      ]) {
        let error: unknown;
        try {
          call();
        } catch (err) {
          error = err;
        }
        expect(error).toBeInstanceOf(InvalidArgumentError);
        expect((error as Error).message).not.toContain(bad);
      }
    }
    expect(() => buildXOAuth2('', 't')).toThrow(InvalidArgumentError);
    expect(() => buildOAuthBearer('u', 't', { host: 'h', port: 0 })).toThrow(InvalidArgumentError);
  });

  it('round-trips any printable user and token (property)', () => {
    const printable = fc.string({
      minLength: 1,
      maxLength: 80,
      unit: fc.constantFrom(...'abcXYZ019@._-+/=~ ,é'.split('')),
    });
    fc.assert(
      fc.property(printable, printable, (user, token) => {
        const [u, a, empty1, empty2] = decode(buildXOAuth2(user, token)).split('\x01');
        return u === `user=${user}` && a === `auth=Bearer ${token}` && empty1 === '' && empty2 === '';
      }),
      { numRuns: 300 },
    );
  });
});
