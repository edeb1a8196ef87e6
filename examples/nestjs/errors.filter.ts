/**
 * Every error ends here: Nest's `HttpException`s (401, 404, 429…) keep their status and body; a library
 * error becomes its status (see {@link httpStatus}) with only its stable code; anything else is a 500 with
 * `ERR_UNEXPECTED`. Logged with the code and the library's message, which never hold a secret.
 */
import { type ArgumentsHost, Catch, type ExceptionFilter, HttpException } from '@nestjs/common';
import type { Response } from 'express';
import { isMailboxAuthError } from 'oauth-mailbox';
import { httpStatus } from '../express/http-status.js';

@Catch()
export class MailboxErrorFilter implements ExceptionFilter {
  constructor(private readonly log: (line: string) => void) {}

  catch(error: unknown, host: ArgumentsHost): void {
    const http = host.switchToHttp();
    const res = http.getResponse<Response>();
    const req = http.getRequest<{ method: string; path: string }>();
    if (res.headersSent) return;
    if (error instanceof HttpException) {
      const status = error.getStatus();
      const body = error.getResponse();
      const ours = typeof body === 'object' && /^ERR_/.test(String((body as { error?: unknown }).error));
      // Nest's own 404 for an unknown route repeats the URL, query string included: answer without it.
      if (status === 404 && !ours)
        res.status(404).json({ statusCode: 404, message: 'There is no such route.' });
      else res.status(status).json(typeof body === 'string' ? { statusCode: status, message: body } : body);
      return;
    }
    if (isMailboxAuthError(error)) {
      this.log(`${req.method} ${req.path}: ${error.code}: ${error.message}`);
      const status = httpStatus(error);
      res.status(status).json({ statusCode: status, error: error.code });
      return;
    }
    // Not ours: the stack goes to the log, never to the client.
    this.log(
      `${req.method} ${req.path}: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`,
    );
    res.status(500).json({ statusCode: 500, error: 'ERR_UNEXPECTED' });
  }
}
