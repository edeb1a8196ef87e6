/**
 * `oauth-mailbox/testing`: test a host app's mailbox routes without network. Needs `msw` (an optional
 * peer dependency).
 *
 * @packageDocumentation
 */
export {
  FakeGmailApi,
  type FakeGmailDelivery,
  type FakeGmailMessage,
  fakeGmailApi,
} from './fake-gmail.js';
export {
  FakeGraph,
  type FakeGraphDelivery,
  type FakeGraphMessage,
  type FakeGraphSent,
  fakeGraph,
} from './fake-graph.js';
export type {
  AccessTokenIssuer,
  FakeMailApiOptions,
  FakeMailApiStats,
  MailApiFault,
} from './fake-mail-api.js';
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
export type { HttpFault } from './faults.js';
export {
  type ConformanceRunner,
  type ConformanceTarget,
  describeStoreConformance,
  type StoreConformanceCase,
  StoreConformanceSkip,
  sampleAccountRecord,
  storeConformanceCases,
} from './store-conformance.js';
