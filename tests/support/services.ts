/**
 * Tests that need a server (PostgreSQL, Redis, Dovecot) read its address from the environment. On a
 * developer's machine without it they skip with a visible reason; in CI (`CI=true`) a missing variable
 * fails the run.
 */
export function requireService(variable: string, name: string): string | undefined {
  const value = process.env[variable];
  if (value) return value;
  if (process.env.CI === 'true') {
    throw new Error(`${variable} is not set: CI must run the ${name} tests (see .ci/run)`);
  }
  console.warn(`[skip] ${name} tests: set ${variable} to run them`);
  return undefined;
}
