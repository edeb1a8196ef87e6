/** WatchOrchestrator against a real Dovecot: two instances split the accounts; a crash is taken over. */
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigurationError, InvalidArgumentError, type WatchOrchestrator } from '../../src/index.js';
import { waitFor } from '../support/async.js';
import { dovecotAvailable } from '../support/dovecot-server.js';
import { type MailSetup, mailSetup } from '../support/mail.js';

const open: MailSetup[] = [];
const orchestrators: WatchOrchestrator[] = [];
afterEach(async () => {
  for (const o of orchestrators.splice(0)) await o.stopAll();
  for (const s of open.splice(0)) await s.close();
});

const EMAILS = ['bob@example.com', 'carol@example.com', 'dave@example.com'];
const LOCAL = { allowInsecureHosts: ['127.0.0.1'] };

describe.skipIf(!dovecotAvailable())('WatchOrchestrator (Dovecot)', () => {
  it('splits accounts between two instances by leases, delivers once, and takes over a crashed instance', async () => {
    const setup = await mailSetup({ extraEmails: EMAILS });
    open.push(setup);
    const ids = [...setup.accountIds.values()];
    const received: { instance: string; accountId: string; subject: string }[] = [];
    const make = (name: string) => {
      const o = setup.auth.watchOrchestrator({
        holderId: name,
        leaseTtlMs: 900,
        maxConcurrentConnects: 2,
        mailbox: { imap: LOCAL },
        onMessage: (accountId, message) => {
          received.push({ instance: name, accountId, subject: message.subject as string });
        },
      });
      orchestrators.push(o);
      for (const id of ids) o.add(id);
      return o;
    };
    const a = make('instance-a');
    const b = make('instance-b');
    const watching = () => [...a.health(), ...b.health()].filter((h) => h.state === 'watching');
    await waitFor(() => (watching().length === ids.length ? true : undefined));
    // Each account is watched by exactly one instance.
    expect(new Set(watching().map((h) => h.accountId)).size).toBe(ids.length);
    // Each watcher's first session is up (its baseline taken: a message delivered now is new to it).
    await waitFor(() => (watching().every((h) => h.lastSuccessAt !== null) ? true : undefined));
    const emails = [...setup.accountIds.keys()];
    const subjects = (prefix: string) =>
      received.filter((r) => r.subject.startsWith(prefix)).map((r) => r.subject);
    for (const email of emails) await setup.deliver(`for ${email}`, { to: email });
    await waitFor(() => (received.length >= ids.length ? true : undefined));
    // Each watcher delivers in order: once it has delivered a later message, a second delivery of the
    // first would be in already.
    for (const email of emails) await setup.deliver(`later for ${email}`, { to: email });
    await waitFor(() => (subjects('later for ').length >= ids.length ? true : undefined));
    expect(subjects('for ').sort()).toEqual(emails.map((e) => `for ${e}`).sort()); // exactly once
    expect(subjects('later for ').sort()).toEqual(emails.map((e) => `later for ${e}`).sort());
    expect(received).toHaveLength(2 * ids.length);
    // Instance A "crashes": its leases are not released; B picks its accounts up within the lease TTL.
    const fromA = a
      .health()
      .filter((h) => h.state === 'watching')
      .map((h) => h.accountId);
    await a.stopAll({ releaseLeases: false });
    await waitFor(
      () => (b.health().filter((h) => h.state === 'watching').length === ids.length ? true : undefined),
      8000,
    );
    const email =
      [...setup.accountIds].find(([, id]) => id === fromA[0])?.[0] ?? [...setup.accountIds.keys()][0];
    await setup.deliver('after the crash', { to: email as string });
    await waitFor(() => (received.some((r) => r.subject === 'after the crash') ? true : undefined));
    expect(received.find((r) => r.subject === 'after the crash')?.instance).toBe('instance-b');
    expect(b.health().every((h) => h.leased)).toBe(true);
  }, 40_000);

  it('remove and refresh restart a watcher; a revoked account is reported and stops', async () => {
    const setup = await mailSetup({ extraEmails: ['erin@example.com'] });
    open.push(setup);
    const stopped: string[] = [];
    const received: string[] = [];
    const o = setup.auth.watchOrchestrator({
      leaseTtlMs: 900,
      mailbox: { imap: LOCAL, renewBeforeExpiryMs: 1000 },
      onMessage: (_id, m) => {
        received.push(m.subject as string);
      },
      onStopped: (id) => stopped.push(id),
    });
    orchestrators.push(o);
    const alice = setup.accountId;
    const erin = setup.accountIds.get('erin@example.com') as string;
    o.add(alice);
    o.add(erin);
    o.add(alice); // idempotent
    await waitFor(() => (o.health().filter((h) => h.state === 'watching').length === 2 ? true : undefined));
    await o.refresh(alice);
    // The new watcher's first session is up (a new client: no success before it).
    await waitFor(() => {
      const health = o.health().find((h) => h.accountId === alice);
      return health?.state === 'watching' && health.lastSuccessAt !== null ? true : undefined;
    });
    await setup.deliver('after refresh');
    await waitFor(() => (received.includes('after refresh') ? true : undefined));
    await o.remove(erin);
    expect(o.health().map((h) => h.accountId)).toEqual([alice]);
    setup.tokens.revoke('alice@example.com');
    setup.tokens.expireAccessTokens('alice@example.com');
    await o.refresh(alice);
    await waitFor(() => (stopped.includes(alice) ? true : undefined), 10_000);
    expect(o.health()[0]?.state).toBe('stopped');
  }, 40_000);

  it('validates its options', async () => {
    const setup = await mailSetup();
    open.push(setup);
    expect(() => setup.auth.watchOrchestrator({} as never)).toThrow(ConfigurationError);
    expect(() => setup.auth.watchOrchestrator({ onMessage: () => {}, leaseTtlMs: 10 })).toThrow(
      ConfigurationError,
    );
    expect(() => setup.auth.watchOrchestrator({ onMessage: () => {}, maxConcurrentConnects: 0 })).toThrow(
      ConfigurationError,
    );
    const o = setup.auth.watchOrchestrator({ onMessage: () => {} });
    expect(() => o.add('')).toThrow(InvalidArgumentError);
    await o.stopAll();
    expect(() => o.add('x')).toThrow(InvalidArgumentError);
  });
});
