/**
 * `@opentelemetry/api`, loaded on first use and only if the host installed it (an optional peer dependency):
 * importing the library never loads it, and its absence turns telemetry into a no-op.
 * @module
 */
import { createRequire } from 'node:module';

/** What the library uses of `@opentelemetry/api`: its global meter and tracer providers. @internal */
export interface OtelApi {
  readonly metrics: { getMeterProvider(): unknown };
  readonly trace: { getTracerProvider(): unknown };
}

let loaded: OtelApi | null | undefined;

/**
 * `@opentelemetry/api` from the host's dependencies, or `null` when it is not installed. Loaded once. The
 * API keeps its global providers on `globalThis`, so this copy sees the SDK a host registered through its
 * own import (ESM or CJS).
 * @internal
 */
export function otelApi(): OtelApi | null {
  if (loaded !== undefined) return loaded;
  try {
    // The ESM build resolves from this module's URL; the CJS build (where `import.meta` is empty) has `require`.
    const url: unknown = import.meta.url;
    const load = typeof url === 'string' ? createRequire(url) : require;
    loaded = load('@opentelemetry/api') as OtelApi;
  } catch {
    loaded = null;
  }
  return loaded;
}
