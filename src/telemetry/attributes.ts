/**
 * The span attributes of each instrumented operation, built in one place so that none carries a secret or
 * personal data: provider ids, account ids, transports, methods and operation names only.
 * @module
 */
import type { Attributes } from '@opentelemetry/api';
import { ATTRIBUTES } from './names.js';

/** A token refresh's span. @internal */
export function refreshSpanAttributes(
  provider: string,
  accountId: string,
  resource: string | undefined,
): Attributes {
  return {
    [ATTRIBUTES.provider]: provider,
    [ATTRIBUTES.accountId]: accountId,
    ...(resource === undefined ? {} : { [ATTRIBUTES.resource]: resource }),
  };
}

/** A code exchange's span (no account id yet: the account is the exchange's result). @internal */
export function codeExchangeSpanAttributes(provider: string): Attributes {
  return { [ATTRIBUTES.provider]: provider };
}

/** An IMAP connection's span. @internal */
export function connectSpanAttributes(accountId: string, transport: 'imap' | 'smtp'): Attributes {
  return { [ATTRIBUTES.accountId]: accountId, [ATTRIBUTES.transport]: transport };
}

/** A mail API request's span (no URL: Graph paths can hold a mailbox address, and ids are the mailbox's). @internal */
export function apiSpanAttributes(
  accountId: string,
  transport: string,
  method: string,
  operation: string,
): Attributes {
  return {
    [ATTRIBUTES.accountId]: accountId,
    [ATTRIBUTES.transport]: transport,
    [ATTRIBUTES.method]: method,
    [ATTRIBUTES.operation]: operation,
  };
}
