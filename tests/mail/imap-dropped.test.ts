/**
 * `fetchUnread` over IMAP on a reused connection that died while idle (found out by the next command):
 * retried once on a new connection, on a real Dovecot behind a proxy that drops the connection on demand.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { MailboxClient } from '../../src/index.js';
import { all } from '../support/async.js';
import { dovecotAvailable } from '../support/dovecot-server.js';
import { LOCAL, useMailSetup } from '../support/mail.js';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js';

const setup = useMailSetup();
const proxies: TcpProxy[] = [];
afterEach(async () => {
  for (const p of proxies.splice(0)) await p.close();
});

describe.skipIf(!dovecotAvailable())('fetchUnread on a dropped IMAP connection (Dovecot)', () => {
  it('retries once on a new connection; a refused command is not retried', async () => {
    const { auth, accountId, deliver, dovecot } = await setup();
    const proxy = await startTcpProxy({ host: '127.0.0.1', port: dovecot.imapPort });
    proxies.push(proxy);
    const mailbox = auth.mailbox(accountId, { imap: { ...LOCAL, port: proxy.port } });
    expect(mailbox).toBeInstanceOf(MailboxClient);
    await deliver('one');
    await deliver('two');
    const subjects = async (options = {}) => (await all(mailbox.fetchUnread(options))).map((m) => m.subject);
    expect(await subjects()).toEqual(['two', 'one']);
    expect(proxy.accepted).toBe(1);
    expect(await subjects()).toEqual(['two', 'one']);
    expect(proxy.accepted).toBe(1); // reused

    proxy.dropOnNextWrite(); // the connection died while idle: the listing's first command finds out
    expect(await subjects()).toEqual(['two', 'one']);
    expect(proxy.accepted).toBe(2);
    expect(mailbox.isConnected()).toBe(true);

    // A command the server refuses (no such mailbox) is its answer, not a drop: thrown, no new connection.
    await expect(subjects({ mailbox: 'No/Such/Folder' })).rejects.toThrow();
    expect(proxy.accepted).toBe(2);
    await mailbox.disconnect();
  });
});
