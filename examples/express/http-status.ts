/** The HTTP status of a library error, shared by the Express and NestJS examples. */
import type { MailboxAuthError } from 'oauth-mailbox';

/** The HTTP status for a library error: by its category, with "not found" as 404. */
export function httpStatus(error: MailboxAuthError): number {
  if (error.code === 'ERR_UNKNOWN_PROVIDER' || error.code === 'ERR_ACCOUNT_NOT_FOUND') return 404;
  switch (error.category) {
    case 'request':
      return 400;
    case 'reauthorization':
      return 409; // the user must reconnect the mailbox; their session with us is fine, so not 401
    case 'transient':
      return 503;
    default:
      return 500; // configuration: the operator's problem
  }
}
