/**
 * THE HOST'S SESSION — A STUB. Replace `currentOwner()` with your auth: Auth.js `(await auth())?.user?.id`,
 * Clerk `(await auth()).userId`, iron-session, your own cookie… Whatever it returns becomes the `owner` of
 * the mailboxes connected in this browser: the OAuth callback must come from the same owner as the start.
 *
 * The stub: the `demo-user` cookie if you set one (to try a second user, set `demo-user=alice` in the
 * browser's devtools), else the fixed id `demo-user`. Anyone can claim any id, so it refuses to run under
 * `NODE_ENV=production` unless `DEMO_SESSION=1` (for `next start` on your machine and the smoke test).
 */
import { cookies } from 'next/headers';

const OWNER_ID = /^[A-Za-z0-9_.@-]{1,64}$/;

/** The signed-in user's id, or `null` when nobody is signed in. */
export async function currentOwner(): Promise<string | null> {
  if (process.env.NODE_ENV === 'production' && process.env.DEMO_SESSION !== '1') return null;
  const fromCookie = (await cookies()).get('demo-user')?.value;
  return fromCookie !== undefined && OWNER_ID.test(fromCookie) ? fromCookie : 'demo-user';
}
