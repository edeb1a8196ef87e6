/**
 * The library's OpenTelemetry instrumentation: the instruments and spans of refreshes, code exchanges, mail
 * connections, API calls and watchers, through `@opentelemetry/api` (an optional peer dependency).
 * @module
 */
import type {
  Attributes,
  Counter,
  Gauge,
  Histogram,
  Meter,
  MeterProvider,
  Span,
  Tracer,
  TracerProvider,
} from '@opentelemetry/api';
import { isMailboxAuthError } from '../errors.js';
import { ATTRIBUTES, INSTRUMENTATION_SCOPE, INSTRUMENTATION_VERSION, METRICS } from './names.js';
import { otelApi } from './otel-api.js';

/**
 * Where the library's metrics and spans go. Without it (or for a provider left out) the library uses the
 * global providers of `@opentelemetry/api`, which are no-ops until the host registers an SDK (and the
 * library records nothing when the package is not installed). Attributes hold provider ids, account ids
 * (spans only), transports, status classes and error codes: never a token, code, verifier, secret, email
 * address or error message.
 *
 * @example
 * ```ts
 * import { MeterProvider } from '@opentelemetry/sdk-metrics';
 * const auth = createMailboxAuth({ providers, store, cipher, telemetry: { meterProvider: new MeterProvider({ readers }) } });
 * ```
 */
export interface TelemetryOptions {
  /** An OpenTelemetry `MeterProvider`. @default the global one (`metrics.getMeterProvider()`) */
  readonly meterProvider?: {
    /** The meter of an instrumentation scope. */
    getMeter(name: string, version?: string): unknown;
  };
  /** An OpenTelemetry `TracerProvider`. @default the global one (`trace.getTracerProvider()`) */
  readonly tracerProvider?: {
    /** The tracer of an instrumentation scope. */
    getTracer(name: string, version?: string): unknown;
  };
}

/** The span status code of a failure (`SpanStatusCode.ERROR`), without loading the API for it. */
const STATUS_ERROR = 2;
/** `SpanKind.CLIENT`: every span of the library is a call to a server. */
const KIND_CLIENT = 2;

/** The values of the circuit state gauge. */
const CIRCUIT_STATE_VALUES: Readonly<Record<string, number>> = { closed: 0, half_open: 1, open: 2 };

interface Instruments {
  readonly refreshes: Counter;
  readonly refreshDuration: Histogram;
  readonly expiryHorizon: Histogram;
  readonly leaseWaits: Counter;
  readonly circuitTransitions: Counter;
  /** `undefined` on an API without synchronous gauges (before @opentelemetry/api 1.9). */
  readonly circuitState: Gauge | undefined;
  readonly apiCalls: Counter;
  readonly apiDuration: Histogram;
  readonly apiThrottled: Counter;
  readonly apiRetryAfter: Histogram;
  readonly watchDeliveries: Counter;
  readonly watchLag: Histogram;
  readonly watchFailures: Counter;
}

function createInstruments(meter: Meter): Instruments {
  const seconds = (name: string, description: string) =>
    meter.createHistogram(name, { description, unit: 's' });
  const counter = (name: string, unit: string, description: string) =>
    meter.createCounter(name, { description, unit });
  return {
    refreshes: counter(METRICS.refreshes, '{refresh}', 'Token refreshes sent to a provider, by outcome'),
    refreshDuration: seconds(METRICS.refreshDuration, 'Duration of a token refresh, retries included'),
    expiryHorizon: seconds(
      METRICS.expiryHorizon,
      'Seconds until a refreshed access token expires, at the time of the refresh',
    ),
    leaseWaits: counter(
      METRICS.leaseWaits,
      '{wait}',
      'Refreshes that found the refresh lease held by another process and waited for it',
    ),
    circuitTransitions: counter(
      METRICS.circuitTransitions,
      '{transition}',
      "Changes of a provider's circuit breaker state",
    ),
    circuitState:
      typeof meter.createGauge === 'function'
        ? meter.createGauge(METRICS.circuitState, {
            description: "A provider's circuit breaker state in this process: 0 closed, 1 half-open, 2 open",
            unit: '1',
          })
        : undefined,
    apiCalls: counter(
      METRICS.apiCalls,
      '{request}',
      'HTTP requests to the Gmail API and Microsoft Graph, by status class',
    ),
    apiDuration: seconds(METRICS.apiDuration, 'Duration of one HTTP request to a mail API'),
    apiThrottled: counter(
      METRICS.apiThrottled,
      '{response}',
      'Mail API answers that throttled or were unavailable (429, 5xx, Gmail rate-limit 403)',
    ),
    apiRetryAfter: seconds(METRICS.apiRetryAfter, 'Retry-After of a throttling mail API answer'),
    watchDeliveries: counter(
      METRICS.watchDeliveries,
      '{message}',
      'Messages a watcher delivered to its handler',
    ),
    watchLag: seconds(METRICS.watchLag, "Time from a delivered message's date to its delivery"),
    watchFailures: counter(
      METRICS.watchFailures,
      '{failure}',
      'Watch sessions that failed (the watcher reconnects or stops)',
    ),
  };
}

/** The `error.type` of a failure: the library's stable code, or `_OTHER` (never a message). @internal */
export function errorType(error: unknown): string {
  return isMailboxAuthError(error) ? error.code : '_OTHER';
}

/**
 * Put an HTTP answer's status on its client span: 400 and above is an error, `error.type` the status (as
 * the HTTP semantic conventions say).
 * @internal
 */
export function recordHttpStatus(span: Span | undefined, status: number): void {
  if (span === undefined) return;
  span.setAttribute(ATTRIBUTES.statusCode, status);
  if (status >= 400) {
    span.setAttribute(ATTRIBUTES.errorType, String(status));
    span.setStatus({ code: STATUS_ERROR });
  }
}

/**
 * What `make` builds from a provider, or `null` without one or when it fails (a provider that is not one):
 * telemetry never breaks the operation it records.
 */
function obtain<P, T>(provider: P | undefined, make: (provider: P) => T): T | null {
  if (provider === undefined) return null;
  try {
    return make(provider);
  } catch {
    return null;
  }
}

/** `2xx` … `5xx` for an HTTP status. @internal */
export function statusClass(status: number): string {
  return `${Math.floor(status / 100)}xx`;
}

/**
 * The instruments and tracer of one `createMailboxAuth` (or one `TokenRefresher`): created on first use,
 * from the given providers or the global ones. Every method is a no-op when `@opentelemetry/api` is absent.
 * @internal
 */
export class Telemetry {
  readonly #options: TelemetryOptions;
  #instruments: Instruments | null | undefined;
  #tracer: Tracer | null | undefined;

  constructor(options: TelemetryOptions = {}) {
    this.#options = options;
  }

  #metrics(): Instruments | null {
    if (this.#instruments === undefined) {
      const provider = this.#options.meterProvider ?? otelApi()?.metrics.getMeterProvider();
      this.#instruments = obtain(provider as MeterProvider | undefined, (p) =>
        createInstruments(p.getMeter(INSTRUMENTATION_SCOPE, INSTRUMENTATION_VERSION)),
      );
    }
    return this.#instruments;
  }

  #trace(): Tracer | null {
    if (this.#tracer === undefined) {
      const provider = this.#options.tracerProvider ?? otelApi()?.trace.getTracerProvider();
      this.#tracer = obtain(provider as TracerProvider | undefined, (p) =>
        p.getTracer(INSTRUMENTATION_SCOPE, INSTRUMENTATION_VERSION),
      );
    }
    return this.#tracer;
  }

  /**
   * Run `fn` in a client span named `name`: a failure sets the error status and `error.type` (its code),
   * never its message or stack (they may quote a server's answer).
   */
  async span<T>(
    name: string,
    attributes: Attributes,
    fn: (span: Span | undefined) => Promise<T>,
  ): Promise<T> {
    const tracer = this.#trace();
    if (tracer === null) return fn(undefined);
    return tracer.startActiveSpan(name, { kind: KIND_CLIENT, attributes }, async (span) => {
      try {
        return await fn(span);
      } catch (error) {
        span.setAttribute(ATTRIBUTES.errorType, errorType(error));
        span.setStatus({ code: STATUS_ERROR });
        throw error;
      } finally {
        span.end();
      }
    });
  }

  /** A refresh sent to the provider ended (`error` set when it failed). */
  refreshed(provider: string, seconds: number, error?: unknown): void {
    const m = this.#metrics();
    if (m === null) return;
    const attributes: Attributes =
      error === undefined
        ? { [ATTRIBUTES.provider]: provider, [ATTRIBUTES.outcome]: 'success' }
        : {
            [ATTRIBUTES.provider]: provider,
            [ATTRIBUTES.outcome]: 'failure',
            [ATTRIBUTES.errorType]: errorType(error),
          };
    m.refreshes.add(1, attributes);
    m.refreshDuration.record(seconds, attributes);
  }

  /** A refreshed token expires in `seconds`. */
  expiresIn(provider: string, seconds: number): void {
    this.#metrics()?.expiryHorizon.record(Math.max(0, seconds), { [ATTRIBUTES.provider]: provider });
  }

  /** A refresh found the account's lease held by another process. */
  leaseWait(provider: string): void {
    this.#metrics()?.leaseWaits.add(1, { [ATTRIBUTES.provider]: provider });
  }

  /** A provider's circuit breaker changed state. */
  circuit(provider: string, state: string): void {
    const m = this.#metrics();
    m?.circuitTransitions.add(1, {
      [ATTRIBUTES.provider]: provider,
      [ATTRIBUTES.circuitState]: state,
    });
    m?.circuitState?.record(CIRCUIT_STATE_VALUES[state] ?? 0, { [ATTRIBUTES.provider]: provider });
  }

  /** One HTTP request to a mail API ended: its status, or `undefined` when no answer came. */
  apiCall(transport: string, method: string, status: number | undefined, seconds: number): void {
    const m = this.#metrics();
    if (m === null) return;
    const attributes: Attributes = {
      [ATTRIBUTES.transport]: transport,
      [ATTRIBUTES.method]: method,
      [ATTRIBUTES.statusClass]: status === undefined ? 'error' : statusClass(status),
    };
    m.apiCalls.add(1, attributes);
    m.apiDuration.record(seconds, attributes);
  }

  /** A mail API throttled (or was unavailable), with its Retry-After when it sent one. */
  apiThrottled(transport: string, status: number, retryAfterMs: number | undefined): void {
    const m = this.#metrics();
    if (m === null) return;
    const attributes: Attributes = { [ATTRIBUTES.transport]: transport, [ATTRIBUTES.statusCode]: status };
    m.apiThrottled.add(1, attributes);
    if (retryAfterMs !== undefined) m.apiRetryAfter.record(retryAfterMs / 1000, attributes);
  }

  /** A watcher delivered a message dated `date`. */
  delivered(transport: string, date: Date | undefined, now: number): void {
    const m = this.#metrics();
    if (m === null) return;
    const attributes: Attributes = { [ATTRIBUTES.transport]: transport };
    m.watchDeliveries.add(1, attributes);
    if (date !== undefined) m.watchLag.record(Math.max(0, (now - date.getTime()) / 1000), attributes);
  }

  /** A watch session failed. */
  watchFailed(transport: string, error: unknown): void {
    this.#metrics()?.watchFailures.add(1, {
      [ATTRIBUTES.transport]: transport,
      [ATTRIBUTES.errorType]: errorType(error),
    });
  }
}

const shared = new WeakMap<TelemetryOptions, Telemetry>();
let globalTelemetry: Telemetry | undefined;

/**
 * The `Telemetry` of `options`: the same instance for the same options object (the flow, the refresher and
 * the mail layer of one `createMailboxAuth` share it), and one shared instance on the global providers.
 * @internal
 */
export function telemetryFrom(options: TelemetryOptions | undefined): Telemetry {
  if (options === undefined) {
    globalTelemetry ??= new Telemetry();
    return globalTelemetry;
  }
  let telemetry = shared.get(options);
  if (telemetry === undefined) {
    telemetry = new Telemetry(options);
    shared.set(options, telemetry);
  }
  return telemetry;
}

const byOwner = new WeakMap<object, Telemetry>();

/** Remember the telemetry of an object (a `TokenRefresher`), for the layers built on it. @internal */
export function bindTelemetry(owner: object, telemetry: Telemetry): void {
  byOwner.set(owner, telemetry);
}

/**
 * The telemetry bound to `owner` (the mail layer reads its refresher's), or the global one.
 * @internal
 */
export function telemetryOf(owner: object): Telemetry {
  return byOwner.get(owner) ?? telemetryFrom(undefined);
}
