/**
 * Durable watch positions over IMAP, on a real Dovecot (its own file: the API tests' msw server would catch
 * the local token server's requests): a takeover after a crash and a restart after a deploy.
 */
import type { MemoryStore } from '../../src/index.js';
import { dovecotAvailable } from '../support/dovecot-server.js';
import { describeDurableWatch } from '../support/durable-watch.js';
import { LOCAL, mailSetup } from '../support/mail.js';

describeDurableWatch([
  [
    'IMAP (Dovecot)',
    dovecotAvailable(),
    async () => {
      const setup = await mailSetup();
      return {
        first: setup.auth,
        second: setup.auth,
        store: setup.store as MemoryStore,
        accountId: setup.accountId,
        mailbox: { imap: LOCAL },
        key: 'imap:INBOX',
        deliver: (subject) => setup.deliver(subject),
        close: () => setup.close(),
      };
    },
  ],
]);
