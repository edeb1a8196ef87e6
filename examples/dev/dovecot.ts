/**
 * A real Dovecot (Debian's packages) for the quickstart, the examples' dev mode, the tests and the
 * benchmarks: started in the foreground from a generated config in a temp folder, listening on loopback only,
 * validating OAuth bearer tokens by RFC 7662 introspection (against the local OpenID provider or a test's
 * token server). IMAP plain (XOAUTH2/OAUTHBEARER allowed on loopback) and IMAPS with a generated self-signed
 * certificate; optionally submission relaying to an SMTP sink. As root its processes and mail folders run
 * as `nobody`; as any other user, rootless (everything runs as that user, no chroot).
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { type AddressInfo, connect, createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';

export const DOVECOT = '/usr/sbin/dovecot';
/** Dovecot's admin tool (dovecot-core, with the server): changes a mailbox's UIDVALIDITY in the tests. */
export const DOVEADM = '/usr/bin/doveadm';
/** Where Debian installs Dovecot's services (`imap` from dovecot-imapd, `submission` from dovecot-submissiond). */
export const DOVECOT_LIBEXEC = '/usr/lib/dovecot';

/**
 * Why Dovecot cannot run here (not installed, or without its IMAP or submission service), or `undefined`
 * when it can. Each package is checked on its own: a machine with dovecot-imapd but not
 * dovecot-submissiond gets one clear reason instead of every SMTP test failing to connect.
 */
export function dovecotUnavailableReason(
  paths: { readonly dovecot: string; readonly libexec: string } = {
    dovecot: DOVECOT,
    libexec: DOVECOT_LIBEXEC,
  },
): string | undefined {
  const { dovecot, libexec } = paths;
  const install = 'Debian: apt-get install dovecot-imapd dovecot-submissiond';
  if (!existsSync(dovecot)) return `${dovecot} is not installed (${install})`;
  for (const [service, pkg] of [
    ['imap', 'dovecot-imapd'],
    ['submission', 'dovecot-submissiond'],
  ] as const) {
    const binary = join(libexec, service);
    if (!existsSync(binary)) return `${binary} is missing: ${pkg} is not installed (${install})`;
  }
  return undefined;
}

export interface Introspection {
  readonly url: string;
  /** Tokens introspected so far. */
  readonly requests: number;
  allow(token: string, username: string): void;
  revoke(token: string): void;
  close(): Promise<void>;
}

/** An RFC 7662 introspection endpoint with a token table. */
export async function startIntrospection(): Promise<Introspection> {
  const tokens = new Map<string, string>();
  let requests = 0;
  const server = createHttpServer((req: IncomingMessage, res: ServerResponse) => {
    let body = '';
    req.on('data', (c) => {
      body += c;
    });
    req.on('end', () => {
      requests++;
      const token = new URLSearchParams(body).get('token') ?? '';
      const username = tokens.get(token);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify(
          username === undefined ? { active: false } : { active: true, username, scope: 'mail' },
        ),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/introspect`,
    get requests() {
      return requests;
    },
    allow: (token, username) => void tokens.set(token, username),
    revoke: (token) => void tokens.delete(token),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export interface DovecotOptions {
  readonly introspectionUrl: string;
  /** @default ['xoauth2', 'oauthbearer'] */
  readonly mechanisms?: readonly ('xoauth2' | 'oauthbearer')[];
  /** Start the submission service, relaying to this SMTP sink. */
  readonly submissionRelay?: { readonly host: string; readonly port: number };
  /** Allow this many concurrent IMAP sessions (for benchmarks). @default 100 */
  readonly maxConnections?: number;
  /**
   * How long start-up (and each restart) waits for every listener to answer before it gives up, stops
   * Dovecot and throws. @default 10000
   */
  readonly startTimeoutMs?: number;
}

export interface Dovecot {
  readonly imapPort: number;
  readonly imapsPort: number;
  readonly submissionPort: number | undefined;
  /** The self-signed certificate (PEM) of the IMAPS listener. */
  readonly caPem: string;
  readonly dir: string;
  /** Put a raw RFC 822 message into `user`'s INBOX as new (unseen) mail, as a local delivery agent would. */
  deliver(user: string, raw: string | Buffer): void;
  /**
   * Give `user`'s `mailbox` another UIDVALIDITY (`doveadm mailbox update --uid-validity`), as a server that
   * rebuilt its index or recreated the mailbox would: every UID a client kept is void. The messages and
   * their UIDs stay; an IMAP session that has the mailbox selected is disconnected by Dovecot.
   */
  setUidValidity(user: string, mailbox: string, uidValidity: number): void;
  /**
   * Delete `user`'s `mailbox` with its messages and create it again empty (`doveadm mailbox delete`, then
   * `create`), as a user or an admin recreating a folder would: it gets a new UIDVALIDITY and its UIDs start
   * at 1 again, so a UID kept from before may name a new message.
   */
  recreateMailbox(user: string, mailbox: string): void;
  /** Create `user`'s `mailbox` (`doveadm mailbox create`). */
  createMailbox(user: string, mailbox: string): void;
  /** The mailbox's UIDVALIDITY and next UID, as Dovecot keeps them (`doveadm mailbox status`). */
  mailboxStatus(user: string, mailbox: string): { readonly uidValidity: number; readonly uidNext: number };
  /** Restart the server (same ports, same mail). */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Who Dovecot's processes and mail folders run as: `nobody` when started as root (Dovecot drops to it), else
 * the current user (a rootless Dovecot cannot change users, so every process and folder is this user's).
 */
function runAs(): { root: boolean; user: string; group: string } {
  if (typeof process.getuid !== 'function' || process.getuid() === 0)
    return { root: true, user: 'nobody', group: 'nogroup' };
  return {
    root: false, // even when this user is called nobody (a container): no chroot, no chown
    user: userInfo().username,
    group: execFileSync('id', ['-gn'], { encoding: 'utf8' }).trim(),
  };
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Wait until the port answers with its greeting (`* OK` or `220`): an open port alone is not ready. */
async function waitForPort(
  port: number,
  child: ChildProcess,
  log: () => string,
  deadline: number,
  banner = true,
): Promise<void> {
  for (;;) {
    if (child.exitCode !== null) throw new Error(`dovecot exited (${child.exitCode}):\n${log()}`);
    const open = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      const done = (ok: boolean) => {
        socket.destroy();
        resolve(ok);
      };
      socket.setTimeout(1000, () => done(false));
      if (banner) socket.once('data', (data) => done(/^(\* OK|220)/.test(data.toString())));
      else socket.once('connect', () => done(true));
      socket.once('error', () => done(false));
      socket.once('close', () => done(false)); // closed without a greeting (a login process that died)
    });
    if (open) return;
    if (Date.now() >= deadline) throw new Error(`dovecot did not open port ${port} in time:\n${log()}`);
    await new Promise((r) => setTimeout(r, 30));
  }
}

/**
 * Start Dovecot. When start-up fails (a listener does not answer in time, Dovecot exits), the process is
 * stopped and the temp folder (with the TLS key) removed before the error is thrown.
 */
export async function startDovecot(options: DovecotOptions): Promise<Dovecot> {
  const dir = mkdtempSync(join(tmpdir(), 'om-dovecot-'));
  try {
    return await launch(dir, options);
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
}

async function launch(dir: string, options: DovecotOptions): Promise<Dovecot> {
  for (const sub of ['run', 'state', 'home']) mkdirSync(join(dir, sub));
  const [imapPort, imapsPort, submissionPort] = await Promise.all([freePort(), freePort(), freePort()]);
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-days',
      '1',
      '-subj',
      '/CN=localhost',
      '-addext',
      'subjectAltName=DNS:localhost,IP:127.0.0.1',
      '-keyout',
      join(dir, 'key.pem'),
      '-out',
      join(dir, 'cert.pem'),
    ],
    { stdio: 'ignore' },
  );
  const mechanisms = (options.mechanisms ?? ['xoauth2', 'oauthbearer']).join(' ');
  writeFileSync(
    join(dir, 'oauth2.conf.ext'),
    [
      'introspection_mode = post',
      `introspection_url = ${options.introspectionUrl}`,
      'username_attribute = username',
      'active_attribute = active',
      'active_value = true',
      'force_introspection = yes',
      '',
    ].join('\n'),
  );
  const submission = options.submissionRelay;
  const { root, user, group } = runAs();
  // A rootless Dovecot cannot chroot its login and anvil processes.
  const chroot = root ? '' : '\n  chroot =';
  const config = `
base_dir = ${dir}/run
state_dir = ${dir}/state
log_path = ${dir}/dovecot.log
protocols = imap${submission ? ' submission' : ''}
listen = 127.0.0.1
default_internal_user = ${user}
default_internal_group = ${group}
default_login_user = ${user}
ssl = yes
ssl_cert = <${dir}/cert.pem
ssl_key = <${dir}/key.pem
disable_plaintext_auth = no
auth_mechanisms = ${mechanisms}
auth_failure_delay = 0
auth_cache_size = 0
mail_location = maildir:~/Maildir
mail_uid = ${user}
mail_gid = ${group}
first_valid_uid = 0
hostname = localhost
shutdown_clients = yes
default_process_limit = ${(options.maxConnections ?? 100) + 50}
default_client_limit = ${2 * (options.maxConnections ?? 100) + 100}
protocol imap {
  mail_max_userip_connections = ${(options.maxConnections ?? 100) + 10}
}
passdb {
  driver = oauth2
  mechanisms = ${mechanisms}
  args = ${dir}/oauth2.conf.ext
}
userdb {
  driver = static
  # allow_all_users: doveadm can look a user up (the oauth2 passdb cannot answer a lookup without a token).
  args = uid=${user} gid=${group} home=${dir}/home/%u allow_all_users=yes
}
service imap-login {${chroot}
  inet_listener imap {
    address = 127.0.0.1
    port = ${imapPort}
  }
  inet_listener imaps {
    address = 127.0.0.1
    port = ${imapsPort}
    ssl = yes
  }
}
service anvil {${chroot}
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
${
  submission
    ? `submission_relay_host = ${submission.host}
submission_relay_port = ${submission.port}
submission_relay_trusted = yes
submission_relay_ssl = no
service submission-login {${chroot}
  inet_listener submission {
    address = 127.0.0.1
    port = ${submissionPort}
  }
}`
    : ''
}
`;
  writeFileSync(join(dir, 'dovecot.conf'), config);
  if (root) execFileSync('chown', ['-R', 'nobody:nogroup', join(dir, 'home'), join(dir, 'state')]);
  chmodSync(dir, 0o755);
  const log = () =>
    existsSync(join(dir, 'dovecot.log')) ? readFileSync(join(dir, 'dovecot.log'), 'utf8').slice(-4000) : '';
  let child: ChildProcess | undefined;
  const stop = async () => {
    const running = child;
    if (running === undefined || running.exitCode !== null || running.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => running.once('exit', () => resolve()));
    running.kill('SIGTERM');
    const timer = setTimeout(() => running.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  };
  const start = async () => {
    const deadline = Date.now() + (options.startTimeoutMs ?? 10_000);
    const started = spawn(DOVECOT, ['-F', '-c', join(dir, 'dovecot.conf')], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    child = started;
    let stderr = '';
    started.stderr?.on('data', (c) => {
      stderr += c;
    });
    started.on('error', (error) => {
      stderr += `${error.message}\n`; // cannot spawn: exitCode is set, waitForPort reports it
    });
    const output = () => `${stderr}\n${log()}`;
    try {
      await waitForPort(imapPort, started, output, deadline);
      await waitForPort(imapsPort, started, output, deadline, false);
      if (submission) await waitForPort(submissionPort as number, started, output, deadline);
    } catch (error) {
      // Still running (a listener that never answered): stop it, it holds the ports (and may run as root).
      await stop();
      throw error;
    }
  };
  await start();
  let delivered = 0;
  /** `doveadm` on this server's config (its mail, its users), for `user`. */
  const doveadm = (user: string, command: readonly string[], args: readonly string[]): string => {
    if (!/^[^/\\\s]+@[^/\\\s]+$/.test(user)) throw new Error('doveadm: user must be an email address');
    return execFileSync(DOVEADM, ['-c', join(dir, 'dovecot.conf'), ...command, '-u', user, ...args], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  };
  return {
    imapPort,
    imapsPort,
    submissionPort: submission ? submissionPort : undefined,
    caPem: readFileSync(join(dir, 'cert.pem'), 'utf8'),
    dir,
    deliver: (mailbox, raw) => {
      if (!/^[^/\\\s]+@[^/\\\s]+$/.test(mailbox)) throw new Error('deliver: user must be an email address');
      const maildir = join(dir, 'home', mailbox, 'Maildir');
      for (const sub of ['cur', 'new', 'tmp']) mkdirSync(join(maildir, sub), { recursive: true });
      const name = `${Date.now()}.M${++delivered}P${process.pid}.localhost`;
      writeFileSync(join(maildir, 'tmp', name), raw);
      renameSync(join(maildir, 'tmp', name), join(maildir, 'new', name));
      if (root) execFileSync('chown', ['-R', 'nobody:nogroup', join(dir, 'home', mailbox)]);
    },
    setUidValidity: (mailbox, folder, uidValidity) => {
      if (!Number.isInteger(uidValidity) || uidValidity < 1 || uidValidity > 0xffffffff)
        throw new Error('setUidValidity: uidValidity must be a 32-bit positive integer');
      doveadm(mailbox, ['mailbox', 'update'], ['--uid-validity', String(uidValidity), folder]);
    },
    recreateMailbox: (mailbox, folder) => {
      doveadm(mailbox, ['mailbox', 'delete'], [folder]);
      doveadm(mailbox, ['mailbox', 'create'], [folder]);
    },
    createMailbox: (mailbox, folder) => {
      doveadm(mailbox, ['mailbox', 'create'], [folder]);
    },
    mailboxStatus: (mailbox, folder) => {
      const out = doveadm(mailbox, ['-f', 'flow', 'mailbox', 'status'], ['uidvalidity uidnext', folder]);
      const field = (name: string) => Number(new RegExp(`\\b${name}=(\\d+)`).exec(out)?.[1] ?? Number.NaN);
      return { uidValidity: field('uidvalidity'), uidNext: field('uidnext') };
    },
    restart: async () => {
      await stop();
      await start();
    },
    stop: async () => {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
