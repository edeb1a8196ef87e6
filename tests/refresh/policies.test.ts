/** The refresher's policy modules on their own: single flight, the per-account lock, the change feed. */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { memoryStore, TokenPersistence } from '../../src/index.js';
import { silentLogger } from '../../src/logger.js';
import { KeyedLock } from '../../src/refresh/account-lock.js';
import { ChangeFeed } from '../../src/refresh/change-feed.js';
import { SingleFlight } from '../../src/refresh/single-flight.js';
import { testCipher } from '../support/auth.js';

function deferred<T>() {
  let resolve: (value: T) => void = () => {};
  let reject: (err: unknown) => void = () => {};
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

describe('SingleFlight', () => {
  it('runs the work once for every caller of a key while it runs, then forgets it', async () => {
    const flights = new SingleFlight<number>(new AbortController().signal);
    const gate = deferred<number>();
    let runs = 0;
    const start = () => {
      runs++;
      return gate.promise;
    };
    const a = flights.wait(flights.flight('k', start, false), undefined);
    const b = flights.wait(flights.flight('k', start, false), undefined);
    expect(flights.size).toBe(1);
    gate.resolve(7);
    expect(await Promise.all([a, b])).toEqual([7, 7]);
    expect(runs).toBe(1);
    expect(flights.size).toBe(0);
  });

  it('aborts the work only when every waiter has given up; one giving up stops only its own wait', async () => {
    const flights = new SingleFlight<number>(new AbortController().signal);
    let workSignal: AbortSignal | undefined;
    const start = (signal: AbortSignal) => {
      workSignal = signal;
      return new Promise<number>((_, reject) =>
        signal.addEventListener('abort', () => reject(signal.reason)),
      );
    };
    const first = new AbortController();
    const second = new AbortController();
    const flight = flights.flight('k', start, true);
    const a = flights.wait(flight, first.signal);
    const b = flights.wait(flight, second.signal);
    first.abort(new Error('first gave up'));
    await expect(a).rejects.toThrow('first gave up');
    expect(workSignal?.aborted).toBe(false);
    second.abort(new Error('second gave up'));
    await expect(b).rejects.toThrow('second gave up');
    expect(workSignal?.aborted).toBe(true);
    await flights.settled();
    expect(flights.size).toBe(0);
  });

  it('aborts running work when the long-lived close signal aborts', async () => {
    const closed = new AbortController();
    const flights = new SingleFlight<number>(closed.signal);
    const work = flights.flight(
      'k',
      (signal) =>
        new Promise<number>((_, reject) => signal.addEventListener('abort', () => reject(signal.reason))),
      true,
    );
    const waiting = flights.wait(work, new AbortController().signal);
    closed.abort(new Error('closed'));
    await expect(waiting).rejects.toThrow('closed');
  });
});

describe('KeyedLock', () => {
  it('runs work of one key one at a time in arrival order, other keys at once', async () => {
    const lock = new KeyedLock();
    const signal = new AbortController().signal;
    const order: string[] = [];
    const gate = deferred<void>();
    const first = lock.run('a', signal, async () => {
      order.push('a1 start');
      await gate.promise;
      order.push('a1 end');
    });
    const second = lock.run('a', signal, async () => {
      order.push('a2');
    });
    await lock.run('b', signal, async () => {
      order.push('b');
    });
    gate.resolve();
    await Promise.all([first, second]);
    expect(order).toEqual(['a1 start', 'b', 'a1 end', 'a2']);
    expect(lock.size).toBe(0);
  });

  it('a caller aborted while queued leaves the queue without running, and releases it on every exit', async () => {
    const lock = new KeyedLock();
    const gate = deferred<void>();
    const holder = lock.run('a', new AbortController().signal, () => gate.promise);
    const quitter = new AbortController();
    let ran = false;
    const queued = lock.run('a', quitter.signal, async () => {
      ran = true;
    });
    quitter.abort(new Error('gave up'));
    await expect(queued).rejects.toThrow('gave up');
    const after = lock.run('a', new AbortController().signal, async () => 'after');
    gate.resolve();
    await holder;
    expect(await after).toBe('after');
    expect(ran).toBe(false);
    // A throwing holder releases too.
    await expect(
      lock.run('a', new AbortController().signal, () => Promise.reject(new Error('boom'))),
    ).rejects.toThrow('boom');
    expect(await lock.run('a', new AbortController().signal, async () => 1)).toBe(1);
    expect(lock.size).toBe(0);
  });
});

describe('ChangeFeed', () => {
  async function setup() {
    const store = memoryStore();
    const persistence = new TokenPersistence({ store, cipher: testCipher(randomBytes(32)) });
    const { account } = await persistence.connect({
      provider: 'google',
      owner: 'u1',
      email: 'ada@example.com',
      tokens: { accessToken: 'a1', refreshToken: 'r1', expiresAt: Date.now() - 1000 },
    });
    return { persistence, id: account.id, feed: new ChangeFeed(persistence, silentLogger) };
  }

  it('keeps a change that arrives between expect and next, with the record it carries', async () => {
    const { persistence, id, feed } = await setup();
    const expectation = feed.expect(id);
    // The first wait starts the feed (polling until it is live).
    await expectation.next(1, new AbortController().signal);
    const second = feed.expect(id);
    await persistence.saveTokens(id, { accessToken: 'a2', expiresAt: Date.now() + 3_600_000 });
    const change = await second.next(60_000, new AbortController().signal);
    expect(change?.kind).toBe('written');
    expect((await change?.open?.())?.tokens?.accessToken).toBe('a2');
    second.dispose();
    expectation.dispose();
    await feed.close();
  });

  it('a wait ends with the abort reason, and dispose leaves nothing registered', async () => {
    const { id, feed } = await setup();
    const expectation = feed.expect(id);
    const controller = new AbortController();
    const waiting = expectation.next(60_000, controller.signal);
    controller.abort(new Error('stop'));
    await expect(waiting).rejects.toThrow('stop');
    expectation.dispose();
    await feed.close();
  });
});
