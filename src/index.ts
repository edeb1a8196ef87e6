/**
 * oauth-mailbox: connect users' mailboxes with OAuth, keep their tokens encrypted and fresh, and use them
 * for IMAP and SMTP.
 *
 * @packageDocumentation
 */

export { AesGcmCipher, type AesGcmCipherOptions, aesGcmCipher } from './crypto/aes-gcm.js';
export type { Cipher } from './crypto/cipher.js';
export { FernetCipher, type FernetCipherOptions, fernetCipher } from './crypto/fernet.js';
export type { KeyInput } from './crypto/keys.js';
export {
  AccountNotFoundError,
  AuthorizationDeniedError,
  AuthorizationResponseError,
  type CauseSummary,
  ClosedError,
  ConfigurationError,
  CryptoError,
  type CryptoErrorReason,
  ERROR_CODES,
  type ErrorCategory,
  errorCategory,
  InvalidArgumentError,
  InvalidStateError,
  type InvalidStateReason,
  isMailboxAuthError,
  MailAuthenticationError,
  MailboxAuthError,
  type MailboxAuthErrorByCode,
  type MailboxAuthErrorCode,
  type MailboxAuthErrorOptions,
  MailConnectionError,
  type MailProtocol,
  MailRequestError,
  ProviderUnavailableError,
  ReauthorizationRequiredError,
  StorageError,
  TokenExchangeError,
  TokenExpiredError,
  TokenRefreshError,
  UnknownProviderError,
  VersionConflictError,
} from './errors.js';
export { TypedEvents } from './events.js';
export { AuthorizationFlow } from './flow/authorization.js';
export type * from './flow/authorization-options.js';
export { type CallbackInput, MAX_PARAMETER_LENGTH, MAX_QUERY_LENGTH } from './flow/callback.js';
export {
  buildReturnUrl,
  type CallbackOutcome,
  isLoopback,
  type RedirectValidationOptions,
  validateRedirectUris,
} from './flow/redirects.js';
export { parseRetryAfter } from './http/retry-after.js';
export { type Logger, silentLogger } from './logger.js';
export type { MailApiOptions } from './mail/api-http.js';
export { MailboxClient, type MailboxClientContext } from './mail/client.js';
export type * from './mail/client-options.js';
export type { MailContext } from './mail/context.js';
export { connectImap } from './mail/imap.js';
export type { MailAddress, MailMessage, SentMail } from './mail/message.js';
export {
  type WatchAddOptions,
  type WatchHealth,
  WatchOrchestrator,
  type WatchOrchestratorOptions,
  type WatchState,
} from './mail/orchestrator.js';
export { buildOAuthBearer, buildXOAuth2 } from './mail/sasl.js';
export type { MailConnectOptions } from './mail/settings.js';
export { createSmtpTransport, type SmtpTransport, toSmtpError } from './mail/smtp.js';
export {
  defineTransport,
  type FetchUnreadRequest,
  type MailTransportDriver,
  type TransportContext,
  type TransportDefinition,
  type WatchRun,
} from './mail/transport.js';
export {
  createMailboxAuth,
  type MailboxAuth,
  type MailboxAuthEvents,
  type MailboxAuthOptions,
} from './mailbox-auth.js';
export {
  type AccountHealth,
  accountHealth,
  type HealthOptions,
  type HealthReport,
  health,
} from './operations/health.js';
export { type HealthHandlerOptions, healthHandler } from './operations/health-handler.js';
export type { FleetMailboxHealth, MailboxHealthOptions } from './operations/mailbox-health.js';
export {
  type FleetProgress,
  MAX_FLEET_CONCURRENCY,
  type RefreshExpiringOptions,
  type RefreshReport,
  refreshExpiring,
} from './operations/refresh-expiring.js';
export { type RotateKeysOptions, type RotateKeysReport, rotateKeys } from './operations/rotate-keys.js';
export { definePreset, OpenIdClientProvider } from './providers/base.js';
export type { ProviderDefinition, ProviderServer } from './providers/definition.js';
export { GMAIL_API_SCOPES, GOOGLE, type GoogleOptions, google } from './providers/google.js';
export { MICROSOFT_GRAPH_SCOPES, type MicrosoftOptions, microsoft } from './providers/microsoft.js';
export { type OAuth2Options, oauth2 } from './providers/oauth2.js';
export { type OidcOptions, oidc } from './providers/oidc.js';
export { ProviderRegistry, type ProviderSummary } from './providers/registry.js';
export type * from './providers/types.js';
export { yahoo } from './providers/yahoo.js';
export type { CircuitBreakerOptions, CircuitSnapshot, CircuitState } from './refresh/circuit-breaker.js';
export {
  AccessToken,
  type GetAccessTokenOptions,
  type RefreshOutcome,
  type RefreshRetryOptions,
  TokenRefresher,
  type TokenRefresherEvents,
  type TokenRefresherOptions,
} from './refresh/refresher.js';
export { refreshTokenGrant, type TokenRequest, type TokenSource } from './refresh/token-source.js';
export {
  ACCOUNT_STATUSES,
  type AccountChange,
  type AccountCountQuery,
  type AccountCounts,
  type AccountErrorInfo,
  type AccountFilter,
  type AccountIdentity,
  type AccountPage,
  type AccountRecord,
  type AccountRecordInput,
  type AccountStatus,
  type AccountStore,
  type AccountWatch,
  type JsonValue,
  type Lease,
  type LeasedRead,
  type ListOptions,
  type MailboxActivity,
  type MailboxActivityError,
  type MailboxActivityTotals,
  type MetadataValue,
  type PutAccountOptions,
  type ReadAndLeaseOptions,
} from './store/account-store.js';
export { type IterateAccountsOptions, iterateAccounts } from './store/iterate.js';
export { MemoryStore, type MemoryStoreOptions, memoryStore } from './store/memory.js';
export type { PutStateOptions, StateStore, StoredState } from './store/state-store.js';
export { type StoreInput, storeInput } from './store/store-input.js';
export type { NormalizedList } from './store/validate.js';
export type { TelemetryOptions } from './telemetry/telemetry.js';
export { type MailboxAccount, toMailboxAccount } from './tokens/account.js';
export {
  type AccountChangeEvent,
  type ConnectAccountInput,
  type FailureInfo,
  type LeasedAccount,
  type SavedTokens,
  type SaveTokensOptions,
  type StoredAccount,
  TokenPersistence,
  type TokenPersistenceOptions,
} from './tokens/persistence.js';
export {
  ResourceToken,
  type ResourceTokenInput,
  TokenSet,
  type TokenSetInput,
} from './tokens/token-set.js';
export { type BuiltinMailTransport, MAIL_TRANSPORTS, type MailTransport } from './transport-names.js';
