/** The instrument and span names: versioned with the package, and each one documented. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { INSTRUMENTATION_VERSION, METRICS, SPANS } from '../../src/telemetry/names.js';
import { otelApi } from '../../src/telemetry/otel-api.js';
import { Telemetry } from '../../src/telemetry/telemetry.js';

describe('telemetry names', () => {
  it('the instrumentation scope carries the package version', () => {
    const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { version: string };
    expect(INSTRUMENTATION_VERSION).toBe(pkg.version);
  });

  it('docs/operations.md lists every metric and span', () => {
    const doc = readFileSync('docs/operations.md', 'utf8');
    for (const name of [...Object.values(METRICS), ...Object.values(SPANS)])
      expect(doc).toContain(`\`${name}\``);
  });

  it('loads @opentelemetry/api when it is installed', () => {
    expect(typeof otelApi()?.metrics.getMeterProvider).toBe('function');
  });
});

describe('telemetry that cannot record', () => {
  it('a provider that is not one records nothing and breaks nothing', async () => {
    const telemetry = new Telemetry({
      meterProvider: { getMeter: () => ({}) },
      tracerProvider: {
        getTracer: () => {
          throw new Error('not a tracer provider');
        },
      },
    });
    telemetry.refreshed('google', 0.1);
    expect(await telemetry.span('x', {}, async (span) => span)).toBeUndefined();
  });
});
