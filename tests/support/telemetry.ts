/**
 * OpenTelemetry SDKs that keep everything in memory: a meter provider whose reader is collected on demand
 * (into an `InMemoryMetricExporter`), and a tracer provider exporting finished spans to an
 * `InMemorySpanExporter` as they end.
 */
import type { Attributes } from '@opentelemetry/api';
import {
  AggregationTemporality,
  DataPointType,
  InMemoryMetricExporter,
  MeterProvider,
  MetricReader,
  type ResourceMetrics,
} from '@opentelemetry/sdk-metrics';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import type { TelemetryOptions } from '../../src/index.js';

/** A reader that collects only when asked. */
class OnDemandReader extends MetricReader {
  protected override async onForceFlush(): Promise<void> {}
  protected override async onShutdown(): Promise<void> {}
}

/** One metric point: its attributes, and a sum's value or a histogram's count and sum. */
export interface Point {
  readonly attributes: Attributes;
  readonly value?: number;
  readonly count?: number;
  readonly sum?: number;
}

export function memoryTelemetry() {
  const reader = new OnDemandReader();
  const meterProvider = new MeterProvider({ readers: [reader] });
  const spans = new InMemorySpanExporter();
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] });
  const metrics = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
  const telemetry: TelemetryOptions = { meterProvider, tracerProvider };

  /** Collect now; every metric of the library, by name. */
  const collect = async (): Promise<ResourceMetrics> => {
    const { resourceMetrics } = await reader.collect();
    metrics.reset();
    await new Promise<void>((resolve) => metrics.export(resourceMetrics, () => resolve()));
    return metrics.getMetrics()[0] as ResourceMetrics;
  };
  const metric = async (name: string) => {
    const found = (await collect()).scopeMetrics
      .flatMap((s) => s.metrics)
      .find((m) => m.descriptor.name === name);
    return found;
  };
  /** The points of one metric (empty when it recorded nothing). */
  const points = async (name: string): Promise<Point[]> => {
    const found = await metric(name);
    if (found === undefined) return [];
    return found.dataPoints.map((p) =>
      found.dataPointType === DataPointType.HISTOGRAM
        ? {
            attributes: p.attributes,
            count: (p.value as { count: number }).count,
            sum: (p.value as { sum?: number }).sum ?? 0,
          }
        : { attributes: p.attributes, value: p.value as number },
    );
  };
  /** Finished spans named `name`. */
  const finished = (name?: string): ReadableSpan[] =>
    spans.getFinishedSpans().filter((s) => name === undefined || s.name === name);
  return { telemetry, collect, metric, points, finished, meterProvider, tracerProvider };
}
