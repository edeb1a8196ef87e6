/**
 * The NestJS example: an "integrations" module that connects users' mailboxes, as a JSON API for your front
 * end. `createApp(config)` builds the store, the providers, `createMailboxAuth` and the Nest application on
 * an Express instance; `main.ts` reads the environment (the same variables as the Express example) and
 * listens. Routes: see integrations.controller.ts; `POST /demo/sign-in` is the demo's stand-in for your login.
 */
import 'reflect-metadata';
import { randomBytes } from 'node:crypto';
import { type INestApplication, type LoggerService, type LogLevel, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ExpressAdapter } from '@nestjs/platform-express';
import express, { type Express } from 'express';
import {
  aesGcmCipher,
  createMailboxAuth,
  google,
  type MailboxAuth,
  microsoft,
  type OAuthProvider,
} from 'oauth-mailbox';
import { type AppConfig, AppConfigurationError } from '../express/config.js';
import { openStore } from '../express/store.js';
import { type DevServices, startDevServices } from './dev.js';
import { MailboxErrorFilter } from './errors.filter.js';
import { IntegrationsModule, type IntegrationsModuleOptions } from './integrations.module.js';

/** What {@link createApp} needs: the Express example's configuration, and a few Nest settings. */
export interface NestAppConfig extends Omit<AppConfig, 'dev'> {
  /** Dev mode: the local OpenID provider (`local`), no external account needed. */
  readonly dev?: boolean;
  /** Rate limit of the URL and callback routes. @default { limit: 20, ttlMs: 60000 } */
  readonly throttle?: IntegrationsModuleOptions['throttle'];
  /** Nest's own logger (route table, bootstrap). @default ['error', 'warn'] */
  readonly nestLogger?: LoggerService | LogLevel[] | false;
}

/** What {@link createApp} returns. */
export interface NestMailboxApp {
  /** The initialized Nest application. */
  readonly nest: INestApplication;
  /** The Express instance under it: `server.on('request', http)`, or mount it in your server. */
  readonly http: Express;
  /** The library facade, for your own providers and jobs. */
  readonly auth: MailboxAuth;
  /** The local provider in dev mode. */
  readonly dev: DevServices | undefined;
  /** Close the Nest app, the dev provider and the database pool. Runs once; a failing step is logged. */
  close(): Promise<void>;
}

/** Build and initialize the app (it does not listen: attach `http` to a server whose origin is `config.origin`). */
export async function createApp(config: NestAppConfig): Promise<NestMailboxApp> {
  const origin = new URL(config.origin).origin;
  const log = config.log ?? ((line: string) => console.error(line));
  if (config.tokenKey === undefined && config.dev !== true)
    throw new AppConfigurationError('TOKEN_KEY is required outside dev mode');

  const closers: (() => Promise<void>)[] = [];
  const close = async () => {
    for (const closer of closers.splice(0).reverse()) {
      try {
        await closer();
      } catch (error) {
        log(`close: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
  };

  try {
    const { store, close: closeStore } = await openStore(config.databaseUrl);
    closers.push(closeStore);

    const callback = (id: string) => `${origin}/integrations/callback/${id}`;
    const providers: OAuthProvider[] = [];
    if (config.google !== undefined)
      providers.push(google({ ...config.google, redirectUri: callback('google') }));
    if (config.microsoft !== undefined)
      providers.push(microsoft({ ...config.microsoft, redirectUri: callback('microsoft') }));
    let dev: DevServices | undefined;
    if (config.dev === true) {
      dev = await startDevServices(origin);
      closers.push(dev.close);
      providers.push(dev.provider);
    }

    const auth = createMailboxAuth({
      providers,
      store,
      // A random key (dev mode) makes stored tokens unreadable after a restart: fine in memory only.
      cipher: aesGcmCipher({ keys: { k1: config.tokenKey ?? randomBytes(32) }, current: 'k1' }),
      allowedOrigins: [origin],
    });
    auth.on('reauthorizationRequired', ({ accountId }) =>
      log(`account ${accountId} needs to be connected again (the provider refused its refresh token)`),
    );

    @Module({
      imports: [
        IntegrationsModule.register({
          auth,
          origin,
          log,
          session: {
            // Random per run when unset: restarting signs every user out.
            secret: config.sessionSecret ?? randomBytes(32).toString('base64url'),
            secure: origin.startsWith('https:'),
          },
          ...(config.throttle === undefined ? {} : { throttle: config.throttle }),
        }),
      ],
    })
    class AppModule {}

    const http = express();
    http.disable('x-powered-by');
    // Never cached, no Referer onwards, no sniffing: every answer is JSON or a redirect.
    http.use((_req, res, next) => {
      res.set({
        'Cache-Control': 'no-store',
        'Referrer-Policy': 'no-referrer',
        'X-Content-Type-Options': 'nosniff',
      });
      next();
    });
    const nest = await NestFactory.create(AppModule, new ExpressAdapter(http), {
      logger: config.nestLogger ?? ['error', 'warn'],
      bodyParser: true,
    });
    nest.useGlobalFilters(new MailboxErrorFilter(log));
    await nest.init();
    closers.push(() => nest.close());
    return { nest, http, auth, dev, close };
  } catch (error) {
    await close();
    throw error;
  }
}
