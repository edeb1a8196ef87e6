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
import type { HealthReport } from '../operations/health.js';
import { MAX_FLEET_CONCURRENCY } from '../operations/refresh-expiring.js';
import type { AccountFilter } from '../store/account-store.js';
import { ACCOUNT_STATUSES, type AccountStatus } from '../store/account-store.js';
import { MAX_PAGE_SIZE } from '../store/validate.js';
import type { MailboxAccount } from '../tokens/account.js';
import { progressLine } from './progress.js';

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
  /**
   * Load the config module's default export. Given, the caller owns what it returns: the CLI does not close
   * it. @default a dynamic import; the CLI then closes the auth (`auth.close()`) and calls the module's
   * named `close` export, if any, once the command is done
   */
  readonly loadConfig?: (path: string) => Promise<unknown>;
  /** The clock of the progress line, in milliseconds. @default performance.now */
  readonly now?: () => number;
}

class UsageError extends Error {}
class ConfigLoadError extends Error {}

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

/** Every option: how `parseArgs` reads it, and its line in the help. */
const OPTIONS = {
  config: {
    type: 'string',
    help:
      '--config FILE         Module whose default export is a MailboxAuth (or a function returning one)\n' +
      '                        (default: $OAUTH_MAILBOX_CONFIG, else ./oauth-mailbox.config.mjs or .js)',
  },
  json: { type: 'boolean', help: '--json                Machine-readable output on stdout' },
  help: { type: 'boolean', short: 'h', help: '-h, --help            Show this help' },
  provider: { type: 'string', help: "--provider ID         Only this provider's accounts" },
  owner: { type: 'string', help: "--owner ID            Only this owner's accounts" },
  status: {
    type: 'string',
    help: `--status S            Only accounts with this status (${ACCOUNT_STATUSES.join(', ')})`,
  },
  account: {
    type: 'string',
    multiple: true,
    help: '--account ID          Only this account, read directly (no scan); repeatable',
  },
  'expiring-within': {
    type: 'string',
    help: '--expiring-within D   Tokens expiring within D (e.g. 7d, 12h, 30m, 45s, 500ms)',
  },
  concurrency: {
    type: 'string',
    help: `--concurrency N       Refreshes at once, 1 to ${MAX_FLEET_CONCURRENCY} (default 8)`,
  },
  'dry-run': { type: 'boolean', help: '--dry-run             Count what would be refreshed; change nothing' },
  'batch-size': { type: 'string', help: `--batch-size N        Accounts per batch, 1 to ${MAX_PAGE_SIZE}` },
  cursor: { type: 'string', help: '--cursor C            Resume where an interrupted run stopped' },
} as const satisfies Record<
  string,
  { type: 'string' | 'boolean'; short?: string; multiple?: boolean; help: string }
>;

type OptionName = keyof typeof OPTIONS;
type Values = ReturnType<typeof parse>['values'];
const GLOBAL_OPTIONS: readonly OptionName[] = ['config', 'json', 'help'];

/** What a command's handler gets. */
interface CommandContext {
  readonly auth: MailboxAuth;
  readonly values: Values;
  readonly json: boolean;
  readonly filter: AccountFilter & { provider?: string; owner?: string; status?: AccountStatus };
  readonly accountIds: readonly string[] | undefined;
  /** Print `value` as JSON with `--json`, else `text`. */
  out(value: unknown, text: string): void;
  /** The throttled progress line on a TTY stderr (nothing otherwise). */
  readonly progress: { update(text: string): void; done(): void };
}

/** One command of the CLI: its name, help, options, and what it does. */
interface Command {
  readonly name: string;
  /** One line for the command list. */
  readonly summary: string;
  /** Its arguments in the usage line, such as `--expiring-within D [options]`. */
  readonly synopsis: string;
  /** The options it takes besides the global ones. */
  readonly options: readonly OptionName[];
  /** Refuse a bad combination of options before the configuration is loaded. */
  readonly check?: (values: Values) => void;
  readonly run: (context: CommandContext) => Promise<number>;
}

const COMMANDS: readonly Command[] = [
  {
    name: 'list',
    summary: 'List connected accounts (no secrets)',
    synopsis: '[--provider ID] [--owner ID] [--status S] [--account ID]...',
    options: ['provider', 'owner', 'status', 'account'],
    run: async ({ auth, filter, accountIds, json, out }) => {
      const accounts: MailboxAccount[] = [];
      if (accountIds !== undefined) {
        for (const account of await accountsById(auth, accountIds)) {
          if (matches(account, filter)) accounts.push(account);
        }
      } else {
        let cursor: string | null = null;
        do {
          const page: Awaited<ReturnType<typeof auth.persistence.listAccounts>> =
            await auth.persistence.listAccounts(filter, { cursor, limit: 500 });
          accounts.push(...page.accounts);
          cursor = page.nextCursor;
        } while (cursor !== null);
      }
      if (json) {
        out(accounts, '');
        return EXIT.OK;
      }
      const rows = [['ID', 'PROVIDER', 'OWNER', 'EMAIL', 'STATUS', 'EXPIRES', 'FAILURES']];
      for (const a of accounts) {
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
      out(accounts, rows.length === 1 ? 'No accounts.\n' : table(rows));
      return EXIT.OK;
    },
  },
  {
    name: 'health',
    summary: 'Counts by status, expiring tokens, recent failures',
    synopsis: '[--account ID]...',
    options: ['account'],
    run: async ({ auth, accountIds, out }) => {
      if (accountIds !== undefined) {
        const reports = [];
        for (const id of accountIds) reports.push(await auth.accountHealth(id));
        out(
          reports,
          reports
            .map(
              (h) =>
                `${h.accountId} ${h.email} (${h.provider}): ${h.status}, token expires ${h.tokenExpiresAt?.toISOString() ?? '-'}, ` +
                `failures ${h.consecutiveFailures}${h.lastError === null ? '' : `, last error ${h.lastError.code}`}\n`,
            )
            .join(''),
        );
        return reports.every((h) => h.connected) ? EXIT.OK : EXIT.DEGRADED;
      }
      const report: HealthReport = await auth.health();
      const s = report.byStatus;
      out(
        report,
        `accounts: ${report.total} (active ${s.active}, reauth_required ${s.reauth_required}, error ${s.error}, revoked ${s.revoked})\n` +
          `access tokens: ${report.accessTokensExpired} expired, ${report.accessTokensExpiring} expiring within ${Math.round(report.windows.expiringWithinMs / 60_000)} min (refreshed on use)\n` +
          `failing: ${report.failingAccounts}, failed in the last ${Math.round(report.windows.failuresWithinMs / 3_600_000)} h: ${report.recentlyFailedAccounts}\n` +
          `status: ${report.healthy ? 'healthy' : 'needs attention'}\n`,
      );
      return report.healthy ? EXIT.OK : EXIT.DEGRADED;
    },
  },
  {
    name: 'refresh',
    summary: 'Refresh active accounts whose token expires within D',
    synopsis:
      '--expiring-within D [--provider ID] [--owner ID] [--account ID]... [--concurrency N] [--dry-run]',
    options: ['provider', 'owner', 'account', 'expiring-within', 'concurrency', 'dry-run'],
    check: (values) => {
      if (values['expiring-within'] === undefined)
        throw new UsageError('refresh needs --expiring-within (e.g. 7d)');
      parseDuration(values['expiring-within'] as string);
      positiveInt(values.concurrency as string | undefined, 'concurrency', MAX_FLEET_CONCURRENCY);
    },
    run: async ({ auth, values, filter, accountIds, progress, out }) => {
      const withinMs = parseDuration(values['expiring-within'] as string);
      const concurrency = positiveInt(
        values.concurrency as string | undefined,
        'concurrency',
        MAX_FLEET_CONCURRENCY,
      );
      const onProgress = (p: { scanned: number; refreshed: number; skipped: number; failed: number }) =>
        progress.update(
          `scanned ${p.scanned}  refreshed ${p.refreshed}  skipped ${p.skipped}  failed ${p.failed}`,
        );
      const dryRun = values['dry-run'] === true;
      const report = await auth.refreshExpiring({
        withinMs,
        ...filter,
        ...(accountIds === undefined ? {} : { accountIds }),
        ...(concurrency ? { concurrency } : {}),
        dryRun,
        onProgress,
      });
      progress.done();
      out(
        report,
        `${report.dryRun ? 'dry run: would refresh' : 'refreshed'} ${report.refreshed} of ${report.scanned} scanned` +
          ` (skipped ${report.skipped}, failed ${report.failed})` +
          (report.inProgressElsewhere > 0 ? `, ${report.inProgressElsewhere} left to another instance` : '') +
          ` in ${report.durationMs} ms\n${failureLines(report.failures)}`,
      );
      return report.failed > 0 ? EXIT.DEGRADED : EXIT.OK;
    },
  },
  {
    name: 'rotate-keys',
    summary: "Re-encrypt every account with the cipher's current key",
    synopsis: '[--batch-size N] [--cursor C]',
    options: ['batch-size', 'cursor'],
    check: (values) => {
      positiveInt(values['batch-size'] as string | undefined, 'batch-size', MAX_PAGE_SIZE);
    },
    run: async ({ auth, values, progress, out }) => {
      const batchSize = positiveInt(values['batch-size'] as string | undefined, 'batch-size', MAX_PAGE_SIZE);
      const report = await auth.rotateKeys({
        ...(batchSize ? { batchSize } : {}),
        ...(values.cursor ? { cursor: values.cursor as string } : {}),
        onProgress: (p) =>
          progress.update(
            `scanned ${p.scanned}  re-encrypted ${p.reencrypted}  failed ${p.failed}  cursor ${p.cursor ?? 'end'}`,
          ),
      });
      progress.done();
      out(
        report,
        `re-encrypted ${report.reencrypted} of ${report.scanned} scanned (failed ${report.failed})\n` +
          failureLines(report.failures),
      );
      return report.failed > 0 ? EXIT.DEGRADED : EXIT.OK;
    },
  },
];

const EXIT_CODES_LINE =
  'Exit codes: 0 ok, 1 unexpected failure, 2 bad arguments, 3 done with failures, 4 configuration error.\n';

function optionLines(names: readonly OptionName[]): string {
  return names.map((name) => `  ${OPTIONS[name].help.replace(/\n/g, '\n  ')}\n`).join('');
}

/** The general usage: every command, one line each, then the global options. */
function usage(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length)) + 2;
  return (
    'Usage: oauth-mailbox <command> [options]\n\nCommands:\n' +
    COMMANDS.map((c) => `  ${c.name.padEnd(width)}${c.summary}\n`).join('') +
    `\nOptions:\n${optionLines(GLOBAL_OPTIONS)}\n` +
    "Run 'oauth-mailbox <command> --help' for a command's options.\n\n" +
    EXIT_CODES_LINE
  );
}

/** One command's usage: its synopsis, summary, own options and the global ones. */
function commandUsage(command: Command): string {
  return (
    `Usage: oauth-mailbox ${command.name} ${command.synopsis}\n\n${command.summary}.\n\n` +
    (command.options.length === 0 ? '' : `Options:\n${optionLines(command.options)}\n`) +
    `Global options:\n${optionLines(GLOBAL_OPTIONS)}\n${EXIT_CODES_LINE}`
  );
}

function failureLines(failures: Readonly<Record<string, number>>): string {
  return Object.entries(failures)
    .map(([code, n]) => `  ${code}: ${n}\n`)
    .join('');
}

interface LoadedConfig {
  readonly auth: MailboxAuth;
  /** Closes what the config opened (its named `close` export), with the auth: only when the CLI owns it. */
  readonly close: (() => Promise<void>) | undefined;
}

async function loadConfig(configPath: string | undefined, io: CliIo): Promise<LoadedConfig> {
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
  let exported: unknown;
  let closeModule: unknown;
  if (io.loadConfig === undefined) {
    const module = (await import(pathToFileURL(file).href)) as { default?: unknown; close?: unknown };
    exported = module.default;
    closeModule = module.close;
  } else {
    exported = await io.loadConfig(file);
  }
  const owned = io.loadConfig === undefined;
  const closeConfig = async () => {
    if (typeof closeModule === 'function') await (closeModule as () => unknown)();
  };
  try {
    if (typeof exported === 'function') exported = await (exported as () => unknown)();
  } catch (err) {
    if (owned) await closeConfig().catch(() => undefined);
    throw err;
  }
  const auth = exported as Partial<MailboxAuth> | undefined;
  if (typeof auth?.refreshExpiring !== 'function' || typeof auth.persistence?.listAccounts !== 'function') {
    if (owned) await closeConfig().catch(() => undefined);
    throw new ConfigLoadError(
      `${file} must export default a MailboxAuth (createMailboxAuth(...)) or a function returning one`,
    );
  }
  if (!owned) return { auth: auth as MailboxAuth, close: undefined };
  return {
    auth: auth as MailboxAuth,
    close: async () => {
      try {
        if (typeof auth.close === 'function') await auth.close();
      } finally {
        await closeConfig();
      }
    },
  };
}

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

/** The accounts, each read directly by id (no scan), in the order given. */
async function accountsById(auth: MailboxAuth, ids: readonly string[]): Promise<MailboxAccount[]> {
  const accounts: MailboxAccount[] = [];
  for (const id of new Set(ids)) accounts.push(await auth.getAccount(id));
  return accounts;
}

function matches(account: MailboxAccount, filter: CommandContext['filter']): boolean {
  return (
    (filter.provider === undefined || account.provider === filter.provider) &&
    (filter.owner === undefined || account.owner === filter.owner) &&
    (filter.status === undefined || account.status === filter.status)
  );
}

/**
 * Run the CLI with `argv` (without `node` and the script) and return the exit code. With the default config
 * loader, the auth is closed (`auth.close()`) and the config module's named `close` export called before it
 * returns, whatever the outcome.
 *
 * @example
 * ```ts
 * process.exitCode = await runCli(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, env: process.env, cwd: process.cwd() });
 * ```
 */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  const fail = (message: string) => {
    io.stderr.write(`oauth-mailbox: ${message}\n\n${usage()}`);
    return EXIT.USAGE;
  };
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (err) {
    return fail(err instanceof Error ? err.message : String(err));
  }
  const { values } = parsed;
  let name = parsed.command;
  let help = values.help === true;
  if (name === 'help') {
    name = parsed.topic;
    help = true;
  } else if (parsed.topic !== undefined) {
    return fail(`unexpected argument "${parsed.topic}"`);
  }
  if (name === undefined) {
    (help ? io.stdout : io.stderr).write(usage());
    return help ? EXIT.OK : EXIT.USAGE;
  }
  const command = COMMANDS.find((c) => c.name === name);
  if (command === undefined) return fail(`unknown command "${name}"`);
  if (help) {
    io.stdout.write(commandUsage(command));
    return EXIT.OK;
  }
  const json = values.json === true;
  const progress = progressLine(io.stderr.isTTY === true && !json ? io.stderr : undefined, {
    ...(io.now === undefined ? {} : { now: io.now }),
  });
  let loaded: LoadedConfig | undefined;
  let code: number;
  try {
    const context = commandContext(command, values);
    loaded = await loadConfig(values.config as string | undefined, io);
    try {
      code = await command.run({
        ...context,
        auth: loaded.auth,
        json,
        out: (value, text) => io.stdout.write(json ? `${JSON.stringify(value, null, 2)}\n` : text),
        progress,
      });
    } finally {
      progress.done(); // a failure mid-way leaves no half line behind
    }
  } catch (err) {
    code = report(err, io);
  }
  if (loaded?.close !== undefined) {
    try {
      await loaded.close();
    } catch (err) {
      io.stderr.write(`oauth-mailbox: could not close the configuration: ${describe(err)}\n`);
      if (code === EXIT.OK || code === EXIT.DEGRADED) code = EXIT.FAILURE;
    }
  }
  return code;
}

function describe(err: unknown): string {
  const code = isMailboxAuthError(err) ? `${err.code}: ` : '';
  return `${code}${err instanceof Error ? err.message : String(err)}`;
}

function report(err: unknown, io: CliIo): number {
  if (err instanceof UsageError) {
    io.stderr.write(`oauth-mailbox: ${err.message}\n\n${usage()}`);
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
  io.stderr.write(`oauth-mailbox: ${describe(err)}\n`);
  return EXIT.FAILURE;
}

function parse(argv: readonly string[]) {
  const { values, positionals } = parseArgs({
    args: [...argv],
    allowPositionals: true,
    strict: true,
    options: OPTIONS,
  });
  if (positionals.length > 2 || (positionals.length === 2 && positionals[0] !== 'help'))
    throw new UsageError(`unexpected argument "${positionals[positionals.length === 2 ? 1 : 2]}"`);
  return { command: positionals[0], topic: positionals[1], values };
}

/** Check the options against the command's, and build what every handler shares. */
function commandContext(command: Command, values: Values) {
  for (const key of Object.keys(values)) {
    if (!GLOBAL_OPTIONS.includes(key as OptionName) && !command.options.includes(key as OptionName))
      throw new UsageError(`--${key} does not apply to "${command.name}"`);
  }
  const status = values.status as string | undefined;
  if (status !== undefined && !ACCOUNT_STATUSES.includes(status as AccountStatus)) {
    throw new UsageError(`--status must be one of ${ACCOUNT_STATUSES.join(', ')}`);
  }
  command.check?.(values);
  const filter = {
    ...(values.provider ? { provider: values.provider as string } : {}),
    ...(values.owner ? { owner: values.owner as string } : {}),
    ...(status ? { status: status as AccountStatus } : {}),
  };
  return { values, filter, accountIds: values.account as string[] | undefined };
}
