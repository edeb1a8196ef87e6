/** `connected` and `disconnected` on the facade: from the routes of the flow, with no secret in them. */
import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import type { MailboxAuthEvents } from '../../src/index.js';
import { CLIENT, mswServer, setupAuth } from '../support/flow.js';

const server = mswServer();
const OWNER = { owner: 'user-1' };

describe('connect and disconnect events', () => {
  it('connected on a first connect (created) and on a reconnect (not created); disconnected after disconnect', async () => {
    const { auth, googleFake } = setupAuth(server);
    const connected: MailboxAuthEvents['connected'][] = [];
    const disconnected: MailboxAuthEvents['disconnected'][] = [];
    auth.on('connected', (e) => connected.push(e)).on('disconnected', (e) => disconnected.push(e));
    const connect = async () => {
      const { url } = await auth.startAuthorization('google', { ...OWNER, metadata: { role: 'booking' } });
      return auth.completeAuthorization(
        'google',
        googleFake.approve(url, { email: 'ada@example.com' }),
        OWNER,
      );
    };
    const first = await connect();
    expect(connected).toEqual([
      {
        accountId: first.account.id,
        provider: 'google',
        owner: 'user-1',
        email: 'ada@example.com',
        metadata: { role: 'booking' },
        created: true,
      },
    ]);
    const again = await connect();
    expect(again.account.id).toBe(first.account.id);
    expect(connected[1]).toMatchObject({ accountId: first.account.id, created: false });
    expect(disconnected).toEqual([]);

    const { tokens } = await auth.persistence.load(first.account.id);
    const secrets = [tokens?.accessToken, tokens?.refreshToken, tokens?.idToken, CLIENT.clientSecret];
    const result = await auth.disconnect(first.account.id);
    expect(disconnected).toEqual([
      {
        accountId: first.account.id,
        provider: 'google',
        owner: 'user-1',
        metadata: { role: 'booking' },
        revoked: result.revoked,
      },
    ]);
    // Nothing secret in any payload, however it is printed.
    const printed =
      JSON.stringify([connected, disconnected]) + inspect([connected, disconnected], { depth: 9 });
    for (const secret of secrets) {
      expect(secret).toBeTruthy();
      expect(printed).not.toContain(secret as string);
    }
    // A second disconnect finds no account: no second event.
    await auth.disconnect(first.account.id).catch(() => undefined);
    expect(disconnected).toHaveLength(1);
  });

  it('a throwing listener does not fail the route, and the others still hear it; off() stops one', async () => {
    const { auth, googleFake } = setupAuth(server);
    const heard: string[] = [];
    const quiet = () => heard.push('quiet');
    auth.on('connected', () => {
      throw new Error('host bug');
    });
    auth.on('connected', (e) => heard.push(e.email));
    auth.on('connected', quiet);
    auth.off('connected', quiet);
    const { url } = await auth.startAuthorization('google', OWNER);
    const done = await auth.completeAuthorization(
      'google',
      googleFake.approve(url, { email: 'bob@example.com' }),
      OWNER,
    );
    expect(done.created).toBe(true);
    expect(heard).toEqual(['bob@example.com']);
  });

  it('a failed completion emits nothing', async () => {
    const { auth, googleFake } = setupAuth(server);
    const connected: unknown[] = [];
    auth.on('connected', (e) => connected.push(e));
    const { url } = await auth.startAuthorization('google', OWNER);
    const callback = googleFake.approve(url, { email: 'ada@example.com' });
    await expect(auth.completeAuthorization('google', callback, { owner: 'someone-else' })).rejects.toThrow();
    expect(connected).toEqual([]);
  });
});
