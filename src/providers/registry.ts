import { inspect } from 'node:util';
import { ConfigurationError, UnknownProviderError } from '../errors.js';
import type { OAuthProvider } from './types.js';

/**
 * A registry entry for a "connect your mailbox" page.
 *
 * @example
 * ```ts
 * const buttons = auth.listProviders().map((p: ProviderSummary) => `<a href="/oauth/${p.id}/start">${p.displayName}</a>`);
 * ```
 */
export interface ProviderSummary {
  /** The registry key, as used in routes (`/oauth/<id>/start`). */
  readonly id: string;
  /** The name to show. */
  readonly displayName: string;
}

interface Entry {
  displayName: string;
  provider?: OAuthProvider;
  factory?: () => OAuthProvider;
}

const ID = /^[A-Za-z0-9_.-]{1,64}$/;

/**
 * Providers by key. Register instances, or factories that run on first use (so an unused provider's
 * configuration is never touched). A duplicate key is a `ConfigurationError`; an unknown key an
 * `UnknownProviderError`.
 *
 * @example
 * ```ts
 * import { ProviderRegistry, google, microsoft } from 'oauth-mailbox';
 * const registry = new ProviderRegistry([google({ clientId, clientSecret, redirectUri })]);
 * registry.register('microsoft', () => microsoft({ ...msConfig }), { displayName: 'Microsoft' });
 * registry.list(); // [{ id: 'google', displayName: 'Google' }, { id: 'microsoft', displayName: 'Microsoft' }]
 * ```
 */
export class ProviderRegistry {
  readonly #entries = new Map<string, Entry>();

  constructor(providers: Iterable<OAuthProvider> = []) {
    for (const provider of providers) this.register(provider);
  }

  /** Register a provider under its `id`, or a factory under `id`. */
  register(provider: OAuthProvider): this;
  register(id: string, factory: () => OAuthProvider, options?: { readonly displayName?: string }): this;
  register(
    providerOrId: OAuthProvider | string,
    factory?: () => OAuthProvider,
    options: { readonly displayName?: string } = {},
  ): this {
    const id = typeof providerOrId === 'string' ? providerOrId : providerOrId?.id;
    if (typeof id !== 'string' || !ID.test(id)) {
      throw new ConfigurationError('ProviderRegistry: a provider id must match /^[A-Za-z0-9_.-]{1,64}$/');
    }
    if (this.#entries.has(id)) {
      throw new ConfigurationError(`ProviderRegistry: a provider is already registered as "${id}"`);
    }
    if (typeof providerOrId === 'string') {
      if (typeof factory !== 'function')
        throw new ConfigurationError(`ProviderRegistry: the factory of "${id}" must be a function`);
      this.#entries.set(id, { displayName: options.displayName ?? id, factory });
    } else {
      this.#entries.set(id, { displayName: providerOrId.displayName, provider: providerOrId });
    }
    return this;
  }

  /** The provider registered as `id`; runs its factory on first use. */
  get(id: string): OAuthProvider {
    const entry = this.#entries.get(id);
    if (entry === undefined) {
      throw new UnknownProviderError(`No provider is registered as "${String(id).slice(0, 64)}"`, {
        providerId: String(id).slice(0, 64),
      });
    }
    if (entry.provider === undefined) {
      const provider = (entry.factory as () => OAuthProvider)();
      if (provider?.id !== id) {
        throw new ConfigurationError(
          `ProviderRegistry: the factory of "${id}" returned a provider with another id`,
        );
      }
      entry.provider = provider;
      entry.displayName = provider.displayName;
    }
    return entry.provider;
  }

  /** Whether `id` is registered. */
  has(id: string): boolean {
    return this.#entries.has(id);
  }

  /** Every registered provider's id and display name, in registration order. */
  list(): ProviderSummary[] {
    return [...this.#entries].map(([id, entry]) => ({ id, displayName: entry.displayName }));
  }

  /** The registered providers, instantiating lazy ones. */
  providers(): OAuthProvider[] {
    return [...this.#entries.keys()].map((id) => this.get(id));
  }

  /** @internal */
  [inspect.custom](): string {
    return `ProviderRegistry { ${this.list()
      .map((p) => p.id)
      .join(', ')} }`;
  }
}
