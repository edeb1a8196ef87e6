import type { NextConfig } from 'next';

const config: NextConfig = {
  // Node-only libraries: load them with Node's own resolution at run time instead of bundling them.
  // (`pg` is on Next's built-in list already; the others open sockets or use native Node APIs.)
  serverExternalPackages: ['oauth-mailbox', 'imapflow', 'nodemailer', 'openid-client', 'ioredis', 'pg'],
};

export default config;
