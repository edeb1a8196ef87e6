/**
 * The names of the library's OpenTelemetry instruments and spans: the one list `docs/operations.md` documents
 * (a test checks that every name appears there).
 * @module
 */

/** The instrumentation scope: the name every meter and tracer of the library is obtained with. @internal */
export const INSTRUMENTATION_SCOPE = 'oauth-mailbox';
/** The package version given with the scope (a test checks it against package.json). @internal */
export const INSTRUMENTATION_VERSION = '0.1.0';

/** Metric names. @internal */
export const METRICS = {
  refreshes: 'oauth_mailbox.token.refreshes',
  refreshDuration: 'oauth_mailbox.token.refresh.duration',
  expiryHorizon: 'oauth_mailbox.token.expiry_horizon',
  leaseWaits: 'oauth_mailbox.token.lease_waits',
  circuitTransitions: 'oauth_mailbox.circuit.transitions',
  circuitState: 'oauth_mailbox.circuit.state',
  apiCalls: 'oauth_mailbox.mail.api.calls',
  apiDuration: 'oauth_mailbox.mail.api.duration',
  apiThrottled: 'oauth_mailbox.mail.api.throttled',
  apiRetryAfter: 'oauth_mailbox.mail.api.retry_after',
  watchDeliveries: 'oauth_mailbox.watch.deliveries',
  watchLag: 'oauth_mailbox.watch.lag',
  watchFailures: 'oauth_mailbox.watch.failures',
} as const;

/** Span names. @internal */
export const SPANS = {
  codeExchange: 'oauth_mailbox.code_exchange',
  refresh: 'oauth_mailbox.token.refresh',
  imapConnect: 'oauth_mailbox.imap.connect',
  smtpSend: 'oauth_mailbox.smtp.send',
  apiCall: 'oauth_mailbox.mail.api.call',
} as const;

/** Attribute keys (no secret and no personal data ever goes into one: ids, codes and classes only). @internal */
export const ATTRIBUTES = {
  provider: 'oauth_mailbox.provider',
  outcome: 'oauth_mailbox.outcome',
  resource: 'oauth_mailbox.resource',
  accountId: 'oauth_mailbox.account.id',
  transport: 'oauth_mailbox.transport',
  operation: 'oauth_mailbox.operation',
  circuitState: 'oauth_mailbox.circuit.state',
  statusClass: 'http.response.status_class',
  statusCode: 'http.response.status_code',
  method: 'http.request.method',
  errorType: 'error.type',
} as const;
