/** What the benchmark scripts share: the token server's provider, and running a measurement in a fresh process. */
import { fork } from 'node:child_process';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { oauth2 } from '../src/index.js';

/** The `oauth2()` provider of a bench token server at `url` (IMAP on `imapPort` when a case needs Dovecot). */
export function benchProvider(
  url: string,
  options: { readonly id?: string; readonly imapPort?: number } = {},
) {
  return oauth2({
    id: options.id ?? 'local',
    clientId: 'bench',
    clientSecret: 'bench-secret',
    redirectUri: 'http://127.0.0.1/cb',
    authorizationEndpoint: `${url}/authorize`,
    tokenEndpoint: `${url}/token`,
    scopes: ['mail'],
    identify: async () => ({ email: 'unused@example.com' }),
    allowInsecureRequests: true,
    mail: {
      imap: { host: '127.0.0.1', port: options.imapPort ?? 1, secure: false },
      smtp: { host: '127.0.0.1', port: 1, secure: false },
      sasl: 'XOAUTH2',
    },
  });
}

/**
 * The worker side of {@link runInFreshProcess}: run `measure` on the one input the parent sends, answer with
 * its result and exit (without closing what it opened: the process ends with it); on failure print the
 * error and exit 1.
 */
export function serveOnce<I, O>(measure: (input: I) => Promise<O>): void {
  process.once('message', (input: I) => {
    measure(input).then(
      (result) => process.send?.(result as object, () => process.exit(0)),
      (error: unknown) => {
        console.error(error);
        process.exit(1);
      },
    );
  });
}

/**
 * Run `file` (a bench worker that answers one IPC message with one result) in a fresh process with
 * `--expose-gc` and tsx, so that its memory figures are its own; resolves once it has exited. A worker that
 * has not answered within `timeoutMs` is killed and the run fails (a hung case must not hang the suite).
 */
export async function runInFreshProcess<I, O>(file: string, input: I, timeoutMs = 300_000): Promise<O> {
  const tsx = pathToFileURL(resolve('node_modules/tsx/dist/loader.mjs')).href;
  const worker = fork(resolve(file), [], {
    execArgv: ['--expose-gc', '--import', tsx],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const exited = new Promise<number | null>((r) => worker.once('exit', (code) => r(code)));
  const result = new Promise<O>((resolvePromise, reject) => {
    worker.once('message', (m: O) => resolvePromise(m));
    void exited.then((code) => reject(new Error(`${file} exited with ${code}`)));
  });
  const timer = setTimeout(() => worker.kill('SIGKILL'), timeoutMs);
  try {
    worker.send(input as object);
    const out = await result;
    await exited;
    return out;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Run `fn` with a token server (bench/token-server-process.ts, answering after `latencyMs`) in another
 * process, as a provider is in production; the process is let go on every exit of `fn`.
 */
export async function withTokenServerProcess<T>(
  latencyMs: number,
  fn: (url: string) => Promise<T>,
): Promise<T> {
  const tsx = pathToFileURL(resolve('node_modules/tsx/dist/loader.mjs')).href;
  const child = fork(resolve('bench/token-server-process.ts'), [String(latencyMs)], {
    execArgv: ['--import', tsx],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  try {
    const url = await new Promise<string>((r) => child.once('message', (m: { url: string }) => r(m.url)));
    return await fn(url);
  } finally {
    child.disconnect();
  }
}
