import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fernetEncrypt } from '../../src/crypto/fernet.js';
import { CryptoError, type CryptoErrorReason, FernetCipher, fernetCipher } from '../../src/index.js';
import {
  applyMutation,
  B64URL_ALPHABET,
  expectConfigError,
  expectCryptoError,
  keyEncodings,
  mutationArb,
  renderings,
  thrown,
} from './helpers.js';

/*
 * Test vectors from the Fernet specification, https://github.com/fernet/spec (generate.json,
 * verify.json and invalid.json, as used by the reference implementations). The last three
 * "invalid" cases (trailing data, invalid characters, non-url-safe alphabet) and the two very short
 * tokens are extra malformed-encoding cases built from the same vectors.
 */
const SECRET = 'cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4=';
const SECRET_BYTES = Buffer.from(SECRET, 'base64url');
const SPEC_KEY = { signing: SECRET_BYTES.subarray(0, 16), encryption: SECRET_BYTES.subarray(16) };
const SPEC_TOKEN =
  'gAAAAAAdwJ6wAAECAwQFBgcICQoLDA0ODy021cpGVWKZ_eEwCGM4BLLF_5CV9dOPmrhuVUPgJobwOz7JcbmrR64jVmpU4IwqDA==';
const GENERATE_NOW = '1985-10-26T01:20:00-07:00';
const VERIFY_NOW = '1985-10-26T01:20:01-07:00';

const at = (iso: string) => () => Date.parse(iso);

function randomFernetKey(): string {
  return randomBytes(32).toString('base64url').padEnd(44, '=');
}

describe('fernet: specification vectors', () => {
  it('the spec secret is 32 bytes and the clock vector is 499162800', () => {
    expect(SECRET_BYTES.length).toBe(32);
    expect(Date.parse(GENERATE_NOW) / 1000).toBe(499_162_800);
  });

  it('generate.json: fernetEncrypt makes the exact token', () => {
    const iv = Uint8Array.from({ length: 16 }, (_, i) => i);
    const token = fernetEncrypt(SPEC_KEY, 'hello', iv, Date.parse(GENERATE_NOW) / 1000);
    expect(token).toBe(SPEC_TOKEN);
  });

  it('verify.json: decrypts the token with ttl 60 one second later', () => {
    const cipher = fernetCipher({ keys: SECRET, ttlSeconds: 60, now: at(VERIFY_NOW) });
    expect(cipher.decrypt(SPEC_TOKEN)).toBe('hello');
    // The aad argument is ignored by Fernet.
    expect(cipher.decrypt(SPEC_TOKEN, 'any-aad')).toBe('hello');
  });

  const invalid: { desc: string; token: string; now?: string; reason: CryptoErrorReason }[] = [
    {
      desc: 'incorrect mac',
      token:
        'gAAAAAAdwJ6xAAECAwQFBgcICQoLDA0OD3HkMATM5lFqGaerZ-fWPAl1-szkFVzXTuGb4hR8AKtwcaX1YdykQUFBQUFBQUFBQQ==',
      reason: 'decrypt_failed',
    },
    {
      desc: 'too short',
      token: 'gAAAAAAdwJ6xAAECAwQFBgcICQoLDA0OD3HkMATM5lFqGaerZ-fWPA==',
      reason: 'malformed',
    },
    {
      desc: 'invalid base64',
      token:
        '%%%%%%%%%%%%%AECAwQFBgcICQoLDA0OD3HkMATM5lFqGaerZ-fWPAl1-szkFVzXTuGb4hR8AKtwcaX1YdykRtfsH-p1YsUD2Q==',
      reason: 'malformed',
    },
    {
      desc: 'payload size not multiple of block size',
      token:
        'gAAAAAAdwJ6xAAECAwQFBgcICQoLDA0OD3HkMATM5lFqGaerZ-fWPOm73QeoCk9uGib28Xe5vz6oxq5nmxbx_v7mrfyudzUm',
      reason: 'malformed',
    },
    {
      desc: 'payload padding error',
      token:
        'gAAAAAAdwJ6xAAECAwQFBgcICQoLDA0ODz4LEpdELGQAad7aNEHbf-JkLPIpuiYRLQ3RtXatOYREu2FWke6CnJNYIbkuKNqOhw==',
      reason: 'decrypt_failed',
    },
    {
      desc: 'far-future TS (unacceptable clock skew)',
      token:
        'gAAAAAAdwStRAAECAwQFBgcICQoLDA0OD3HkMATM5lFqGaerZ-fWPAnja1xKYyhd-Y6mSkTOyTGJmw2Xc2a6kBd-iX9b_qXQcw==',
      reason: 'malformed',
    },
    {
      desc: 'expired TTL',
      token:
        'gAAAAAAdwJ6xAAECAwQFBgcICQoLDA0OD3HkMATM5lFqGaerZ-fWPAl1-szkFVzXTuGb4hR8AKtwcaX1YdykRtfsH-p1YsUD2Q==',
      now: '1985-10-26T01:21:31-07:00',
      reason: 'expired',
    },
    {
      desc: 'incorrect IV (causes padding error)',
      token:
        'gAAAAAAdwJ6xBQECAwQFBgcICQoLDA0OD3HkMATM5lFqGaerZ-fWPAkLhFLHpGtDBRLRTZeUfWgHSv49TF2AUEZ1TIvcZjK1zQ==',
      reason: 'decrypt_failed',
    },
    { desc: 'trailing characters', token: `${SPEC_TOKEN}trailingdata`, reason: 'malformed' },
    {
      desc: 'invalid characters',
      token:
        '*gAAAAAAdwJ6wAAECAwQFBgcI!CQoLDA0ODy021?cpGVWKZ_eEwC@GM4BLLF_5CV9dOPmrhuVUPgJobwOz7JcbmrR64jVmpU4IwqDA==',
      reason: 'malformed',
    },
    {
      desc: 'non-urlsafe base64 alphabet',
      token:
        'gAAAAAAdwJ6wAAEC/AwQFBgcICQoLDA0ODy+021cpGVWKZ_eEwCGM4BLLF_5CV9dOPmrhuVUPgJobwOz7JcbmrR64jVmpU4IwqDA==',
      reason: 'malformed',
    },
    { desc: 'very short payload', token: 'gAAAAABdnQ1TUKh2OE_ggbyCIxfg', reason: 'malformed' },
    { desc: 'super short payload', token: 'gAAA', reason: 'malformed' },
    { desc: 'empty', token: '', reason: 'malformed' },
  ];

  it.each(invalid)('invalid: $desc → CryptoError ($reason)', ({ token, now, reason }) => {
    const cipher = fernetCipher({ keys: SECRET, ttlSeconds: 60, now: at(now ?? VERIFY_NOW) });
    expectCryptoError(() => cipher.decrypt(token), reason);
  });

  it('the expired and far-future vectors carry a valid MAC: without a TTL they decrypt', () => {
    const noTtl = fernetCipher({ keys: SECRET, now: at(VERIFY_NOW) });
    const expiredToken = invalid.find((v) => v.desc === 'expired TTL')?.token ?? '';
    const futureToken = invalid.find((v) => v.desc.startsWith('far-future'))?.token ?? '';
    expect(noTtl.decrypt(expiredToken)).toBe('');
    expect(noTtl.decrypt(futureToken)).toBe('');
  });

  it('the expired vector is still valid at exactly its TTL', () => {
    const token = invalid.find((v) => v.desc === 'expired TTL')?.token ?? '';
    // Its timestamp is 01:20:01; at 01:21:01 it is exactly 60 s old.
    const cipher = fernetCipher({ keys: SECRET, ttlSeconds: 60, now: at('1985-10-26T01:21:01-07:00') });
    expect(cipher.decrypt(token)).toBe('');
    const later = fernetCipher({ keys: SECRET, ttlSeconds: 60, now: at('1985-10-26T01:21:02-07:00') });
    expectCryptoError(() => later.decrypt(token), 'expired');
  });
});

describe('fernet: TTL and clock skew', () => {
  const key = randomBytes(32);
  const fkey = { signing: key.subarray(0, 16), encryption: key.subarray(16) };
  const T = 1_700_000_000;
  const iv = randomBytes(16);
  const token = (ts: number) => fernetEncrypt(fkey, 'v', iv, ts);
  const cipherAt = (nowS: number, ttlSeconds?: number) =>
    fernetCipher({
      keys: key,
      ...(ttlSeconds === undefined ? {} : { ttlSeconds }),
      now: () => nowS * 1000 + 999,
    });

  it('accepts a token up to ttl seconds old and refuses it one second later', () => {
    expect(cipherAt(T + 300, 300).decrypt(token(T))).toBe('v');
    expectCryptoError(() => cipherAt(T + 301, 300).decrypt(token(T)), 'expired');
  });

  it('accepts up to 60 s of clock skew into the future, not more', () => {
    expect(cipherAt(T, 300).decrypt(token(T + 60))).toBe('v');
    expectCryptoError(() => cipherAt(T, 300).decrypt(token(T + 61)), 'malformed');
  });

  it('without ttlSeconds an old (or future) token still decrypts', () => {
    expect(cipherAt(T + 10 * 365 * 86_400).decrypt(token(T))).toBe('v');
    expect(cipherAt(T).decrypt(token(T + 86_400))).toBe('v');
    expect(fernetCipher({ keys: SECRET }).decrypt(SPEC_TOKEN)).toBe('hello');
  });

  it('encrypt stamps the current time of the injected clock', () => {
    const c = fernetCipher({ keys: key, now: () => T * 1000 + 750 });
    const data = Buffer.from(c.encrypt('v'), 'base64url');
    expect(data[0]).toBe(0x80);
    expect(Number(data.readBigUInt64BE(1))).toBe(T);
  });
});

describe('fernet: round trips and keys', () => {
  it('a token made by fernetCipher().encrypt decrypts, for random keys and texts', () => {
    for (let i = 0; i < 20; i++) {
      const c = fernetCipher({ keys: randomFernetKey() });
      const plaintext = `${'ü'.repeat(i)}token-${i}-${randomBytes(i).toString('hex')}`;
      const sealed = c.encrypt(plaintext, 'ignored');
      expect(sealed).toMatch(/^gAAAAA[A-Za-z0-9_-]+={0,2}$/);
      expect(sealed.length % 4).toBe(0);
      expect(c.decrypt(sealed)).toBe(plaintext);
    }
  });

  it('round-trips the empty string, unicode and 100 KB', () => {
    const c = fernetCipher({ keys: randomFernetKey() });
    for (const plaintext of ['', 'Grüße 世界 🔐', 'x'.repeat(100 * 1024)]) {
      expect(c.decrypt(c.encrypt(plaintext))).toBe(plaintext);
    }
  });

  it('fernetEncrypt output starts with gAAAAA for a modern timestamp and decrypts with the cipher', () => {
    const key = randomBytes(32);
    const token = fernetEncrypt(
      { signing: key.subarray(0, 16), encryption: key.subarray(16) },
      'hi',
      randomBytes(16),
      Date.now() / 1000,
    );
    expect(token.startsWith('gAAAAA')).toBe(true);
    expect(fernetCipher({ keys: key }).decrypt(token)).toBe('hi');
  });

  it('uses a fresh IV each time', () => {
    const c = fernetCipher({ keys: randomFernetKey(), now: () => 1_700_000_000_000 });
    const tokens = Array.from({ length: 100 }, () => c.encrypt('same'));
    expect(new Set(tokens).size).toBe(tokens.length);
  });

  it('accepts the key as url-safe base64 (Python), standard base64, hex or bytes', () => {
    let raw = randomBytes(32);
    while (!/[+/]/.test(raw.toString('base64'))) raw = randomBytes(32);
    const token = fernetCipher({ keys: raw }).encrypt('v');
    for (const input of [
      raw.toString('base64url').padEnd(44, '='),
      raw.toString('base64'),
      raw.toString('hex'),
      new Uint8Array(raw),
    ]) {
      expect(fernetCipher({ keys: input }).decrypt(token)).toBe('v');
    }
  });

  it('refuses a token made with another key', () => {
    const token = fernetCipher({ keys: randomFernetKey() }).encrypt('v');
    expectCryptoError(() => fernetCipher({ keys: randomFernetKey() }).decrypt(token), 'decrypt_failed');
  });

  it('MultiFernet-style key list: the first encrypts, any decrypts', () => {
    const first = randomFernetKey();
    const second = randomFernetKey();
    const multi = fernetCipher({ keys: [first, second] });
    const onlyFirst = fernetCipher({ keys: first });
    const onlySecond = fernetCipher({ keys: second });

    const fromMulti = multi.encrypt('new');
    expect(onlyFirst.decrypt(fromMulti)).toBe('new');
    expectCryptoError(() => onlySecond.decrypt(fromMulti), 'decrypt_failed');

    const legacy = onlySecond.encrypt('old');
    expect(multi.decrypt(legacy)).toBe('old');
    expect(multi.decrypt(onlyFirst.encrypt('also'))).toBe('also');

    expect(multi.needsReencryption(legacy)).toBe(true);
    expect(multi.needsReencryption(fromMulti)).toBe(false);
    expect(multi.needsReencryption(onlyFirst.encrypt('x'))).toBe(false);
    expect(multi.needsReencryption(fernetCipher({ keys: randomFernetKey() }).encrypt('x'))).toBe(true);
    for (const garbage of ['', 'garbage', SPEC_TOKEN.slice(0, 40), `${fromMulti}x`, 42 as never]) {
      expect(multi.needsReencryption(garbage)).toBe(true);
    }
  });

  it('refuses non-string tokens as malformed', () => {
    const c = fernetCipher({ keys: SECRET });
    for (const value of [undefined, null, 42, {}, Buffer.from(SPEC_TOKEN)]) {
      expectCryptoError(() => c.decrypt(value as never), 'malformed');
    }
  });

  it('refuses a token with an unknown version byte', () => {
    const data = Buffer.from(SPEC_TOKEN, 'base64url');
    data[0] = 0x81;
    const token = data.toString('base64url').padEnd(SPEC_TOKEN.length, '=');
    expectCryptoError(() => fernetCipher({ keys: SECRET }).decrypt(token), 'malformed');
  });

  it('refuses tokens whose base64 padding was removed or added', () => {
    const c = fernetCipher({ keys: SECRET });
    expect(SPEC_TOKEN.endsWith('==')).toBe(true);
    for (const token of [SPEC_TOKEN.slice(0, -1), SPEC_TOKEN.slice(0, -2), `${SPEC_TOKEN}=`]) {
      expectCryptoError(() => c.decrypt(token), 'malformed');
    }
  });
});

describe('fernet: configuration errors', () => {
  it('rejects keys of the wrong length, naming the key index but not the key', () => {
    const short = randomBytes(16);
    const err = expectConfigError(
      () => fernetCipher({ keys: short.toString('base64url') }),
      'fernetCipher: key 0 must be exactly 32 bytes (got 16)',
    );
    for (const text of renderings(err)) {
      for (const secret of keyEncodings(short)) expect(text).not.toContain(secret);
    }
    expectConfigError(
      () => fernetCipher({ keys: [randomFernetKey(), randomBytes(31)] }),
      'fernetCipher: key 1 must be exactly 32 bytes (got 31)',
    );
    expectConfigError(
      () => fernetCipher({ keys: 'not a fernet key!' }),
      'fernetCipher: key 0 must be base64, base64url or hex encoded',
    );
    expectConfigError(
      () => fernetCipher({ keys: 42 as never }),
      'fernetCipher: key 0 must be a string or a Uint8Array (got number)',
    );
  });

  it('rejects ttlSeconds that is not a positive number', () => {
    for (const ttlSeconds of [0, -1, Number.NaN, Number.POSITIVE_INFINITY, '60' as never]) {
      expectConfigError(
        () => fernetCipher({ keys: SECRET, ttlSeconds }),
        'fernetCipher: `ttlSeconds` must be a positive number',
      );
    }
    expect(fernetCipher({ keys: SECRET, ttlSeconds: 0.5 })).toBeInstanceOf(FernetCipher);
  });

  it('rejects an empty key list and options that are not an object', () => {
    expectConfigError(() => fernetCipher({ keys: [] }), 'fernetCipher: `keys` must hold at least one key');
    for (const options of [undefined, null, SECRET]) {
      expectConfigError(
        () => fernetCipher(options as never),
        'fernetCipher: options must be an object with `keys`',
      );
    }
  });
});

describe('fernet: properties', () => {
  const cipher = fernetCipher({ keys: [randomFernetKey(), randomFernetKey()] });
  const text = fc.oneof(fc.string({ maxLength: 48 }), fc.string({ unit: 'binary', maxLength: 48 }));

  it('decrypt(encrypt(x)) === x', () => {
    fc.assert(
      fc.property(text, (plaintext) => {
        expect(cipher.decrypt(cipher.encrypt(plaintext))).toBe(plaintext);
      }),
      { numRuns: 300 },
    );
  });

  it('any tampering of the token throws a CryptoError and never returns a value', () => {
    const alphabet = `${B64URL_ALPHABET}=`;
    fc.assert(
      fc.property(text, mutationArb(alphabet), (plaintext, mutation) => {
        const token = cipher.encrypt(plaintext);
        const tampered = applyMutation(token, alphabet, mutation);
        expect(tampered).not.toBe(token);
        const err = thrown(() => cipher.decrypt(tampered));
        expect(err).toBeInstanceOf(CryptoError);
        expect((err as CryptoError).code).toBe('ERR_CRYPTO');
      }),
      { numRuns: 1000 },
    );
  });

  it('refuses every single-character change of a token', () => {
    const alphabet = `${B64URL_ALPHABET}=.`;
    // Plaintext lengths giving 0, 1 and 2 padding characters.
    for (const plaintext of ['a', 'x'.repeat(20), 'y'.repeat(40)]) {
      const token = cipher.encrypt(plaintext);
      for (let i = 0; i < token.length; i++) {
        for (const ch of alphabet) {
          if (ch === token[i]) continue;
          expectCryptoError(() => cipher.decrypt(token.slice(0, i) + ch + token.slice(i + 1)));
        }
        expectCryptoError(() => cipher.decrypt(token.slice(0, i) + token.slice(i + 1)));
      }
    }
  });

  it('strings with lone surrogates are refused by encrypt, never silently altered', () => {
    const codeUnits = fc.string({
      unit: fc.integer({ min: 0, max: 0xffff }).map((u) => String.fromCharCode(u)),
      maxLength: 16,
    });
    fc.assert(
      fc.property(codeUnits, (plaintext) => {
        const wellFormed = !/\p{Cs}/u.test(plaintext);
        const result = (() => {
          try {
            return cipher.decrypt(cipher.encrypt(plaintext));
          } catch (err) {
            expect(err).toBeInstanceOf(CryptoError);
            return undefined;
          }
        })();
        expect(result).toBe(wellFormed ? plaintext : undefined);
      }),
      { numRuns: 300 },
    );
  });
});

describe('fernet: no key material in output', () => {
  it('JSON.stringify and util.inspect of the cipher hold no key', () => {
    const a = randomBytes(32);
    const b = randomBytes(32);
    const cipher = fernetCipher({ keys: [a.toString('base64url'), b] });
    expect(JSON.parse(JSON.stringify(cipher))).toEqual({ type: 'fernet', keys: 2 });
    for (const text of renderings(cipher)) {
      for (const secret of [...keyEncodings(a), ...keyEncodings(b)]) expect(text).not.toContain(secret);
      for (const half of [a.subarray(0, 16), a.subarray(16), b.subarray(0, 16), b.subarray(16)]) {
        for (const secret of keyEncodings(half)) expect(text).not.toContain(secret);
      }
    }
    expect(Object.keys(cipher)).toEqual([]);
  });

  it('decryption errors hold no key material', () => {
    const key = randomBytes(32);
    const cipher = fernetCipher({ keys: key, ttlSeconds: 60, now: at(VERIFY_NOW) });
    for (const token of [SPEC_TOKEN, 'garbage', `${SPEC_TOKEN}x`]) {
      const err = thrown(() => cipher.decrypt(token));
      expect(err).toBeInstanceOf(CryptoError);
      for (const text of renderings(err)) {
        for (const secret of keyEncodings(key)) expect(text).not.toContain(secret);
      }
    }
  });
});

describe('fernetCipher: hardening', () => {
  it('a token whose plaintext is not UTF-8 is a typed CryptoError, not a lossy string', async () => {
    const { createCipheriv, createHmac } = await import('node:crypto');
    // A Python backend can Fernet-encrypt any bytes: build such a token by hand (header, IV, AES-CBC, HMAC).
    const iv = randomBytes(16);
    const aes = createCipheriv('aes-128-cbc', SPEC_KEY.encryption, iv);
    const ct = Buffer.concat([aes.update(Buffer.from([0x61, 0xff, 0xfe, 0x80])), aes.final()]);
    const header = Buffer.alloc(9);
    header.writeUInt8(0x80, 0);
    header.writeBigUInt64BE(BigInt(Math.floor(Date.now() / 1000)), 1);
    const signed = Buffer.concat([header, iv, ct]);
    const mac = createHmac('sha256', SPEC_KEY.signing).update(signed).digest();
    const token = Buffer.concat([signed, mac]).toString('base64url');
    const padded = token + '='.repeat((4 - (token.length % 4)) % 4);
    const err = (() => {
      try {
        return fernetCipher({ keys: SECRET }).decrypt(padded);
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(CryptoError);
    expect((err as CryptoError).reason).toBe('malformed');
  });

  it.each([
    ['all zero', Buffer.alloc(32, 0)],
    ['all 0xFF', Buffer.alloc(32, 0xff)],
    ['one repeated byte', Buffer.alloc(32, 0x41)],
  ])('a key that is %s is refused at construction', (_name, key) => {
    expect(() => fernetCipher({ keys: key })).toThrow(/one byte value repeated/);
    expect(() => fernetCipher({ keys: key.toString('base64url') })).toThrow(/one byte value repeated/);
  });
});
