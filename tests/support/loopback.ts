/** Test servers and client options on 127.0.0.1 (plain TCP: no TLS on loopback). */
import { type AddressInfo, connect } from 'node:net';
import type { Readable } from 'node:stream';
import { SMTPServer, type SMTPServerOptions } from 'smtp-server';

/** Mail connection options for a plain-text test server on a loopback port; `extra` adds or overrides. */
export function loopbackMail<T extends object = object>(port: number, extra?: T) {
  return { host: '127.0.0.1', port, secure: false, allowInsecureHosts: ['127.0.0.1'], ...extra };
}

/** Options of an SMTP server that offers only XOAUTH2, without STARTTLS (so over plain text). */
export function xoauth2Only(): SMTPServerOptions {
  return { authMethods: ['XOAUTH2'], disabledCommands: ['STARTTLS'], allowInsecureAuth: true };
}

export interface LoopbackSmtp {
  readonly port: number;
  close(): Promise<void>;
}

/** An `smtp-server` (without its logger) listening on a free loopback port. */
export async function listenSmtp(options: SMTPServerOptions): Promise<LoopbackSmtp> {
  const server = new SMTPServer({ logger: false, ...options });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = (server as unknown as { server: { address(): AddressInfo } }).server.address();
  return { port, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

/** The whole of a message stream `onData` receives, as text. */
export function readMessage(stream: Readable): Promise<string> {
  return new Promise((resolve, reject) => {
    let raw = '';
    stream.on('data', (chunk: Buffer) => {
      raw += chunk.toString();
    });
    stream.on('end', () => resolve(raw));
    stream.on('error', reject);
  });
}

/** Whether something accepts connections on the loopback port (no answer within a second counts as no). */
export function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    const done = (open: boolean) => {
      socket.destroy();
      resolve(open);
    };
    socket.setTimeout(1000, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}
