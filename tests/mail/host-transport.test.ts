/**
 * A transport defined outside the package (tests/support/memory-transport.ts, through the public
 * `defineTransport` entry only) works like the built-in ones: picked by name, tokens from the refresher,
 * fetch / mark / send / watch through `MailboxClient`, and misconfiguration refused with typed errors.
 */
import { randomBytes } from 'node:crypto';
import { setupServer } from 'msw/node';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  aesGcmCipher,
  createMailboxAuth,
  definePreset,
  defineTransport,
  GOOGLE,
  type MailMessage,
  memoryStore,
  type ProviderOptions,
} from '../../src/index.js';
import { fakeGoogle } from '../../src/testing/index.js';
import { CLIENT, GOOGLE_REDIRECT } from '../support/flow.js';
import { MemoryMailServer, memoryTransport } from '../support/memory-transport.js';

const server = setupServer();
beforeAll(() => server.listen({ onUnhandledRequest: 'error' }));
afterEach(() => server.resetHandlers());
afterAll(() => server.close());

const ADA = 'ada@example.com';

/** A host's preset: Google's endpoints, mail through the host's `memory` transport. */
const memoryMail = (options: ProviderOptions) =>
  definePreset(
    { ...GOOGLE, id: 'memory-mail', mailTransport: 'memory', mailTransports: ['memory', 'imap'] },
    options,
  );

async function setup() {
  const google = fakeGoogle(CLIENT);
  server.use(...google.handlers());
  const mail = new MemoryMailServer(google);
  const auth = createMailboxAuth({
    providers: [memoryMail({ ...CLIENT, redirectUri: GOOGLE_REDIRECT })],
    store: memoryStore(),
    cipher: aesGcmCipher({ keys: { k1: randomBytes(32) }, current: 'k1' }),
    transports: [memoryTransport(mail)],
    refresh: { retry: { retries: 0 } },
  });
  const { url } = await auth.startAuthorization('memory-mail', { owner: 'u1' });
  const { account } = await auth.completeAuthorization('memory-mail', google.approve(url, { email: ADA }), {
    owner: 'u1',
  });
  return { auth, google, mail, accountId: account.id };
}

async function all<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

describe('a transport defined by the host', () => {
  it('is the preset default: fetch, mark read and send go through it with the refresher tokens', async () => {
    const { auth, mail, accountId } = await setup();
    mail.deliver(ADA, 'first');
    mail.deliver(ADA, 'second');
    const mailbox = auth.mailbox(accountId);
    expect(await mailbox.transport()).toBe('memory');
    expect((await all(mailbox.fetchUnread())).map((m) => m.subject)).toEqual(['second', 'first']);
    expect((await all(mailbox.fetchUnread({ order: 'oldest', max: 1 }))).map((m) => m.subject)).toEqual([
      'first',
    ]);
    await mailbox.markAsRead('m1');
    expect((await all(mailbox.fetchUnread())).map((m) => m.subject)).toEqual(['second']);
    const sent = await mailbox.send({ to: 'bob@example.com', subject: 'Hi', text: 'Hello' });
    expect(sent).toMatchObject({ transport: 'memory', accepted: ['bob@example.com'] });
    expect(mail.sent).toEqual([{ from: ADA, to: 'bob@example.com', subject: 'Hi' }]);
    expect(mail.refused).toBe(0); // every token it saw was one the provider issued for the mailbox
    expect(mailbox.isConnected()).toBe(true);
    expect(mailbox.health()).toMatchObject({ connected: true, lastError: null });
  });

  it('is watched by the client loop: messages arrive in order, the cursor advances, stop ends it', async () => {
    const { auth, mail, accountId } = await setup();
    mail.deliver(ADA, 'before the watch');
    const mailbox = auth.mailbox(accountId, { transport: 'memory' });
    const seen: MailMessage[] = [];
    let arrived: () => void = () => {};
    const two = new Promise<void>((resolve) => {
      arrived = resolve;
    });
    const watcher = mailbox.watch(async (message) => {
      seen.push(message);
      if (seen.length === 2) arrived();
    });
    await watcher.ready;
    mail.deliver(ADA, 'one');
    mail.deliver(ADA, 'two');
    await two;
    expect(seen.map((m) => m.subject)).toEqual(['one', 'two']);
    await watcher.stop();
    await watcher.done;
    expect(watcher.cursor).toBe('3'); // after the baseline (1 message), two delivered
    expect(mailbox.health()).toMatchObject({ watching: false, messagesLast24h: 2 });
  });

  it('sees a revoked grant as the built-ins do: a re-authorization error from the forced refresh', async () => {
    const { auth, google, accountId } = await setup();
    const mailbox = auth.mailbox(accountId);
    await mailbox.connect();
    google.revokeUser(ADA);
    const failure = await all(mailbox.fetchUnread()).catch((err: unknown) => err);
    expect(failure).toMatchObject({ category: 'reauthorization' });
    expect(mailbox.health().lastError?.code).toBe((failure as { code: string }).code);
  });

  it('refuses misconfiguration with typed errors, before anything runs', async () => {
    const { auth, accountId } = await setup();
    expect(() => auth.mailbox(accountId, { transport: 'jmap' })).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT', message: expect.stringContaining('"memory"') }),
    );
    const base = {
      providers: [],
      store: memoryStore(),
      cipher: aesGcmCipher({ keys: { k1: randomBytes(32) }, current: 'k1' }),
    };
    const create = () => ({ name: 'x', isConnected: () => false }) as never;
    expect(() => createMailboxAuth({ ...base, transports: [{ name: 'imap', create }] })).toThrow(
      expect.objectContaining({ code: 'ERR_CONFIGURATION', message: expect.stringContaining('built-in') }),
    );
    const twice = defineTransport({ name: 'twice', create });
    expect(() => createMailboxAuth({ ...base, transports: [twice, twice] })).toThrow(
      expect.objectContaining({ code: 'ERR_CONFIGURATION', message: expect.stringContaining('twice') }),
    );
    expect(() => defineTransport({ name: 'Not A Name', create })).toThrow(
      expect.objectContaining({ code: 'ERR_CONFIGURATION' }),
    );
    expect(() => defineTransport({ name: 'nocreate' } as never)).toThrow(
      expect.objectContaining({ code: 'ERR_CONFIGURATION' }),
    );
  });

  it('a provider naming a transport nobody defined fails at first use with ERR_CONFIGURATION', async () => {
    const google = fakeGoogle(CLIENT);
    server.use(...google.handlers());
    const auth = createMailboxAuth({
      providers: [memoryMail({ ...CLIENT, redirectUri: GOOGLE_REDIRECT })],
      store: memoryStore(),
      cipher: aesGcmCipher({ keys: { k1: randomBytes(32) }, current: 'k1' }),
    });
    const { url } = await auth.startAuthorization('memory-mail', { owner: 'u1' });
    const { account } = await auth.completeAuthorization('memory-mail', google.approve(url, { email: ADA }), {
      owner: 'u1',
    });
    const failure = await auth
      .mailbox(account.id)
      .transport()
      .catch((err: unknown) => err);
    expect(failure).toMatchObject({
      code: 'ERR_CONFIGURATION',
      message: expect.stringContaining('"memory"'),
    });
  });

  it('a driver whose name is not its definition name is refused', async () => {
    const google = fakeGoogle(CLIENT);
    server.use(...google.handlers());
    const mail = new MemoryMailServer(google);
    const real = memoryTransport(mail);
    const auth = createMailboxAuth({
      providers: [memoryMail({ ...CLIENT, redirectUri: GOOGLE_REDIRECT })],
      store: memoryStore(),
      cipher: aesGcmCipher({ keys: { k1: randomBytes(32) }, current: 'k1' }),
      transports: [
        defineTransport({
          name: 'memory',
          create: async (context) => ({
            ...(await real.create(context)),
            name: 'imap',
            isConnected: () => false,
          }),
        }),
      ],
    });
    const { url } = await auth.startAuthorization('memory-mail', { owner: 'u1' });
    const { account } = await auth.completeAuthorization('memory-mail', google.approve(url, { email: ADA }), {
      owner: 'u1',
    });
    await expect(auth.mailbox(account.id).connect()).rejects.toMatchObject({ code: 'ERR_CONFIGURATION' });
  });
});
