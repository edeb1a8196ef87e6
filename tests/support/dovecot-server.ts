/**
 * The tests' view of the shared Dovecot harness (`examples/dev/dovecot.ts`): in CI a missing or unusable
 * Dovecot is an error, elsewhere a visible skip.
 */
import { dovecotUnavailableReason } from '../../examples/dev/dovecot.js';

export * from '../../examples/dev/dovecot.js';

/** Whether Dovecot can run here; in CI its absence is an error, elsewhere a visible skip. */
export function dovecotAvailable(): boolean {
  const reason = dovecotUnavailableReason();
  if (reason === undefined) return true;
  if (process.env.CI === 'true') throw new Error(`Dovecot tests cannot run in CI: ${reason}`);
  console.warn(`[skip] Dovecot tests: ${reason}`);
  return false;
}
