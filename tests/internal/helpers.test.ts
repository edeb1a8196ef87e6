/** The shared internal helpers: every abort listener is removed once its work settles; backoff doubles, caps, resets. */
import { getEventListeners } from 'node:events';
import { describe, expect, it } from 'vitest';
import { linkSignals, listenForAbort, raceAbort } from '../../src/internal/abort.js';
import { Backoff, backoffDelay } from '../../src/internal/backoff.js';
import { delay } from '../../src/internal/timers.js';

describe('abort helpers', () => {
  it('raceAbort removes its listener when the work resolves, rejects, or the signal aborts', async () => {
    const controller = new AbortController();
    const { signal } = controller;
    await expect(raceAbort(Promise.resolve(1), signal)).resolves.toBe(1);
    await expect(raceAbort(Promise.reject(new Error('boom')), signal)).rejects.toThrow('boom');
    expect(getEventListeners(signal, 'abort')).toHaveLength(0);
    const pending = raceAbort(new Promise(() => {}), signal);
    expect(getEventListeners(signal, 'abort')).toHaveLength(1);
    controller.abort(new Error('stopped'));
    await expect(pending).rejects.toThrow('stopped');
    expect(getEventListeners(signal, 'abort')).toHaveLength(0);
    // Already aborted: rejects with the reason at once.
    await expect(raceAbort(new Promise(() => {}), signal)).rejects.toThrow('stopped');
  });

  it('listenForAbort calls at once on an aborted signal and its disposer removes the listener', () => {
    const controller = new AbortController();
    let calls = 0;
    const stop = listenForAbort(controller.signal, () => calls++);
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(1);
    stop();
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
    controller.abort();
    expect(calls).toBe(0);
    listenForAbort(controller.signal, () => calls++);
    expect(calls).toBe(1);
  });

  it('delay rejects with the reason of an aborted signal and leaves no listener', async () => {
    const controller = new AbortController();
    const waiting = delay(60_000, controller.signal);
    controller.abort(new Error('gone'));
    await expect(waiting).rejects.toThrow('gone');
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
    await expect(delay(0, controller.signal)).resolves.toBeUndefined();
  });
});

describe('linkSignals', () => {
  it('aborts with the reason of whichever source aborts first', () => {
    const a = new AbortController();
    const b = new AbortController();
    const link = linkSignals([a.signal, undefined, b.signal]);
    expect(link.signal.aborted).toBe(false);
    const reason = new Error('b first');
    b.abort(reason);
    expect(link.signal.aborted).toBe(true);
    expect(link.signal.reason).toBe(reason);
    a.abort(new Error('later'));
    expect(link.signal.reason).toBe(reason);
  });

  it('is aborted at once by an already aborted source, and links nothing then', () => {
    const long = new AbortController();
    const done = AbortSignal.abort(new Error('already'));
    const link = linkSignals([long.signal, done]);
    expect(link.signal.aborted).toBe(true);
    expect((link.signal.reason as Error).message).toBe('already');
    expect(getEventListeners(long.signal, 'abort')).toHaveLength(0);
  });

  it('leaves no listener on a long-lived source once disposed (unlike AbortSignal.any, nothing is retained)', () => {
    const long = new AbortController();
    for (let i = 0; i < 1000; i++) {
      const link = linkSignals([new AbortController().signal, long.signal]);
      link.dispose();
      link.dispose(); // idempotent
    }
    expect(getEventListeners(long.signal, 'abort')).toHaveLength(0);
    const live = linkSignals([long.signal]);
    expect(getEventListeners(long.signal, 'abort')).toHaveLength(1);
    live.dispose();
    long.abort();
    expect(live.signal.aborted).toBe(false); // disposed: no longer linked
  });
});

describe('backoff', () => {
  it('doubles from the first delay up to the largest, and starts over after reset', () => {
    const backoff = new Backoff({ minDelayMs: 50, maxDelayMs: 300, jitter: false });
    expect([backoff.next(), backoff.next(), backoff.next(), backoff.next(), backoff.next()]).toEqual([
      50, 100, 200, 300, 300,
    ]);
    backoff.reset();
    expect(backoff.next()).toBe(50);
  });

  it('jitter draws between half the delay and all of it', () => {
    for (let attempt = 0; attempt < 20; attempt++) {
      const ms = backoffDelay(attempt % 5, { minDelayMs: 100, maxDelayMs: 1000 });
      const base = Math.min(100 * 2 ** (attempt % 5), 1000);
      expect(ms).toBeGreaterThanOrEqual(base / 2);
      expect(ms).toBeLessThanOrEqual(base);
    }
  });
});
