/**
 * The integrations routes (all behind {@link UserGuard}; the URL and callback routes also rate-limited):
 *
 * - `GET    /integrations/oauth-url/:provider`   `{ url }`: send the browser there to connect a mailbox
 * - `GET    /integrations/callback/:provider`    the provider's redirect back; then to `/?status=success|error…`
 * - `GET    /integrations/accounts`              the user's mailboxes (no token in them)
 * - `DELETE /integrations/accounts/:id`          revoke at the provider and delete (the user's own only)
 * - `POST   /integrations/sync/:id`              refresh the account's token now; its health
 */
import {
  Controller,
  Delete,
  Get,
  HttpCode,
  Inject,
  NotFoundException,
  Param,
  Post,
  Req,
  Res,
  UseGuards,
} from '@nestjs/common';
import { ThrottlerGuard } from '@nestjs/throttler';
import type { Request, Response } from 'express';
import { buildReturnUrl, isMailboxAuthError, type MailboxAccount, type MailboxAuth } from 'oauth-mailbox';
import { CurrentUser, UserGuard } from './session.js';
import { INTEGRATIONS_OPTIONS, type IntegrationsOptions, MAILBOX_AUTH } from './tokens.js';

/** A connected mailbox as the API shows it: no token, no scope list, no owner. */
export interface AccountView {
  readonly id: string;
  readonly provider: string;
  readonly email: string;
  readonly status: MailboxAccount['status'];
  readonly connectedAt: string;
  readonly lastRefreshedAt: string | null;
  /** The stable code of the last failure, such as `ERR_REAUTHORIZATION_REQUIRED`. */
  readonly lastError: string | null;
}

function view(account: MailboxAccount): AccountView {
  return {
    id: account.id,
    provider: account.provider,
    email: account.email,
    status: account.status,
    connectedAt: account.createdAt.toISOString(),
    lastRefreshedAt: account.lastRefreshedAt?.toISOString() ?? null,
    lastError: account.lastError?.code ?? null,
  };
}

const notFound = (code: 'ERR_ACCOUNT_NOT_FOUND' | 'ERR_UNKNOWN_PROVIDER') =>
  new NotFoundException({ statusCode: 404, error: code });

@Controller('integrations')
@UseGuards(UserGuard)
export class IntegrationsController {
  readonly #providers: ReadonlySet<string>;

  constructor(
    @Inject(MAILBOX_AUTH) private readonly auth: MailboxAuth,
    @Inject(INTEGRATIONS_OPTIONS) private readonly options: IntegrationsOptions,
  ) {
    this.#providers = new Set(auth.listProviders().map((p) => p.id));
  }

  /** Unknown provider ids are a 404 before any library call. */
  #provider(id: string): string {
    if (!this.#providers.has(id)) throw notFound('ERR_UNKNOWN_PROVIDER');
    return id;
  }

  /** The account, if it exists and belongs to `owner`; another owner's id looks like a missing one. */
  async #owned(owner: string, id: string): Promise<MailboxAccount> {
    const account = await this.auth.getAccount(id).catch((error: unknown) => {
      if (
        isMailboxAuthError(error, 'ERR_ACCOUNT_NOT_FOUND') ||
        isMailboxAuthError(error, 'ERR_INVALID_ARGUMENT')
      )
        return undefined;
      throw error;
    });
    if (account?.owner !== owner) throw notFound('ERR_ACCOUNT_NOT_FOUND');
    return account;
  }

  // ThrottlerGuard runs after the class's UserGuard: only signed-in users get this far, counted per client.
  @Get('oauth-url/:provider')
  @UseGuards(ThrottlerGuard)
  async oauthUrl(@Param('provider') provider: string, @CurrentUser() owner: string) {
    const { url } = await this.auth.startAuthorization(this.#provider(provider), { owner, returnTo: '/' });
    return { url: url.href };
  }

  @Get('callback/:provider')
  @UseGuards(ThrottlerGuard)
  async callback(
    @Param('provider') provider: string,
    @CurrentUser() owner: string,
    @Req() req: Request,
    @Res() res: Response,
  ): Promise<void> {
    const { origin, log } = this.options;
    const id = this.#provider(provider);
    let target: URL;
    try {
      // The URL carries the code and state: hand it to the library, never to a log.
      const { account, created, returnTo } = await this.auth.completeAuthorization(
        id,
        new URL(req.originalUrl, origin),
        { owner },
      );
      log(`${created ? 'connected' : 'reconnected'} ${id} account ${account.id}`);
      target = buildReturnUrl(
        returnTo ?? '/',
        { status: 'success', provider: id, accountId: account.id },
        origin,
      );
    } catch (error) {
      log(
        `callback ${id}: ${isMailboxAuthError(error) ? `${error.code}: ${error.message}` : 'unexpected error'}`,
      );
      // Only the stable code reaches the browser: /?status=error&provider=…&error=ERR_…
      target = buildReturnUrl('/', { status: 'error', provider: id, error }, origin);
    }
    res.set('Referrer-Policy', 'no-referrer').redirect(302, target.href);
  }

  @Get('accounts')
  async accounts(@CurrentUser() owner: string) {
    // One page is plenty for an example; page with `nextCursor` if a user can have more than 100 mailboxes.
    const { accounts } = await this.auth.persistence.listAccounts({ owner }, { limit: 100 });
    return { accounts: accounts.map(view) };
  }

  @Delete('accounts/:id')
  async disconnect(@Param('id') id: string, @CurrentUser() owner: string) {
    const account = await this.#owned(owner, id);
    const { revoked, revocationError } = await this.auth.disconnect(account.id);
    if (revocationError !== undefined)
      this.options.log(`revoke ${account.id}: ${revocationError.code}: ${revocationError.message}`);
    this.options.log(`disconnected account ${account.id}`);
    return { disconnected: account.id, revoked };
  }

  /**
   * Refresh the account's access token now and answer its health: the first step of any sync, and the check
   * that the grant still works (a revoked one is 409 `ERR_REAUTHORIZATION_REQUIRED`: connect again). Your
   * sync then reads the mailbox: `auth.mailbox(id).fetchUnread()`.
   */
  @Post('sync/:id')
  @HttpCode(200)
  async sync(@Param('id') id: string, @CurrentUser() owner: string) {
    const account = await this.#owned(owner, id);
    await this.auth.getAccessToken(account.id, { forceRefresh: true }); // the token stays on the server
    this.options.log(`synced account ${account.id}`);
    return { account: view(await this.auth.getAccount(account.id)) };
  }
}
