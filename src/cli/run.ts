/**
 * The operator CLI: `oauth-mailbox list | health | refresh | rotate-keys`.
 * @module
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { isMailboxAuthError } from '../errors.js';
import type { MailboxAuth } from '../mailbox-auth.js';
import { MAX_FLEET_CONCURRENCY } from '../operations/refresh-expiring.js';
import { ACCOUNT_STATUSES, type AccountStatus } from '../store/account-store.js';
import { MAX_PAGE_SIZE } from '../store/validate.js';

/** Exit codes of the CLI. */
export const EXIT = Object.freeze({
  /** Done, nothing wrong. */
  OK: 0,
  /** An unexpected failure (a bug, a store outage). */
  FAILURE: 1,
  /** Bad arguments. */
  USAGE: 2,
  /** Done, but some accounts failed or need attention. */
  DEGRADED: 3,
  /** The configuration could not be loaded or is invalid. */
  CONFIG: 4,
});

/** Where the CLI reads and writes (injectable for tests). */
export interface CliIo {
  readonly stdout: { write(text: string): unknown };
  readonly stderr: { write(text: string): unknown; readonly isTTY?: boolean };
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly cwd: string;
  /** Load the config module's default export. @default dynamic import */
  readonly loadConfig?: (path: string) => Promise<unknown>;
}

const USAGE = `Usage: oauth-mailbox <command> [options]

Commands:
  list                          List connected accounts (no secrets)
      [--provider ID] [--owner ID] [--status active|reauth_required|error|revoked]
  health                        Counts by status, expiring tokens, recent failures
  refresh --expiring-within D   Refresh active accounts whose token expires within D (e.g. 7d, 12h, 30m)
      [--provider ID] [--owner ID] [--account ID]... [--concurrency N] [--dry-run]
  rotate-keys                   Re-encrypt every account with the cipher's current key
      [--batch-size N] [--cursor C]

Options:
  --config FILE   Module whose default export is a MailboxAuth (or a function returning one)
                  (default: $OAUTH_MAILBOX_CONFIG, else ./oauth-mailbox.config.mjs or .js)
  --json          Machine-readable output on stdout
  -h, --help      Show this help

Exit codes: 0 ok, 1 unexpected failure, 2 bad arguments, 3 done with failures, 4 configuration error.
`;

class UsageError extends Error {}

const DURATION = /^(\d+)(ms|s|m|h|d|w)?$/;
const UNIT_MS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};

/** Parse `7d`, `12h`, `30m`, `45s`, `500ms`, `2w` or plain milliseconds. */
export function parseDuration(text: string): number {
  const match = DURATION.exec(text.trim());
  if (match === null) throw new UsageError(`invalid duration "${text}" (use e.g. 7d, 12h, 30m, 45s, 500ms)`);
  return Number(match[1]) * (UNIT_MS[match[2] ?? 'ms'] as number);
}

function positiveInt(text: string | undefined, name: string, max: number): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d{1,15}$/.test(text) || Number(text) < 1 || Number(text) > max)
    throw new UsageError(
      `--${name} must be a positive integer of at most ${max} (got "${text.slice(0, 40)}")`,
    );
  return Number(text);
}

async function loadAuth(configPath: string | undefined, io: CliIo): Promise<MailboxAuth> {
  const candidates = configPath
    ? [configPath]
    : io.env.OAUTH_MAILBOX_CONFIG
      ? [io.env.OAUTH_MAILBOX_CONFIG]
      : ['oauth-mailbox.config.mjs', 'oauth-mailbox.config.js'];
  const file = candidates.map((c) => resolve(io.cwd, c)).find((c) => existsSync(c));
  if (file === undefined) {
    throw new ConfigLoadError(
      `no configuration found (looked for ${candidates.join(', ')}); pass --config FILE`,
    );
  }
  const load =
    io.loadConfig ??
    (async (path: string) => ((await import(pathToFileURL(path).href)) as { default?: unknown }).default);
  let exported = await load(file);
  if (typeof exported === 'function') exported = await (exported as () => unknown)();
  const auth = exported as Partial<MailboxAuth> | undefined;
  if (typeof auth?.refreshExpiring !== 'function' || typeof auth.persistence?.listAccounts !== 'function') {
    throw new ConfigLoadError(
      `${file} must export default a MailboxAuth (createMailboxAuth(...)) or a function returning one`,
    );
  }
  return auth as MailboxAuth;
}

class ConfigLoadError extends Error {}

function table(rows: readonly (readonly string[])[]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  return `${rows
    .map((r) =>
      r
        .map((cell, i) => cell.padEnd(widths[i] ?? 0))
        .join('  ')
        .trimEnd(),
    )
    .join('\n')}\n`;
}

/**
 * Run the CLI with `argv` (without `node` and the script) and return the exit code.
 *
 * @example
 * ```ts
 * process.exitCode = await runCli(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, env: process.env, cwd: process.cwd() });
 * ```
 */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (err) {
    io.stderr.write(`oauth-mailbox: ${err instanceof Error ? err.message : String(err)}\n\n${USAGE}`);
    return EXIT.USAGE;
  }
  const { command, values } = parsed;
  if (values.help === true || command === undefined || command === 'help') {
    (command === undefined && values.help !== true ? io.stderr : io.stdout).write(USAGE);
    return command === undefined && values.help !== true ? EXIT.USAGE : EXIT.OK;
  }
  const json = values.json === true;
  const out = (value: unknown, text: string) =>
    io.stdout.write(json ? `${JSON.stringify(value, null, 2)}\n` : text);
  const progress = (text: string) => {
    if (io.stderr.isTTY === true && !json) io.stderr.write(`\r${text}`);
  };
  try {
    const options = commandOptions(command, values);
    const auth = await loadAuth(values.config as string | undefined, io);
    switch (command) {
      case 'list': {
        const rows: string[][] = [['ID', 'PROVIDER', 'OWNER', 'EMAIL', 'STATUS', 'EXPIRES', 'FAILURES']];
        const all = [];
        let cursor: string | null = null;
        do {
          const page: Awaited<ReturnType<typeof auth.persistence.listAccounts>> =
            await auth.persistence.listAccounts(options.filter, { cursor, limit: 500 });
          for (const a of page.accounts) {
            if (json) all.push(a);
            else
              rows.push([
                a.id,
                a.provider,
                a.owner,
                a.email,
                a.status,
                a.tokenExpiresAt?.toISOString() ?? '-',
                String(a.consecutiveFailures),
              ]);
          }
          cursor = page.nextCursor;
        } while (cursor !== null);
        out(all, rows.length === 1 ? 'No accounts.\n' : table(rows));
        return EXIT.OK;
      }
      case 'health': {
        const report = await auth.health();
        const s = report.byStatus;
        out(
          report,
          `accounts: ${report.total} (active ${s.active}, reauth_required ${s.reauth_required}, error ${s.error}, revoked ${s.revoked})\n` +
            `access tokens: ${report.accessTokensExpired} expired, ${report.accessTokensExpiring} expiring within ${Math.round(report.windows.expiringWithinMs / 60_000)} min (refreshed on use)\n` +
            `failing: ${report.failingAccounts}, failed in the last ${Math.round(report.windows.failuresWithinMs / 3_600_000)} h: ${report.recentlyFailedAccounts}\n` +
            `status: ${report.healthy ? 'healthy' : 'needs attention'}\n`,
        );
        return report.healthy ? EXIT.OK : EXIT.DEGRADED;
      }
      case 'refresh': {
        const report = await auth.refreshExpiring({
          withinMs: options.withinMs as number,
          ...options.filter,
          ...(options.accountIds ? { accountIds: options.accountIds } : {}),
          ...(options.concurrency ? { concurrency: options.concurrency } : {}),
          dryRun: values['dry-run'] === true,
          onProgress: (p) =>
            progress(
              `scanned ${p.scanned}  refreshed ${p.refreshed}  skipped ${p.skipped}  failed ${p.failed}`,
            ),
        });
        if (io.stderr.isTTY === true && !json) io.stderr.write('\n');
        const failures = Object.entries(report.failures)
          .map(([code, n]) => `  ${code}: ${n}\n`)
          .join('');
        out(
          report,
          `${report.dryRun ? 'dry run: would refresh' : 'refreshed'} ${report.refreshed} of ${report.scanned} scanned` +
            ` (skipped ${report.skipped}, failed ${report.failed})` +
            (report.inProgressElsewhere > 0
              ? `, ${report.inProgressElsewhere} left to another instance`
              : '') +
            ` in ${report.durationMs} ms\n${failures}`,
        );
        return report.failed > 0 ? EXIT.DEGRADED : EXIT.OK;
      }
      case 'rotate-keys': {
        const report = await auth.rotateKeys({
          ...(options.batchSize ? { batchSize: options.batchSize } : {}),
          ...(values.cursor ? { cursor: values.cursor as string } : {}),
          onProgress: (p) =>
            progress(
              `scanned ${p.scanned}  re-encrypted ${p.reencrypted}  failed ${p.failed}  cursor ${p.cursor ?? 'end'}`,
            ),
        });
        if (io.stderr.isTTY === true && !json) io.stderr.write('\n');
        out(
          report,
          `re-encrypted ${report.reencrypted} of ${report.scanned} scanned (failed ${report.failed})\n` +
            Object.entries(report.failures)
              .map(([code, n]) => `  ${code}: ${n}\n`)
              .join(''),
        );
        return report.failed > 0 ? EXIT.DEGRADED : EXIT.OK;
      }
      default:
        throw new UsageError(`unknown command "${command}"`);
    }
  } catch (err) {
    if (err instanceof UsageError) {
      io.stderr.write(`oauth-mailbox: ${err.message}\n\n${USAGE}`);
      return EXIT.USAGE;
    }
    if (
      err instanceof ConfigLoadError ||
      isMailboxAuthError(err, 'ERR_CONFIGURATION') ||
      isMailboxAuthError(err, 'ERR_CRYPTO')
    ) {
      io.stderr.write(
        `oauth-mailbox: configuration error: ${err instanceof Error ? err.message : String(err)}\n`,
      );
      return EXIT.CONFIG;
    }
    const code = isMailboxAuthError(err) ? `${err.code}: ` : '';
    io.stderr.write(`oauth-mailbox: ${code}${err instanceof Error ? err.message : String(err)}\n`);
    return EXIT.FAILURE;
  }
}

function parse(argv: readonly string[]) {
  const { values, positionals } = parseArgs({
    args: [...argv],
    allowPositionals: true,
    strict: true,
    options: {
      config: { type: 'string' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
      provider: { type: 'string' },
      owner: { type: 'string' },
      status: { type: 'string' },
      account: { type: 'string', multiple: true },
      'expiring-within': { type: 'string' },
      concurrency: { type: 'string' },
      'dry-run': { type: 'boolean' },
      'batch-size': { type: 'string' },
      cursor: { type: 'string' },
    },
  });
  if (positionals.length > 1) throw new UsageError(`unexpected argument "${positionals[1]}"`);
  return { command: positionals[0], values };
}

function commandOptions(command: string, values: ReturnType<typeof parse>['values']) {
  const allowed: Record<string, readonly string[]> = {
    list: ['provider', 'owner', 'status'],
    health: [],
    refresh: ['provider', 'owner', 'account', 'expiring-within', 'concurrency', 'dry-run'],
    'rotate-keys': ['batch-size', 'cursor'],
  };
  const own = allowed[command];
  if (own === undefined) throw new UsageError(`unknown command "${command}"`);
  for (const key of Object.keys(values)) {
    if (!['config', 'json', 'help', ...own].includes(key))
      throw new UsageError(`--${key} does not apply to "${command}"`);
  }
  const status = values.status as string | undefined;
  if (status !== undefined && !ACCOUNT_STATUSES.includes(status as AccountStatus)) {
    throw new UsageError(`--status must be one of ${ACCOUNT_STATUSES.join(', ')}`);
  }
  const filter = {
    ...(values.provider ? { provider: values.provider as string } : {}),
    ...(values.owner ? { owner: values.owner as string } : {}),
    ...(status ? { status: status as AccountStatus } : {}),
  };
  let withinMs: number | undefined;
  if (command === 'refresh') {
    if (values['expiring-within'] === undefined)
      throw new UsageError('refresh needs --expiring-within (e.g. 7d)');
    withinMs = parseDuration(values['expiring-within'] as string);
  }
  return {
    filter,
    withinMs,
    accountIds: values.account as string[] | undefined,
    concurrency: positiveInt(values.concurrency as string | undefined, 'concurrency', MAX_FLEET_CONCURRENCY),
    batchSize: positiveInt(values['batch-size'] as string | undefined, 'batch-size', MAX_PAGE_SIZE),
  };
}
