/**
 * Configuration a host gets wrong is refused when it is built, with a typed error, not at first use (where
 * every refresh, or every callback, would fail with it).
 */

import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  aesGcmCipher,
  buildReturnUrl,
  buildXOAuth2,
  ConfigurationError,
  InvalidArgumentError,
  memoryStore,
  oauth2,
  ProviderRegistry,
  TokenPersistence,
  TokenRefresher,
} from '../src/index.js';

const base = {
  id: 'corp',
  clientId: 'c',
  redirectUri: 'https://app.example.com/cb',
  authorizationEndpoint: 'https://auth.example.com/authorize',
  scopes: ['mail'],
  identify: async () => ({ email: 'a@example.com' }),
  mail: {
    imap: { host: 'imap.example.com', port: 993, secure: true },
    smtp: { host: 'smtp.example.com', port: 465, secure: true },
    sasl: 'XOAUTH2' as const,
  },
};

describe('refused at construction', () => {
  it('a token endpoint that is not https (plain http only to loopback with allowInsecureRequests)', () => {
    for (const [tokenEndpoint, allowInsecureRequests] of [
      ['http://auth.example.com/token', false],
      ['http://auth.example.com/token', true], // not loopback: the client secret would cross a network in clear
      ['http://127.0.0.1:8080/token', false],
      ['ftp://auth.example.com/token', true],
      ['not a url', true],
    ] as const) {
      expect(() => oauth2({ ...base, tokenEndpoint, allowInsecureRequests }), tokenEndpoint).toThrow(
        ConfigurationError,
      );
    }
    for (const [tokenEndpoint, allowInsecureRequests] of [
      ['https://auth.example.com/token', false],
      ['http://127.0.0.1:8080/token', true],
      ['http://localhost:8080/token', true],
      ['http://[::1]:8080/token', true],
    ] as const) {
      expect(() => oauth2({ ...base, tokenEndpoint, allowInsecureRequests }), tokenEndpoint).not.toThrow();
    }
  });

  it("a refresher's holderId that is empty, too long or has control characters", () => {
    const persistence = new TokenPersistence({
      store: memoryStore(),
      cipher: aesGcmCipher({ keys: { k: randomBytes(32) }, current: 'k' }),
    });
    const registry = new ProviderRegistry([]);
    for (const holderId of ['', 'a'.repeat(256), 'host\n1', 'host-\ud800', 42]) {
      expect(() => new TokenRefresher({ persistence, registry, holderId: holderId as string })).toThrow(
        ConfigurationError,
      );
    }
    const r = new TokenRefresher({ persistence, registry, holderId: 'web-1' });
    expect(r.holderId).toBe('web-1');
    r.close();
  });

  it('buildReturnUrl with no outcome or a bad target is a typed error', () => {
    for (const outcome of [null, undefined, {}, { status: 'maybe' }]) {
      expect(() => buildReturnUrl('/settings', outcome as never, 'https://app.example.com')).toThrow(
        InvalidArgumentError,
      );
    }
    expect(() =>
      buildReturnUrl('/settings', { status: 'success', provider: 'google', accountId: 'a' } as never),
    ).toThrow(
      InvalidArgumentError, // a path without a base
    );
    expect(() =>
      buildReturnUrl(42 as never, { status: 'success', provider: 'google', accountId: 'a' } as never),
    ).toThrow(InvalidArgumentError);
  });

  it('a lone surrogate in a SASL user or token is refused like control characters', () => {
    expect(() => buildXOAuth2('ada\ud800@example.com', 'token')).toThrow(InvalidArgumentError);
    expect(() => buildXOAuth2('ada@example.com', 'tok\udfffen')).toThrow(InvalidArgumentError);
    expect(() => buildXOAuth2('ada@example.com', 'token')).not.toThrow();
  });
});
