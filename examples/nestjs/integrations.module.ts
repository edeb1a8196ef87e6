/**
 * The integrations module: the routes of {@link IntegrationsController}, the demo session, and
 * `@nestjs/throttler` for the URL and callback routes. The host builds the `MailboxAuth` facade (its store,
 * key and providers are the host's business) and hands it in:
 *
 * ```ts
 * @Module({ imports: [IntegrationsModule.register({ auth, origin, session: { secret, secure: true } })] })
 * export class AppModule {}
 * ```
 */
import { type DynamicModule, Module } from '@nestjs/common';
import { ThrottlerModule } from '@nestjs/throttler';
import type { MailboxAuth } from 'oauth-mailbox';
import { IntegrationsController } from './integrations.controller.js';
import { DemoSessionController, UserGuard } from './session.js';
import {
  INTEGRATIONS_OPTIONS,
  type IntegrationsOptions,
  MAILBOX_AUTH,
  SESSION_OPTIONS,
  type SessionOptions,
} from './tokens.js';

/** Options of {@link IntegrationsModule.register}. */
export interface IntegrationsModuleOptions extends IntegrationsOptions {
  readonly auth: MailboxAuth;
  readonly session: SessionOptions;
  /**
   * Requests allowed per client (IP address) and window on the URL and callback routes; beyond it they
   * answer 429 with `Retry-After`. @default { limit: 20, ttlMs: 60000 }
   */
  readonly throttle?: { readonly limit: number; readonly ttlMs: number };
}

@Module({})
// biome-ignore lint/complexity/noStaticOnlyClass: a Nest dynamic module is a class with a static `register`
export class IntegrationsModule {
  static register(options: IntegrationsModuleOptions): DynamicModule {
    const { auth, session, throttle = { limit: 20, ttlMs: 60_000 }, ...integrations } = options;
    return {
      module: IntegrationsModule,
      imports: [
        // In-memory counters, per process. Several instances: give ThrottlerModule a shared storage (Redis).
        ThrottlerModule.forRoot({
          throttlers: [{ limit: throttle.limit, ttl: throttle.ttlMs }],
          errorMessage: 'Too many requests: wait a minute and try again.',
        }),
      ],
      controllers: [IntegrationsController, DemoSessionController],
      providers: [
        { provide: MAILBOX_AUTH, useValue: auth },
        { provide: INTEGRATIONS_OPTIONS, useValue: integrations },
        { provide: SESSION_OPTIONS, useValue: session },
        UserGuard,
      ],
      exports: [MAILBOX_AUTH],
    };
  }
}
