/**
 * A message whose callback keeps failing (on the Gmail API emulation): retried a bounded number of times,
 * then reported and skipped, while the messages after it are delivered; a watch stopped during the retries
 * leaves it to the next watch.
 */
import { inspect } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import type { FailedMessage, MailMessage } from '../../src/index.js';
import { waitFor } from '../support/async.js';
import { mswServer } from '../support/flow.js';
import { FAST_API, gmailSetup } from '../support/mail-api.js';

const server = mswServer();
const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});
const MAILBOX = { transport: 'gmail-api', api: FAST_API } as const;
/** Retries without waiting (the backoff's length is not what is tested). */
const NOW = { retries: 3, minDelayMs: 0, maxDelayMs: 0 };

class HandlerError extends Error {
  readonly code = 'E_HANDLER';
}

describe('poison messages', () => {
  it('a failing message is retried, then reported and skipped; later messages arrive in order', async () => {
    const { auth, gmail, accountId } = await gmailSetup(server);
    closers.push(() => auth.close());
    const mailbox = auth.mailbox(accountId, MAILBOX);
    const calls: string[] = [];
    const delivered: string[] = [];
    const failed: FailedMessage[] = [];
    const deadLetters: { message: MailMessage; failure: FailedMessage & { error: unknown } }[] = [];
    mailbox.on('messageFailed', (f) => failed.push(f));
    const watcher = mailbox.watch(
      (message) => {
        calls.push(message.subject as string);
        if (message.subject === 'poison') throw new HandlerError('cannot parse the secret body 12345');
        delivered.push(message.subject as string);
      },
      { retry: NOW, onFailedMessage: (message, failure) => void deadLetters.push({ message, failure }) },
    );
    closers.push(() => watcher.stop());
    await watcher.ready;
    gmail.deliver({ subject: 'first' });
    const poison = gmail.deliver({ subject: 'poison', text: 'the secret body 12345' });
    gmail.deliver({ subject: 'after' });
    await waitFor(() => (delivered.includes('after') ? true : undefined));
    expect(delivered).toEqual(['first', 'after']);
    expect(calls).toEqual(['first', 'poison', 'poison', 'poison', 'poison', 'after']); // 1 + 3 retries
    expect(failed).toEqual([
      { accountId, mailbox: undefined, messageId: poison, attempts: 4, code: 'E_HANDLER' },
    ]);
    expect(deadLetters).toHaveLength(1);
    expect(deadLetters[0]?.message.id).toBe(poison);
    expect(deadLetters[0]?.failure.error).toBeInstanceOf(HandlerError);
    // Nothing of the message or of the error's text is in the report.
    expect(JSON.stringify(failed) + inspect(failed)).not.toContain('secret body');
    expect(mailbox.health()).toMatchObject({ watching: true, failedMessagesLast24h: 1, messagesLast24h: 2 });
    // The watch did not fail for it (no reconnect, no error event) and the position moved past it.
    gmail.deliver({ subject: 'later' });
    await waitFor(() => (delivered.includes('later') ? true : undefined));
    expect(calls.filter((c) => c === 'poison')).toHaveLength(4);
  });

  it('retries 0 skips at the first failure; a failing dead-letter hook is logged and the message still skipped', async () => {
    const { auth, gmail, accountId } = await gmailSetup(server);
    closers.push(() => auth.close());
    const lines: string[] = [];
    const mailbox = auth.mailbox(accountId, {
      ...MAILBOX,
      logger: {
        warn: (fields: unknown, message: string) => lines.push(`${message} ${JSON.stringify(fields)}`),
      } as never,
    });
    let calls = 0;
    const delivered: string[] = [];
    const watcher = mailbox.watch(
      (message) => {
        calls++;
        if (message.subject === 'poison') return Promise.reject(new Error('no'));
        delivered.push(message.subject as string);
      },
      {
        retry: { retries: 0 },
        onFailedMessage: () => {
          throw new Error('dead-letter store down');
        },
      },
    );
    closers.push(() => watcher.stop());
    await watcher.ready;
    gmail.deliver({ subject: 'poison' });
    gmail.deliver({ subject: 'next' });
    await waitFor(() => (delivered.includes('next') ? true : undefined));
    expect(calls).toBe(2);
    expect(lines.some((l) => l.startsWith('onFailedMessage failed'))).toBe(true);
    expect(lines.some((l) => l.startsWith('message handler failed') && l.includes('"code":"Error"'))).toBe(
      true,
    );
  });

  it('a watch stopped while a message is being retried does not skip it: the next watch delivers it', async () => {
    const { auth, gmail, accountId } = await gmailSetup(server);
    closers.push(() => auth.close());
    let failing = true;
    let attempts = 0;
    const delivered: string[] = [];
    let firstAttempt: () => void = () => {};
    const attempted = new Promise<void>((resolve) => {
      firstAttempt = resolve;
    });
    const first = auth.mailbox(accountId, MAILBOX).watch(
      (message) => {
        attempts++;
        firstAttempt();
        if (failing) throw new Error('database down');
        delivered.push(message.subject as string);
      },
      { retry: { retries: 5, minDelayMs: 3_600_000, maxDelayMs: 3_600_000 } }, // waits an hour: stopped first
    );
    await first.ready;
    gmail.deliver({ subject: 'kept' });
    await attempted;
    await first.stop(); // during the hour's wait
    expect(attempts).toBe(1);
    failing = false;
    const second = auth.mailbox(accountId, MAILBOX).watch((message) => {
      delivered.push(message.subject as string);
    });
    closers.push(() => second.stop());
    await waitFor(() => (delivered.includes('kept') ? true : undefined));
    expect(delivered).toEqual(['kept']);
  });

  it('checks the retry options', async () => {
    const { auth, accountId } = await gmailSetup(server);
    closers.push(() => auth.close());
    const mailbox = auth.mailbox(accountId, MAILBOX);
    expect(() => mailbox.watch(() => {}, { retry: { retries: -1 } })).toThrow(
      'retry.retries must be an integer from 0 to 100',
    );
    expect(() => mailbox.watch(() => {}, { retry: { minDelayMs: 10, maxDelayMs: 5 } })).toThrow(
      'retry.maxDelayMs must be an integer from minDelayMs to 3600000 (milliseconds)',
    );
    expect(() => mailbox.watch(() => {}, { onFailedMessage: 'log' as never })).toThrow(
      'onFailedMessage must be a function',
    );
    expect(() => auth.watchOrchestrator({ onMessage: () => {}, retry: { retries: 1.5 } })).toThrow(
      'WatchOrchestrator: retry.retries must be an integer from 0 to 100',
    );
    expect(mailbox.health().watching).toBe(false); // nothing was started by the refused calls
  });

  it('an orchestrator retries, skips and hands the message to its onFailedMessage with the account', async () => {
    const { auth, gmail, accountId } = await gmailSetup(server);
    const delivered: string[] = [];
    const dead: string[] = [];
    const orchestrator = auth.watchOrchestrator({
      leaseTtlMs: 900,
      mailbox: MAILBOX,
      retry: { retries: 1, minDelayMs: 0, maxDelayMs: 0 },
      onMessage: (_id, message) => {
        if (message.subject === 'poison') throw new HandlerError('no');
        delivered.push(message.subject as string);
      },
      onFailedMessage: (id, message, failure) =>
        void dead.push(`${id} ${message.subject} ${failure.attempts}`),
    });
    closers.push(async () => {
      await orchestrator.stopAll();
      await auth.close();
    });
    orchestrator.add(accountId);
    await waitFor(() =>
      orchestrator.health().some((h) => h.state === 'watching' && h.lastSuccessAt !== null)
        ? true
        : undefined,
    );
    gmail.deliver({ subject: 'poison' });
    gmail.deliver({ subject: 'fine' });
    await waitFor(() => (delivered.includes('fine') ? true : undefined));
    expect(dead).toEqual([`${accountId} poison 2`]);
    expect(orchestrator.health()[0]?.failedMessagesLast24h).toBe(1);
  });
});
