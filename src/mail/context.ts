/**
 * The building blocks every mail connector and transport needs.
 * @module
 */
import type { ProviderRegistry } from '../providers/registry.js';
import type { TokenRefresher } from '../refresh/refresher.js';
import type { TokenPersistence } from '../tokens/persistence.js';
import type { ActivityRecorder } from './activity.js';

/**
 * What the mail connectors need: the building blocks of `createMailboxAuth`.
 *
 * @example
 * ```ts
 * const imap = await connectImap({ persistence, registry, refresher }, accountId);
 * ```
 */
export interface MailContext {
  /** Reads the account (address, provider, status). */
  readonly persistence: TokenPersistence;
  /** Resolves the account's provider (mail servers). */
  readonly registry: ProviderRegistry;
  /** Hands out access tokens, and refreshes them when a server refuses one. */
  readonly refresher: TokenRefresher;
  /** Where the clients' activity goes, to be written to the store for the fleet (none: kept per client). @internal */
  readonly activity?: ActivityRecorder;
}
