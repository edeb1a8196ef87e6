import type { Metadata } from 'next';
import type { ReactNode } from 'react';
import './globals.css';

export const metadata: Metadata = {
  title: 'Connected mailboxes — oauth-mailbox with Next.js',
  referrer: 'no-referrer',
};

export default function RootLayout({ children }: { readonly children: ReactNode }) {
  return (
    <html lang="en">
      <body>
        <header>
          <a href="/">oauth-mailbox · Next.js example</a>
          <a href="/accounts">Mailboxes</a>
        </header>
        <main>{children}</main>
      </body>
    </html>
  );
}
