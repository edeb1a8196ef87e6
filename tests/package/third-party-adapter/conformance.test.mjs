// The exported conformance suite, run by node:test against the third-party Map store (map-store.mjs).
// With BREAK_STORE=1 the store hands a state out twice: the suite must then fail (the package check runs
// both and expects exactly that).
import { describe, it } from 'node:test';
import { describeStoreConformance } from 'oauth-mailbox/testing';
import { mapStore } from './map-store.mjs';

const broken = process.env.BREAK_STORE === '1';

/** A store whose states are not single-use: takeState puts the state back. */
function replayingStates(store) {
  return {
    ...store,
    async takeState(key) {
      const state = await store.takeState(key);
      if (state !== null) await store.putState(key, state, { maxPerOwner: 100 });
      return state;
    },
  };
}

describeStoreConformance(
  broken ? 'Map store (broken)' : 'Map store',
  async () => ({ store: broken ? replayingStates(mapStore()) : mapStore() }),
  { describe, it },
);
