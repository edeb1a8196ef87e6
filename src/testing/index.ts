/**
 * `oauth-mailbox/testing`: test a host app's mailbox routes without network. Needs `msw` (an optional
 * peer dependency).
 *
 * @packageDocumentation
 */
export {
  type ApproveOptions,
  FakeOAuthProvider,
  type FakeProviderOptions,
  type FakeProviderStats,
  fakeGoogle,
  fakeMicrosoft,
  type IdTokenTweaks,
  type TokenFault,
} from './fake-provider.js';
