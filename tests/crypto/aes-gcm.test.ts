import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AesGcmCipher, aesGcmCipher, ConfigurationError, CryptoError } from '../../src/index.js';
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

const ENVELOPE = /^om1\.([A-Za-z0-9_-]{1,64})\.([A-Za-z0-9_-]{16})\.([A-Za-z0-9_-]*)\.([A-Za-z0-9_-]{22})$/;
const AAD = 'oauth-mailbox/account/0b6f3c2e-4d5a-4e1b-9c1d-2a3b4c5d6e7f';

/** A 32-byte key whose base64 contains '+' and '/' (so base64 and base64url spellings differ). */
function awkwardKey(): Buffer {
  return Buffer.concat([Buffer.from([0xfb, 0xff, 0xbf, 0xfb, 0xff, 0xbf]), randomBytes(26)]);
}

function single(key: Uint8Array | string, id = 'k1'): AesGcmCipher {
  return aesGcmCipher({ keys: { [id]: key }, current: id });
}

function parts(envelope: string): { kid: string; iv: Buffer; ct: Buffer; tag: Buffer } {
  const m = ENVELOPE.exec(envelope);
  if (m === null) throw new Error(`not an om1 envelope: ${envelope}`);
  const [, kid = '', iv = '', ct = '', tag = ''] = m;
  return {
    kid,
    iv: Buffer.from(iv, 'base64url'),
    ct: Buffer.from(ct, 'base64url'),
    tag: Buffer.from(tag, 'base64url'),
  };
}

describe('aesGcmCipher: round trip and envelope', () => {
  const cipher = single(randomBytes(32));

  it.each([
    ['empty string', ''],
    ['ascii', 'hello'],
    ['unicode', 'Grüße, 世界! 🔐📬 — ﷽ e\u0301 \u0000 \n\t'],
    ['json', JSON.stringify({ access: 'ya29.x', refresh: '1//y', exp: 1_700_000_000 })],
  ])('round-trips %s', (_name, plaintext) => {
    const sealed = cipher.encrypt(plaintext, AAD);
    if (plaintext.length > 3) expect(sealed).not.toContain(plaintext);
    expect(cipher.decrypt(sealed, AAD)).toBe(plaintext);
  });

  it('round-trips 100 KB', () => {
    const plaintext = randomBytes(75 * 1024)
      .toString('base64')
      .slice(0, 100 * 1024);
    expect(plaintext.length).toBe(100 * 1024);
    const sealed = cipher.encrypt(plaintext, AAD);
    expect(parts(sealed).ct.length).toBe(100 * 1024);
    expect(cipher.decrypt(sealed, AAD)).toBe(plaintext);
  });

  it('round-trips with an empty aad and an aad containing dots', () => {
    for (const aad of ['', 'a.b.c', 'om1.k1.x']) {
      expect(cipher.decrypt(cipher.encrypt('v', aad), aad)).toBe('v');
    }
  });

  it('produces om1.<kid>.<iv>.<ct>.<tag> with a 96-bit IV, 128-bit tag and ct as long as the plaintext', () => {
    const c = single(randomBytes(32), 'key_2026-01');
    const plaintext = 'héllo wörld';
    const sealed = c.encrypt(plaintext, AAD);
    expect(sealed).toMatch(ENVELOPE);
    expect(sealed.split('.')).toHaveLength(5);
    const p = parts(sealed);
    expect(p.kid).toBe('key_2026-01');
    expect(p.iv.length).toBe(12);
    expect(p.tag.length).toBe(16);
    expect(p.ct.length).toBe(Buffer.byteLength(plaintext, 'utf8'));
    // An empty plaintext gives an empty ciphertext part.
    expect(c.encrypt('', AAD)).toMatch(/^om1\.key_2026-01\.[A-Za-z0-9_-]{16}\.\.[A-Za-z0-9_-]{22}$/);
  });

  it('uses a fresh random IV every time (same input, different envelopes)', () => {
    const envelopes = Array.from({ length: 200 }, () => cipher.encrypt('same', AAD));
    expect(new Set(envelopes).size).toBe(envelopes.length);
    const ivs = envelopes.map((e) => parts(e).iv.toString('hex'));
    expect(new Set(ivs).size).toBe(ivs.length);
    const cts = envelopes.map((e) => parts(e).ct.toString('hex'));
    expect(new Set(cts).size).toBe(cts.length);
    for (const e of envelopes) expect(cipher.decrypt(e, AAD)).toBe('same');
  });

  it('exposes the current key id and all key ids', () => {
    const c = aesGcmCipher({ keys: { a: randomBytes(32), b: randomBytes(32) }, current: 'b' });
    expect(c.currentKeyId).toBe('b');
    expect([...c.keyIds].sort()).toEqual(['a', 'b']);
    expect(c).toBeInstanceOf(AesGcmCipher);
  });
});

describe('aesGcmCipher: key formats', () => {
  const key = awkwardKey();
  const b64 = key.toString('base64');
  const b64url = key.toString('base64url');
  const hex = key.toString('hex');

  it('the test key really has distinct base64 and base64url spellings', () => {
    expect(b64).toMatch(/[+/]/);
    expect(b64url).toMatch(/[-_]/);
    expect(b64).not.toBe(b64url);
    expect(hex).toHaveLength(64);
  });

  it('accepts base64, base64url, hex, Buffer and Uint8Array spellings of the same key interchangeably', () => {
    const offsetView = (() => {
      const big = new Uint8Array(64);
      big.set(key, 8);
      return new Uint8Array(big.buffer, 8, 32);
    })();
    const inputs: (string | Uint8Array)[] = [
      b64,
      b64.replace(/=+$/, ''),
      b64url,
      hex,
      hex.toUpperCase(),
      `${b64}\n`,
      key,
      new Uint8Array(key),
      offsetView,
    ];
    const ciphers = inputs.map((input) => single(input));
    for (const [i, from] of ciphers.entries()) {
      const sealed = from.encrypt(`value ${i}`, AAD);
      for (const to of ciphers) expect(to.decrypt(sealed, AAD)).toBe(`value ${i}`);
    }
  });

  it('copies the key: mutating the caller buffer afterwards changes nothing', () => {
    const mine = Buffer.from(key);
    const c = single(mine);
    const sealed = c.encrypt('v', AAD);
    mine.fill(0);
    expect(c.decrypt(sealed, AAD)).toBe('v');
    expect(single(key).decrypt(c.encrypt('w', AAD), AAD)).toBe('w');
  });

  it('different key bytes do not decrypt each other', () => {
    const other = Buffer.from(key);
    other[31] = (other[31] ?? 0) ^ 1;
    const sealed = single(key).encrypt('v', AAD);
    expectCryptoError(() => single(other).decrypt(sealed, AAD), 'decrypt_failed');
  });
});

describe('aesGcmCipher: configuration errors', () => {
  const good = randomBytes(32);

  it('rejects a 16-byte key, naming the key but not its material', () => {
    const short = randomBytes(16);
    for (const input of [
      short,
      new Uint8Array(short),
      short.toString('base64'),
      short.toString('base64url'),
    ]) {
      const err = expectConfigError(
        () => single(input),
        'aesGcmCipher: key "k1" must be exactly 32 bytes (got 16)',
      );
      for (const text of [err.message, ...renderings(err)]) {
        for (const secret of keyEncodings(short)) expect(text).not.toContain(secret);
      }
    }
    // 32 hex digits are only taken as hex when there are 64 of them; otherwise they read as base64
    // (24 bytes). Either way the key is refused and not echoed.
    const err = thrown(() => single(short.toString('hex')));
    expect(err).toBeInstanceOf(ConfigurationError);
    expect((err as Error).message).toMatch(/^aesGcmCipher: key "k1" must be exactly 32 bytes \(got \d+\)$/);
    for (const text of renderings(err)) {
      for (const secret of keyEncodings(short)) expect(text).not.toContain(secret);
    }
  });

  it('rejects keys of other wrong lengths', () => {
    expectConfigError(
      () => single(randomBytes(33)),
      'aesGcmCipher: key "k1" must be exactly 32 bytes (got 33)',
    );
    expectConfigError(() => single(''), 'aesGcmCipher: key "k1" must be exactly 32 bytes (got 0)');
    expectConfigError(
      () => single(new Uint8Array(0)),
      'aesGcmCipher: key "k1" must be exactly 32 bytes (got 0)',
    );
    // 64 base64 characters decode to 48 bytes, not 32.
    expectConfigError(
      () => single(randomBytes(48).toString('base64')),
      'aesGcmCipher: key "k1" must be exactly 32 bytes (got 48)',
    );
  });

  it('rejects a string that is not base64, base64url or hex, without echoing it', () => {
    const garbage = 'this is not a key! s3cr3t-passphrase+with_mixed/alphabets';
    const err = expectConfigError(
      () => single(garbage),
      'aesGcmCipher: key "k1" must be base64, base64url or hex encoded',
    );
    for (const text of renderings(err)) {
      expect(text).not.toContain('s3cr3t');
      expect(text).not.toContain(garbage);
    }
    // Mixing the two alphabets is neither base64 nor base64url.
    const mixed = `+-${good.toString('hex').slice(0, 41)}=`;
    expect(mixed).toHaveLength(44);
    expectConfigError(() => single(mixed), 'aesGcmCipher: key "k1" must be base64, base64url or hex encoded');
    // Padding in the middle is not base64 either.
    expectConfigError(
      () => single(`${good.toString('base64').slice(0, 20)}=${good.toString('base64').slice(21)}`),
      'aesGcmCipher: key "k1" must be base64, base64url or hex encoded',
    );
  });

  it('rejects a key that is neither a string nor a Uint8Array', () => {
    expectConfigError(
      () => single(12345 as never),
      'aesGcmCipher: key "k1" must be a string or a Uint8Array (got number)',
    );
    expectConfigError(
      () => single(null as never),
      'aesGcmCipher: key "k1" must be a string or a Uint8Array (got null)',
    );
    expectConfigError(
      () => single([...good] as never),
      'aesGcmCipher: key "k1" must be a string or a Uint8Array (got array)',
    );
    expectConfigError(
      () => single(good.buffer as never),
      'aesGcmCipher: key "k1" must be a string or a Uint8Array (got object)',
    );
  });

  it('rejects invalid key ids', () => {
    expectConfigError(
      () => aesGcmCipher({ keys: { 'bad.id': good }, current: 'bad.id' }),
      'aesGcmCipher: key id "bad.id" must match /^[A-Za-z0-9_-]{1,64}$/',
    );
    expectConfigError(
      () => aesGcmCipher({ keys: { '': good }, current: '' }),
      'aesGcmCipher: key id "" must match /^[A-Za-z0-9_-]{1,64}$/',
    );
    expectConfigError(
      () => aesGcmCipher({ keys: { 'k 1': good }, current: 'k 1' }),
      'aesGcmCipher: key id "k 1" must match /^[A-Za-z0-9_-]{1,64}$/',
    );
    const long = 'a'.repeat(65);
    expectConfigError(
      () => aesGcmCipher({ keys: { [long]: good }, current: long }),
      `aesGcmCipher: key id "${'a'.repeat(64)}" must match /^[A-Za-z0-9_-]{1,64}$/`,
    );
    // 64 characters is the maximum and is fine.
    expect(
      aesGcmCipher({ keys: { [long.slice(1)]: good }, current: long.slice(1) }).currentKeyId,
    ).toHaveLength(64);
  });

  it('rejects an empty key ring and a `keys` that is not an object', () => {
    expectConfigError(
      () => aesGcmCipher({ keys: {}, current: 'k1' }),
      'aesGcmCipher: `keys` must hold at least one key',
    );
    expectConfigError(
      () => aesGcmCipher({ keys: [good] as never, current: '0' }),
      'aesGcmCipher: `keys` must be an object of key id to key (got array)',
    );
    expectConfigError(
      () => aesGcmCipher({ keys: good.toString('base64') as never, current: 'k1' }),
      'aesGcmCipher: `keys` must be an object of key id to key (got string)',
    );
    expectConfigError(
      () => aesGcmCipher({ current: 'k1' } as never),
      'aesGcmCipher: `keys` must be an object of key id to key (got undefined)',
    );
  });

  it('rejects a `current` that is not among the keys', () => {
    expectConfigError(
      () => aesGcmCipher({ keys: { k1: good, k2: randomBytes(32) }, current: 'k3' }),
      'aesGcmCipher: `current` must name one of the keys (k1, k2)',
    );
    expectConfigError(
      () => aesGcmCipher({ keys: { k1: good }, current: undefined as never }),
      'aesGcmCipher: `current` must name one of the keys (k1)',
    );
  });

  it('rejects options that are not an object', () => {
    for (const options of [undefined, null, 'k1', 42]) {
      expectConfigError(
        () => aesGcmCipher(options as never),
        'aesGcmCipher: options must be an object with `keys` and `current`',
      );
    }
  });
});

describe('aesGcmCipher: refusals', () => {
  const k1 = randomBytes(32);
  const cipher = single(k1);

  it('refuses a value copied onto another account (wrong aad)', () => {
    const sealed = cipher.encrypt('refresh-token', 'oauth-mailbox/account/1');
    const err = expectCryptoError(() => cipher.decrypt(sealed, 'oauth-mailbox/account/2'), 'decrypt_failed');
    expect(err.keyId).toBe('k1');
    expect(err.message).not.toContain('refresh-token');
    expectCryptoError(() => cipher.decrypt(sealed, 'oauth-mailbox/account/1 '), 'decrypt_failed');
    expectCryptoError(() => cipher.decrypt(sealed, ''), 'decrypt_failed');
    expect(cipher.decrypt(sealed, 'oauth-mailbox/account/1')).toBe('refresh-token');
  });

  it('reports an unknown key id with reason unknown_key and the key id', () => {
    const sealed = single(randomBytes(32), 'retired').encrypt('v', AAD);
    const other = aesGcmCipher({ keys: { k1, k2: randomBytes(32) }, current: 'k1' });
    const err = expectCryptoError(() => other.decrypt(sealed, AAD), 'unknown_key');
    expect(err.keyId).toBe('retired');
    expect(err.message).toContain('"retired"');
  });

  it('refuses a value made by a different key under the same id', () => {
    const sealed = single(randomBytes(32)).encrypt('v', AAD);
    const err = expectCryptoError(() => cipher.decrypt(sealed, AAD), 'decrypt_failed');
    expect(err.keyId).toBe('k1');
  });

  it('refuses a value whose key id was swapped to another configured key (even one with the same bytes)', () => {
    const kb = randomBytes(32);
    for (const ring of [
      { a: k1, b: kb },
      { a: k1, b: k1 },
    ]) {
      const c = aesGcmCipher({ keys: ring, current: 'a' });
      const sealed = c.encrypt('v', AAD);
      expect(sealed.startsWith('om1.a.')).toBe(true);
      const swapped = `om1.b.${sealed.slice('om1.a.'.length)}`;
      const err = expectCryptoError(() => c.decrypt(swapped, AAD), 'decrypt_failed');
      expect(err.keyId).toBe('b');
      expect(c.decrypt(sealed, AAD)).toBe('v');
    }
  });

  it('reports non-strings as malformed', () => {
    for (const value of [undefined, null, 42, {}, [], Buffer.from('om1.k1.a.b.c')]) {
      const err = expectCryptoError(() => cipher.decrypt(value as never, AAD), 'malformed');
      expect(err.keyId).toBeUndefined();
    }
  });

  it('reports a wrong part count, wrong version or invalid key id as malformed', () => {
    const sealed = cipher.encrypt('v', AAD);
    const [, , iv = '', ct = '', tag = ''] = sealed.split('.');
    const cases = [
      '',
      'garbage',
      'om1',
      `om1.k1.${iv}.${ct}`,
      `om1.k1.${iv}.${ct}.${tag}.`,
      `om1.k1.${iv}.${ct}.${tag}.extra`,
      `.om1.k1.${iv}.${ct}.${tag}`,
      `om2.k1.${iv}.${ct}.${tag}`,
      `OM1.k1.${iv}.${ct}.${tag}`,
      `om1..${iv}.${ct}.${tag}`,
      `om1.k 1.${iv}.${ct}.${tag}`,
      `om1.${'k'.repeat(65)}.${iv}.${ct}.${tag}`,
    ];
    for (const value of cases) expectCryptoError(() => cipher.decrypt(value, AAD), 'malformed');
  });

  it('reports bad iv/tag lengths and non-canonical base64url parts as malformed, with the key id', () => {
    const sealed = cipher.encrypt('hello', AAD);
    const [, , iv = '', ct = '', tag = ''] = sealed.split('.');
    const cases = [
      `om1.k1.${iv.slice(0, -1)}.${ct}.${tag}`,
      `om1.k1.${iv}AAAA.${ct}.${tag}`,
      `om1.k1.${iv}.${ct}.${tag.slice(0, -2)}`,
      `om1.k1.${iv}.${ct}.${tag}A`,
      `om1.k1.${iv}.${ct}=.${tag}`,
      `om1.k1.${iv}.${ct}.${tag}==`,
      `om1.k1.${iv.replace(/[A-Za-z]/, '+')}.${ct}.${tag}`,
      `om1.k1.${iv}.${ct}.${tag.slice(0, -1)}/`,
      `om1.k1..${ct}.${tag}`,
      `om1.k1.${iv}.${ct}.`,
    ];
    for (const value of cases) {
      const err = expectCryptoError(() => cipher.decrypt(value, AAD), 'malformed');
      expect(err.keyId).toBe('k1');
    }
  });

  it('refuses every single-character change, deletion and truncation of an envelope', () => {
    const alphabet = `${B64URL_ALPHABET}.=`;
    for (const plaintext of ['', 'hello', 'x'.repeat(40)]) {
      const sealed = cipher.encrypt(plaintext, AAD);
      let checked = 0;
      for (let i = 0; i < sealed.length; i++) {
        for (const ch of alphabet) {
          if (ch === sealed[i]) continue;
          const tampered = sealed.slice(0, i) + ch + sealed.slice(i + 1);
          expectCryptoError(() => cipher.decrypt(tampered, AAD));
          checked++;
        }
        expectCryptoError(() => cipher.decrypt(sealed.slice(0, i) + sealed.slice(i + 1), AAD));
        expectCryptoError(() => cipher.decrypt(sealed.slice(0, i), AAD));
      }
      expect(checked).toBeGreaterThan(sealed.length * 60);
      expect(cipher.decrypt(sealed, AAD)).toBe(plaintext);
    }
  });
});

describe('aesGcmCipher: key rotation', () => {
  const oldKey = randomBytes(32);
  const newKey = randomBytes(32);
  const before = aesGcmCipher({ keys: { old: oldKey }, current: 'old' });
  const after = aesGcmCipher({ keys: { old: oldKey, new: newKey }, current: 'new' });

  it('decrypts values made before the rotation and encrypts new ones with the new key', () => {
    const legacy = before.encrypt('refresh-1', AAD);
    expect(after.decrypt(legacy, AAD)).toBe('refresh-1');
    const fresh = after.encrypt('refresh-1', AAD);
    expect(fresh.startsWith('om1.new.')).toBe(true);
    expect(after.decrypt(fresh, AAD)).toBe('refresh-1');
    // The pre-rotation cipher does not know the new key.
    const err = expectCryptoError(() => before.decrypt(fresh, AAD), 'unknown_key');
    expect(err.keyId).toBe('new');
  });

  it('needsReencryption: true for old-key values, false for current-key values, true for garbage', () => {
    expect(after.needsReencryption(before.encrypt('v', AAD))).toBe(true);
    expect(after.needsReencryption(after.encrypt('v', AAD))).toBe(false);
    expect(before.needsReencryption(before.encrypt('v', AAD))).toBe(false);
    expect(before.needsReencryption(after.encrypt('v', AAD))).toBe(true);
    for (const garbage of ['', 'garbage', 'om1.new', 'om1.new.a.b.c', 42 as never, null as never]) {
      expect(after.needsReencryption(garbage)).toBe(true);
    }
  });

  it('a rotation ring with the old key as current still encrypts with the old key', () => {
    const c = aesGcmCipher({ keys: { old: oldKey, new: newKey }, current: 'old' });
    const sealed = c.encrypt('v', AAD);
    expect(sealed.startsWith('om1.old.')).toBe(true);
    expect(before.decrypt(sealed, AAD)).toBe('v');
    expect(c.needsReencryption(after.encrypt('v', AAD))).toBe(true);
  });
});

describe('aesGcmCipher: properties', () => {
  const cipher = aesGcmCipher({ keys: { k1: randomBytes(32), k2: randomBytes(32) }, current: 'k1' });
  const text = fc.oneof(fc.string({ maxLength: 64 }), fc.string({ unit: 'binary', maxLength: 64 }));

  it('decrypt(encrypt(x, aad), aad) === x', () => {
    fc.assert(
      fc.property(text, text, (plaintext, aad) => {
        const sealed = cipher.encrypt(plaintext, aad);
        expect(sealed).toMatch(ENVELOPE);
        expect(cipher.decrypt(sealed, aad)).toBe(plaintext);
      }),
      { numRuns: 500 },
    );
  });

  it('any tampering of the envelope throws a CryptoError and never returns a value', () => {
    const alphabet = `${B64URL_ALPHABET}.`;
    fc.assert(
      fc.property(text, text, mutationArb(alphabet), (plaintext, aad, mutation) => {
        const sealed = cipher.encrypt(plaintext, aad);
        const tampered = applyMutation(sealed, alphabet, mutation);
        expect(tampered).not.toBe(sealed);
        const err = thrown(() => cipher.decrypt(tampered, aad));
        expect(err).toBeInstanceOf(CryptoError);
        expect((err as CryptoError).code).toBe('ERR_CRYPTO');
      }),
      { numRuns: 1000 },
    );
  });

  it('a different aad always throws a CryptoError (decrypt_failed)', () => {
    fc.assert(
      fc.property(text, text, text, (plaintext, aad, otherAad) => {
        fc.pre(aad !== otherAad);
        const sealed = cipher.encrypt(plaintext, aad);
        expectCryptoError(() => cipher.decrypt(sealed, otherAad), 'decrypt_failed');
      }),
      { numRuns: 500 },
    );
  });

  it('strings with lone surrogates are refused, never silently altered', () => {
    // UTF-8 cannot encode a lone surrogate: without a check, it would be replaced by U+FFFD, so the value
    // would come back changed and two different aads would collide.
    const codeUnits = fc.string({
      unit: fc.integer({ min: 0, max: 0xffff }).map((u) => String.fromCharCode(u)),
      maxLength: 16,
    });
    const wellFormed = (s: string) => !/\p{Cs}/u.test(s);
    fc.assert(
      fc.property(codeUnits, codeUnits, (plaintext, aad) => {
        let sealed: string;
        try {
          sealed = cipher.encrypt(plaintext, aad);
        } catch {
          expect(wellFormed(plaintext) && wellFormed(aad)).toBe(false);
          return;
        }
        expect(wellFormed(plaintext) && wellFormed(aad)).toBe(true);
        expect(cipher.decrypt(sealed, aad)).toBe(plaintext);
      }),
      { numRuns: 300 },
    );
  });
});

describe('aesGcmCipher: lone surrogates', () => {
  const cipher = single(randomBytes(32));

  it('refuses to encrypt a plaintext or aad with a lone surrogate', () => {
    for (const [plaintext, aad] of [
      ['secret\uD800', AAD],
      ['secret', 'account\uDC00'],
      ['\uDC00\uD800', ''],
    ] as const) {
      const err = expectCryptoError(() => cipher.encrypt(plaintext, aad), 'malformed');
      expect(err.message).toMatch(/well-formed UTF-16/);
      expect(err.message).not.toContain('secret');
    }
    // Paired surrogates (an emoji) are fine.
    expect(cipher.decrypt(cipher.encrypt('🔐', 'acct-📬'), 'acct-📬')).toBe('🔐');
  });

  it('does not let two aads that differ only in lone surrogates decrypt each other', () => {
    const sealed = cipher.encrypt('v', 'account\uFFFD');
    expectCryptoError(() => cipher.decrypt(sealed, 'account\uD800'), 'decrypt_failed');
    expectCryptoError(() => cipher.decrypt(sealed, 'account\uDBFF'), 'decrypt_failed');
    expect(cipher.decrypt(sealed, 'account\uFFFD')).toBe('v');
  });
});

describe('aesGcmCipher: no key material in output', () => {
  it('JSON.stringify and util.inspect show the key ids and never the keys', () => {
    const a = awkwardKey();
    const b = randomBytes(32);
    const cipher = aesGcmCipher({ keys: { primary: a, legacy_2024: b.toString('hex') }, current: 'primary' });
    const json = JSON.parse(JSON.stringify(cipher)) as Record<string, unknown>;
    expect(json).toEqual({ type: 'aes-256-gcm', current: 'primary', keyIds: ['primary', 'legacy_2024'] });
    const texts = renderings(cipher);
    for (const text of texts) {
      for (const secret of [...keyEncodings(a), ...keyEncodings(b)]) expect(text).not.toContain(secret);
    }
    const inspected = texts[1] ?? '';
    expect(inspected).toContain('primary');
    expect(inspected).toContain('legacy_2024');
    expect(Object.keys(cipher)).toEqual([]);
  });

  it('errors thrown while decrypting carry no key material', () => {
    const key = randomBytes(32);
    const cipher = single(key);
    const sealed = cipher.encrypt('v', AAD);
    const errors = [
      thrown(() => cipher.decrypt(sealed, 'other')),
      thrown(() => cipher.decrypt('om1.zz.a.b.c', AAD)),
      thrown(() => cipher.decrypt('nope', AAD)),
    ];
    for (const err of errors) {
      for (const text of renderings(err)) {
        for (const secret of keyEncodings(key)) expect(text).not.toContain(secret);
      }
    }
  });
});

describe('aesGcmCipher: placeholder keys', () => {
  it.each([
    ['all zero', Buffer.alloc(32, 0)],
    ['all 0xFF', Buffer.alloc(32, 0xff)],
    ['one repeated byte', Buffer.alloc(32, 7)],
  ])('a key that is %s is refused at construction, naming the key, never its value', (_name, key) => {
    for (const input of [key, key.toString('hex'), key.toString('base64')]) {
      expect(() => aesGcmCipher({ keys: { k1: input }, current: 'k1' })).toThrow(
        new ConfigurationError(
          'aesGcmCipher: key "k1" is one byte value repeated, not a random key: generate one with crypto.randomBytes(32)',
        ),
      );
    }
  });
});
