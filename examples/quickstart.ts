/**
 * `npm run demo`: the token vault end to end, on embedded parts, narrated.
 *
 * It connects a mailbox (with tokens standing in for an OAuth code exchange), shows what is stored
 * (ciphertext only, bound to the account), loads the tokens back, proves that a tampered or copied blob is
 * refused, rotates the encryption key online, and imports a token encrypted by a Python backend (Fernet).
 *
 * Set TOKEN_KEY (32 bytes, base64) to use your own key; otherwise a random one is made for this run.
 */
import { randomBytes } from 'node:crypto';
import { aesGcmCipher, fernetCipher, isMailboxAuthError, memoryStore, TokenPersistence } from 'oauth-mailbox';

const step = (n: number, text: string) => console.log(`\n\x1b[1m${n}. ${text}\x1b[0m`);
const show = (label: string, value: unknown) => console.log(`   ${label}:`, value);

async function main(): Promise<void> {
  const key = process.env.TOKEN_KEY ?? randomBytes(32).toString('base64');
  const store = memoryStore();
  const cipher = aesGcmCipher({ keys: { k2026: key }, current: 'k2026' });
  const persistence = new TokenPersistence({ store, cipher });

  step(1, 'Connect a mailbox (tokens as an OAuth code exchange would return them)');
  const accessToken = `ya29.demo-${randomBytes(24).toString('base64url')}`;
  const refreshToken = `1//demo-${randomBytes(24).toString('base64url')}`;
  const { account } = await persistence.connect({
    provider: 'google',
    owner: 'user-1',
    email: 'ada@example.com',
    scopes: ['openid', 'email', 'https://mail.google.com/'],
    tokens: { accessToken, refreshToken, expiresAt: Date.now() + 3600_000 },
    metadata: { plan: 'pro' },
  });
  show('account (safe to log: it holds no secret)', account);

  step(2, 'What the store keeps: one AES-256-GCM envelope, bound to this account id');
  const record = await store.getAccount(account.id);
  show('record.secret', record?.secret);
  show('contains the access token?', record?.secret.includes(accessToken));

  step(3, 'Load the tokens back');
  const { tokens } = await persistence.load(account.id);
  show('console.log(tokens)', tokens);
  show('tokens.accessToken matches', tokens?.accessToken === accessToken);

  step(4, 'Refresh without a new refresh token: the stored one is kept');
  await persistence.saveTokens(account.id, {
    accessToken: 'ya29.after-refresh',
    expiresAt: Date.now() + 3600_000,
  });
  show('refresh token kept', (await persistence.load(account.id)).tokens?.refreshToken === refreshToken);

  step(5, 'A blob copied onto another account is refused (AAD)');
  const other = await persistence.connect({
    provider: 'google',
    owner: 'user-2',
    email: 'mallory@example.com',
    tokens: { accessToken: 'ya29.mallory' },
  });
  const otherRecord = await store.getAccount(other.account.id);
  const stolen = await store.getAccount(account.id);
  if (otherRecord && stolen) {
    const { version, updatedAt: _u, ...rest } = otherRecord;
    await store.putAccount({ ...rest, secret: stolen.secret }, { expectedVersion: version });
  }
  try {
    await persistence.load(other.account.id);
    throw new Error('a copied blob decrypted: this must never happen');
  } catch (err) {
    if (!isMailboxAuthError(err, 'ERR_CRYPTO')) throw err;
    show('refused with', `${err.code} (${err.reason}): ${err.message}`);
  }
  await persistence.deleteAccount(other.account.id);

  step(6, 'Rotate the key online: new writes use k2027, old values still decrypt until re-encrypted');
  const rotated = new TokenPersistence({
    store,
    cipher: aesGcmCipher({ keys: { k2026: key, k2027: randomBytes(32) }, current: 'k2027' }),
  });
  show('re-encrypted', await rotated.reencrypt(account.id));
  show('record.secret now starts with', (await store.getAccount(account.id))?.secret.slice(0, 10));

  step(7, 'Import a refresh token that a Python backend encrypted with Fernet');
  const fernetKey = randomBytes(32).toString('base64url');
  const fromPython = fernetCipher({ keys: fernetKey }).encrypt('1//legacy-refresh-token');
  show('legacy Fernet token', `${fromPython.slice(0, 24)}…`);
  const legacyRefresh = fernetCipher({ keys: fernetKey }).decrypt(fromPython);
  const imported = await rotated.connect({
    provider: 'microsoft',
    owner: 'user-1',
    email: 'grace@example.com',
    tokens: { accessToken: 'expired-legacy-access', refreshToken: legacyRefresh, expiresAt: 0 },
  });
  show(
    'imported',
    `${imported.account.email} (${imported.account.status}), is authenticated: ${await rotated.isAuthenticated(imported.account.id)}`,
  );

  console.log('\nDone. Next: OAuth flows, refresh and IMAP/SMTP are listed in the README status table.');
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
