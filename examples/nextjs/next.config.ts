import type { NextConfig } from 'next';

const config: NextConfig = {
  // Node-only libraries: loaded with Node's own `require`/`import` at run time instead of being bundled.
  // Installed from npm, `oauth-mailbox` is external too: one copy per process for every route, and readable
  // error class names in logs (a bundled, minified copy logs `c: The state parameter is malformed`).
  // (`pg` is on Next's built-in list already; listed for clarity.)
  serverExternalPackages: ['oauth-mailbox', 'openid-client', 'imapflow', 'nodemailer', 'pg', 'ioredis'],
};

export default config;
