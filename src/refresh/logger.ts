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
  debug(fields: Record<string, unknown>, message: string): void;
  info(fields: Record<string, unknown>, message: string): void;
  warn(fields: Record<string, unknown>, message: string): void;
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
