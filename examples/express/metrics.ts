/**
 * `/metrics` for Prometheus: an OpenTelemetry meter provider whose reader is the Prometheus exporter (no
 * server of its own: Express serves its handler). The library's instruments (`oauth_mailbox.*`, see
 * docs/operations.md) are recorded through it; nothing in them is a secret or an email address.
 */
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import type { Request, Response } from 'express';

export interface Metrics {
  /** Give it to `createMailboxAuth({ telemetry: { meterProvider } })`. */
  readonly meterProvider: MeterProvider;
  /** The Express handler of `GET /metrics` (Prometheus text format). */
  readonly handler: (req: Request, res: Response) => void;
  readonly close: () => Promise<void>;
}

export function createMetrics(): Metrics {
  const exporter = new PrometheusExporter({ preventServerStart: true });
  const meterProvider = new MeterProvider({ readers: [exporter] });
  return {
    meterProvider,
    handler: (req, res) => exporter.getMetricsRequestHandler(req, res),
    close: () => meterProvider.shutdown(),
  };
}
