/**
 * Header decoding of the API transports: RFC 2047 encoded words and address display names decode as IMAP
 * (imapflow's ENVELOPE parsing) decodes them, for the same message.
 */
import { parseEnvelope } from 'imapflow/lib/tools.js';
import { describe, expect, it } from 'vitest';
import type { MailMessage } from '../../src/index.js';
import { decodeWords, parseAddresses } from '../../src/mail/message.js';
import { all } from '../support/async.js';
import { mswServer } from '../support/flow.js';
import { FAST_API, gmailSetup, graphSetup } from '../support/mail-api.js';

const server = mswServer();

/** What IMAP reports for a subject and one sender: imapflow's own ENVELOPE parsing of the raw values. */
function imapEnvelope(subject: string, fromName: string, address: string) {
  const [mailbox, host] = address.split('@');
  // ENVELOPE: (date subject (from) (sender) (reply-to) (to) ...), an address being (name adl mailbox host).
  const entry = [
    { value: 'Thu, 03 Dec 2026 12:00:00 +0000' },
    { value: subject },
    [[{ value: fromName }, null, { value: mailbox }, { value: host }]],
  ];
  return parseEnvelope(entry as never);
}

const CASES: readonly (readonly [string, string, string])[] = [
  ['windows-1252 (=80 is the euro sign)', '=?windows-1252?Q?=80uro?=', '€uro'],
  ['ISO-8859-1 Q', '=?ISO-8859-1?Q?caf=E9?=', 'café'],
  ['ISO-8859-1 B', '=?iso-8859-1?B?Y2Fm6Q==?=', 'café'],
  ['UTF-8 B', '=?UTF-8?B?Y2Fmw6k=?=', 'café'],
  ['UTF-8 Q with underscores', '=?utf-8?q?a_b=C3=A9?=', 'a bé'],
  ['a UTF-8 character split across two adjacent Q words', '=?UTF-8?Q?caf=C3?= =?UTF-8?Q?=A9?=', 'café'],
  [
    'a UTF-8 character split across two adjacent B words',
    '=?UTF-8?B?Y2Fmww==?=\r\n =?UTF-8?B?qQ==?=',
    'café',
  ],
  [
    'the whitespace between encoded words dropped, kept around text',
    'Re: =?UTF-8?Q?a?=  =?UTF-8?Q?b?= c',
    'Re: ab c',
  ],
  ['an RFC 2231 language tag ignored', '=?UTF-8*en?Q?hello?=', 'hello'],
  ['plain text untouched', 'Hello world', 'Hello world'],
];

describe('decodeWords', () => {
  it.each(CASES)('%s', async (_name, encoded, decoded) => {
    expect(await decodeWords(encoded)).toBe(decoded);
    expect(await decodeWords(encoded)).toBe(imapEnvelope(encoded, '', 'a@example.com').subject);
  });

  it('an unknown charset does not throw: the bytes are read as UTF-8, as IMAP does', async () => {
    const decoded = await decodeWords('=?x-no-such-charset?Q?abc=C3=A9?=');
    expect(decoded).toBe('abcé');
    expect(decoded).toBe(imapEnvelope('=?x-no-such-charset?Q?abc=C3=A9?=', '', 'a@example.com').subject);
  });

  it.each([
    ['no closing ?=', '=?UTF-8?Q?broken'],
    ['an unknown encoding', '=?UTF-8?X?abc?='],
    ['no encoding', '=?UTF-8??abc?='],
    ['a lone marker', 'Price =? 5'],
  ])('leaves a malformed word as it is (%s)', async (_name, value) => {
    expect(await decodeWords(value)).toBe(value);
  });
});

describe('parseAddresses', () => {
  it('decodes display names (windows-1252, split UTF-8 words, quoted words) and keeps the addresses', async () => {
    expect(
      await parseAddresses(
        '=?windows-1252?Q?=80uro_Desk?= <euro@example.com>, "=?UTF-8?Q?Ren=C3?= =?UTF-8?Q?=A9e?=" <renee@example.com>, bob@example.com',
      ),
    ).toEqual([
      { name: '€uro Desk', address: 'euro@example.com' },
      { name: 'Renée', address: 'renee@example.com' },
      { address: 'bob@example.com' },
    ]);
  });
});

const RAW_FROM_NAME = '=?UTF-8?Q?Ren=C3?= =?UTF-8?Q?=A9e_=E2=82?= =?UTF-8?Q?=AC?=';
const RAW_SUBJECT = '=?windows-1252?Q?=80uro_invoice_?= =?UTF-8?B?Y2Fmw6k=?=';

function rawMessage(): string {
  return [
    `From: ${RAW_FROM_NAME} <renee@example.com>`,
    'To: ada@example.com',
    `Subject: ${RAW_SUBJECT}`,
    'Date: Thu, 03 Dec 2026 12:00:00 +0000',
    'Message-ID: <encoded@example.com>',
    '',
    'Body',
    '',
  ].join('\r\n');
}

describe('API transports decode headers as IMAP does', () => {
  const imap = imapEnvelope(RAW_SUBJECT, RAW_FROM_NAME, 'renee@example.com');

  it('IMAP (imapflow) decodes the reference message', () => {
    expect(imap.subject).toBe('€uro invoice café');
    expect(imap.from?.[0]).toEqual({ name: 'Renée €', address: 'renee@example.com' });
  });

  it.each([
    ['metadata headers', false],
    ['the raw source', true],
  ])('Gmail API, from %s', async (_name, source) => {
    const { auth, accountId, gmail } = await gmailSetup(server);
    gmail.deliver({ raw: rawMessage() });
    const [message] = (await all(
      auth.mailbox(accountId, { api: FAST_API }).fetchUnread({ source }),
    )) as MailMessage[];
    expect(message?.subject).toBe(imap.subject);
    expect(message?.from).toEqual(imap.from);
    expect(message?.to).toEqual([{ address: 'ada@example.com' }]);
  });

  it('Microsoft Graph, whose JSON carries headers already decoded, reports the same strings', async () => {
    const { auth, accountId, graph } = await graphSetup(server, { mailTransport: 'graph' });
    graph.deliver({ subject: '€uro invoice café' });
    const [message] = (await all(auth.mailbox(accountId, { api: FAST_API }).fetchUnread())) as MailMessage[];
    expect(message?.subject).toBe(imap.subject);
  });
});
