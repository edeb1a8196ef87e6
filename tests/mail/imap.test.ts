/** IMAP over OAuth against a real Dovecot validating tokens by introspection. */
import { describe, expect, it } from 'vitest';
import {
  MailAuthenticationError,
  MailConnectionError,
  ReauthorizationRequiredError,
} from '../../src/index.js';
import { dovecotAvailable } from '../support/dovecot-server.js';
import { ALICE, LOCAL, useMailSetup } from '../support/mail.js';

const setup = useMailSetup();

describe.skipIf(!dovecotAvailable())('connectImap (Dovecot)', () => {
  it.each([
    ['XOAUTH2', ['xoauth2'] as ('xoauth2' | 'oauthbearer')[]],
    ['OAUTHBEARER', ['oauthbearer'] as ('xoauth2' | 'oauthbearer')[]],
  ])('logs in with %s and a refreshed token', async (_name, mechanisms) => {
    const { auth, accountId, deliver, tokens } = await setup({ mechanisms });
    await deliver('hello');
    const imap = await auth.connectImap(accountId, LOCAL);
    const box = await imap.mailboxOpen('INBOX');
    expect(box.exists).toBe(1);
    expect(tokens.stats.refreshes).toBeGreaterThanOrEqual(1);
    await imap.logout();
  });

  it('requires TLS (STARTTLS) outside allowed hosts, verifying the certificate', async () => {
    const { auth, accountId, dovecot } = await setup();
    await expect(auth.connectImap(accountId)).rejects.toBeInstanceOf(MailConnectionError);
    const viaStartTls = await auth.connectImap(accountId, {
      tls: { ca: dovecot.caPem, servername: 'localhost' },
    });
    expect(viaStartTls.secureConnection || viaStartTls.usable).toBe(true);
    await viaStartTls.logout();
    const implicit = await auth.connectImap(accountId, {
      port: dovecot.imapsPort,
      secure: true,
      tls: { ca: dovecot.caPem, servername: 'localhost' },
    });
    expect(implicit.usable).toBe(true);
    await implicit.logout();
  });

  it('refreshes once and retries when the server rejects a token early', async () => {
    const { auth, accountId, tokens } = await setup();
    await auth.getAccessToken(accountId); // cached, valid for an hour
    tokens.expireAccessTokens(ALICE); // ...but the server no longer accepts it
    const before = tokens.stats.refreshes;
    const imap = await auth.connectImap(accountId, LOCAL);
    expect(tokens.stats.refreshes).toBe(before + 1);
    await imap.logout();
  });

  it('a revoked grant is ReauthorizationRequiredError', async () => {
    const { auth, accountId, tokens } = await setup();
    await auth.getAccessToken(accountId);
    tokens.revoke(ALICE);
    await expect(auth.connectImap(accountId, LOCAL)).rejects.toBeInstanceOf(ReauthorizationRequiredError);
    expect((await auth.getAccount(accountId)).status).toBe('reauth_required');
  });

  it('a token refused even after a refresh is MailAuthenticationError and marks the account', async () => {
    const { auth, accountId } = await setup();
    // Dovecot checks the login user against the token's owner: another user's mailbox is refused.
    const err = await auth.connectImap(accountId, { ...LOCAL, user: 'mallory@example.com' }).catch((e) => e);
    expect(err).toBeInstanceOf(MailAuthenticationError);
    expect(err.protocol).toBe('imap');
    const account = await auth.getAccount(accountId);
    expect(account.status).toBe('error');
    expect(account.lastError?.code).toBe('ERR_MAIL_AUTHENTICATION_FAILED');
  });

  it('an unreachable server is MailConnectionError, and abort is honoured', async () => {
    const { auth, accountId } = await setup();
    await expect(auth.connectImap(accountId, { ...LOCAL, port: 1 })).rejects.toBeInstanceOf(
      MailConnectionError,
    );
    const reason = new Error('stop');
    await expect(auth.connectImap(accountId, { ...LOCAL, signal: AbortSignal.abort(reason) })).rejects.toBe(
      reason,
    );
  });
});
