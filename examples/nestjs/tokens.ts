/**
 * The injection tokens of the integrations module. Every dependency is injected by token (`@Inject(TOKEN)`),
 * not by its TypeScript type: that needs no `emitDecoratorMetadata`, which esbuild (tsx, Vitest) and other
 * fast compilers do not emit.
 */

/** The `MailboxAuth` facade from `createMailboxAuth`. */
export const MAILBOX_AUTH = Symbol('MAILBOX_AUTH');
/** {@link IntegrationsOptions}. */
export const INTEGRATIONS_OPTIONS = Symbol('INTEGRATIONS_OPTIONS');
/** {@link SessionOptions}. */
export const SESSION_OPTIONS = Symbol('SESSION_OPTIONS');

/** What the integrations controller needs besides the facade. */
export interface IntegrationsOptions {
  /** The public origin; the callback's redirects stay on it. */
  readonly origin: string;
  /** Where the app writes its log lines (never a token or secret). */
  readonly log: (line: string) => void;
}

/** The demo session cookie's settings. */
export interface SessionOptions {
  /** Signs the cookie. */
  readonly secret: string;
  /** Mark the cookie `Secure` (an https origin). */
  readonly secure: boolean;
}
