/**
 * The transports a `MailboxClient` can pick by name: the built-in ones (each defined in its own module) and
 * those a host passes to `createMailboxAuth({ transports })`.
 * @internal
 * @module
 */
import { ConfigurationError } from '../errors.js';
import { gmailApiTransport } from './gmail-api.js';
import { graphTransport } from './graph.js';
import { imapTransport } from './imap-transport.js';
import { defineTransport, type TransportDefinition } from './transport.js';

/** The transports of the package, in `MAIL_TRANSPORTS` order. @internal */
export const BUILTIN_TRANSPORTS: readonly TransportDefinition[] = [
  imapTransport,
  gmailApiTransport,
  graphTransport,
];

const BUILTIN_TABLE: ReadonlyMap<string, TransportDefinition> = new Map(
  BUILTIN_TRANSPORTS.map((definition) => [definition.name, definition]),
);

/**
 * The transports by name: the built-in ones and `extra` (each checked by {@link defineTransport}). A name
 * given twice, or a built-in name, is a `ConfigurationError`.
 * @internal
 */
export function transportTable(
  extra: readonly TransportDefinition[] | undefined,
): ReadonlyMap<string, TransportDefinition> {
  if (extra === undefined || extra.length === 0) return BUILTIN_TABLE;
  if (!Array.isArray(extra))
    throw new ConfigurationError('transports must be an array of defineTransport() definitions');
  const table = new Map(BUILTIN_TABLE);
  for (const given of extra) {
    const definition = defineTransport(given);
    if (table.has(definition.name)) {
      throw new ConfigurationError(
        BUILTIN_TABLE.has(definition.name)
          ? `transports: "${definition.name}" is a built-in transport; give yours another name`
          : `transports: "${definition.name}" is defined twice`,
      );
    }
    table.set(definition.name, definition);
  }
  return table;
}

/** `transports` as given, once {@link transportTable} accepts them (for a check at creation). @internal */
export function checkTransports(transports: readonly TransportDefinition[]): readonly TransportDefinition[] {
  transportTable(transports);
  return transports;
}
