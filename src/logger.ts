/**
 * A pino-compatible logger: `logger.info({ accountId }, 'message')`. The library never passes it a secret
 * (only ids, provider, error codes and secret-free messages).
 *
 * @example
 * ```ts
 * import pino from 'pino';
 * const refresher = new TokenRefresher({ ..., logger: pino() });
 * ```
 */
export interface Logger {
  /** Detail. */
  debug(fields: Record<string, unknown>, message: string): void;
  /** Normal events (a token refreshed, a circuit closed). */
  info(fields: Record<string, unknown>, message: string): void;
  /** Failures the library handles or retries (a failed refresh attempt, a store write retried, a lost watch lease). */
  warn(fields: Record<string, unknown>, message: string): void;
  /** Failures that need attention (refreshed tokens kept in memory because the store failed, a circuit opened). */
  error(fields: Record<string, unknown>, message: string): void;
}

/**
 * A logger that drops everything (the default).
 *
 * @example
 * ```ts
 * new TokenRefresher({ persistence, registry, logger: process.env.DEBUG ? consoleLogger : silentLogger });
 * ```
 */
export const silentLogger: Logger = Object.freeze({
  debug() {},
  info() {},
  warn() {},
  error() {},
});
