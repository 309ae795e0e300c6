import {
  SpanKind,
  type Attributes,
  type Context,
  type Link,
  type TextMapPropagator,
} from '@opentelemetry/api';
import type { Sampler, SamplingResult, Span, SpanProcessor } from '@opentelemetry/sdk-trace-base';
import type { TracingConfig } from '../core/config';
import { tracingStarted } from '../core/tracing';
import type { Logger } from '../core/logger';

/**
 * OpenTelemetry tracing, started by main.ts before anything it instruments is loaded (the http,
 * graphql, mongodb and pino instrumentations patch those modules as they are required). Nothing of
 * the SDK is even loaded when tracing is off (no OTLP endpoint, or OTEL_SDK_DISABLED): the API in
 * core/tracing.ts stays its own no-op.
 *
 * What leaves the process is decided here, not by each instrumentation's defaults:
 * - no tracing header goes out (the propagator only reads the caller's `traceparent`): exchanges
 *   see none of our traces;
 * - span attributes, names, statuses and events carry nothing a client sent and no secret (see
 *   `scrub`);
 * - only the operation span of a GraphQL request: parse and validate spans are not recorded, nor
 *   resolver spans.
 */

export interface Tracing {
  /** Where the SDK's own problems (an export that failed) are logged, once a logger exists. */
  logTo(logger: Logger): void;
  /** Sends what is still waiting, then stops. */
  stop(): Promise<void>;
}

/** The longest GraphQL operation name a span carries (names are client-chosen). */
export const MAX_OPERATION_NAME = 64;
/** The service's own routes: an incoming span names its path only when it is one of them. */
const ROUTES = new Set(['/graphql', '/graphiql', '/metrics', '/health', '/ready']);
/** Polled by probes and scrapers every few seconds: no trace worth keeping. */
const UNTRACED_ROUTES = new Set(['/health', '/ready', '/metrics']);
/** graphql-js's steps besides execution: a request's trace has its operation span only. */
const UNRECORDED_SPANS = new Set(['graphql.parse', 'graphql.validate', 'graphql.parseSchema']);

export async function startTracing(
  config: TracingConfig | undefined,
): Promise<Tracing | undefined> {
  if (!config) return undefined;
  const [
    api,
    base,
    { NodeTracerProvider },
    { resourceFromAttributes },
    { W3CTraceContextPropagator },
  ] = await Promise.all([
    import('@opentelemetry/api'),
    import('@opentelemetry/sdk-trace-base'),
    import('@opentelemetry/sdk-trace-node'),
    import('@opentelemetry/resources'),
    import('@opentelemetry/core'),
  ]);
  const { OTLPTraceExporter } =
    config.protocol === 'http/json'
      ? await import('@opentelemetry/exporter-trace-otlp-http')
      : await import('@opentelemetry/exporter-trace-otlp-proto');

  const exporter = new OTLPTraceExporter({
    url: config.url,
    headers: config.headers,
    timeoutMillis: 10_000,
  });
  // Every value given, so the SDK's classes read no OTEL_* variable of their own.
  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({ 'service.name': config.serviceName }),
    sampler: new SkipGraphqlSteps(samplerOf(config, base), {
      decision: base.SamplingDecision.NOT_RECORD,
    }),
    spanLimits: {
      attributeCountLimit: 128,
      attributeValueLengthLimit: 4_096,
      eventCountLimit: 128,
      linkCountLimit: 128,
      attributePerEventCountLimit: 128,
      attributePerLinkCountLimit: 128,
    },
    spanProcessors: [
      scrub,
      new base.BatchSpanProcessor(exporter, {
        scheduledDelayMillis: config.scheduleDelayMs,
        maxQueueSize: 2_048,
        maxExportBatchSize: 512,
        exportTimeoutMillis: 30_000,
      }),
    ],
  });
  const w3c = new W3CTraceContextPropagator();
  const readOnly: TextMapPropagator = {
    inject: () => undefined,
    extract: (context, carrier, getter) => w3c.extract(context, carrier, getter),
    fields: () => [],
  };
  provider.register({ propagator: readOnly });
  await instrument(provider);
  tracingStarted();

  return {
    logTo(logger) {
      api.diag.setLogger(
        {
          error: (message) => logger.error({ tracing: true }, message),
          warn: (message) => logger.warn({ tracing: true }, message),
          info: () => undefined,
          debug: () => undefined,
          verbose: () => undefined,
        },
        { logLevel: api.DiagLogLevel.WARN, suppressOverrideMessage: true },
      );
    },
    stop: () => provider.shutdown(),
  };
}

type SdkBase = typeof import('@opentelemetry/sdk-trace-base');

/** OTEL_TRACES_SAMPLER as the specification defines it. */
function samplerOf(config: TracingConfig, base: SdkBase): Sampler {
  const ratio = () => new base.TraceIdRatioBasedSampler(config.samplerRatio);
  switch (config.sampler) {
    case 'always_on':
      return new base.AlwaysOnSampler();
    case 'always_off':
      return new base.AlwaysOffSampler();
    case 'traceidratio':
      return ratio();
    case 'parentbased_always_on':
      return new base.ParentBasedSampler({ root: new base.AlwaysOnSampler() });
    case 'parentbased_always_off':
      return new base.ParentBasedSampler({ root: new base.AlwaysOffSampler() });
    case 'parentbased_traceidratio':
      return new base.ParentBasedSampler({ root: ratio() });
  }
}

/** The configured sampler, except for graphql-js's parse and validate steps: never recorded. */
class SkipGraphqlSteps implements Sampler {
  constructor(
    private readonly inner: Sampler,
    private readonly notRecorded: SamplingResult,
  ) {}

  shouldSample(
    context: Context,
    traceId: string,
    name: string,
    kind: SpanKind,
    attributes: Attributes,
    links: Link[],
  ): SamplingResult {
    if (UNRECORDED_SPANS.has(name)) return this.notRecorded;
    return this.inner.shouldSample(context, traceId, name, kind, attributes, links);
  }

  toString(): string {
    return `SkipGraphqlSteps{${this.inner.toString()}}`;
  }
}

/**
 * Runs as each span ends, before it is queued for export: what the instrumentations would
 * otherwise send of a client's input or of a signed request.
 */
export const scrub: SpanProcessor = {
  onStart: () => undefined,
  onEnding(span: Span) {
    const attributes = span.attributes as Record<string, unknown>;
    // The document's text (its literals are the client's values) and the database statements.
    delete attributes['graphql.source'];
    delete attributes['db.query.text'];
    delete attributes['db.statement'];
    if (attributes['db.system.name'] === 'mongodb') attributes['db.system'] = 'mongodb';
    const operation = attributes['graphql.operation.name'];
    if (typeof operation === 'string' && operation.length > MAX_OPERATION_NAME) {
      const cut = operation.slice(0, MAX_OPERATION_NAME);
      attributes['graphql.operation.name'] = cut;
      const type = attributes['graphql.operation.type'];
      span.updateName(typeof type === 'string' ? `${type} ${cut}` : cut);
    }
    // A query string carries a GET request's operation, or an exchange request's signature.
    delete attributes['url.query'];
    delete attributes['http.target'];
    for (const key of ['url.full', 'http.url', 'url.path'])
      if (typeof attributes[key] === 'string') attributes[key] = attributes[key].split('?')[0];
    if (span.kind === SpanKind.SERVER) {
      // What the caller wrote in its request line and headers: kept only as the service's routes.
      if (typeof attributes['url.path'] === 'string' && !ROUTES.has(attributes['url.path']))
        delete attributes['url.path'];
      delete attributes['user_agent.original'];
      delete attributes['server.address'];
    }
    // Errors' messages and stacks may quote a client's input (a variable, a duplicate key).
    delete span.status.message;
    for (const event of span.events) {
      const eventAttributes = event.attributes;
      if (!eventAttributes) continue;
      delete eventAttributes['exception.message'];
      delete eventAttributes['exception.stacktrace'];
    }
  },
  onEnd: () => undefined,
  forceFlush: () => Promise.resolve(),
  shutdown: () => Promise.resolve(),
};

/** The maintained instrumentations, each told to record no values. */
async function instrument(provider: import('@opentelemetry/sdk-trace-node').NodeTracerProvider) {
  const [
    { registerInstrumentations },
    { HttpInstrumentation },
    { UndiciInstrumentation },
    { GraphQLInstrumentation },
    { MongoDBInstrumentation },
    { PinoInstrumentation },
  ] = await Promise.all([
    import('@opentelemetry/instrumentation'),
    import('@opentelemetry/instrumentation-http'),
    import('@opentelemetry/instrumentation-undici'),
    import('@opentelemetry/instrumentation-graphql'),
    import('@opentelemetry/instrumentation-mongodb'),
    import('@opentelemetry/instrumentation-pino'),
  ]);
  registerInstrumentations({
    tracerProvider: provider,
    instrumentations: [
      new HttpInstrumentation({
        // The service calls out only to exchanges, through fetch (undici below).
        disableOutgoingRequestInstrumentation: true,
        ignoreIncomingRequestHook: (request) =>
          UNTRACED_ROUTES.has((request.url ?? '').split('?')[0]),
      }),
      // Calls to exchanges: client spans of the request or job that made them.
      new UndiciInstrumentation({ requireParentforSpans: true }),
      new GraphQLInstrumentation({
        ignoreResolveSpans: true,
        allowValues: false,
        depth: 0,
        mergeItems: true,
      }),
      new MongoDBInstrumentation({
        enhancedDatabaseReporting: false,
        requireParentSpan: true,
        // The statement is dropped (scrub): not worth serialising first, a cost on every command.
        dbStatementSerializer: () => '',
      }),
      // trace_id and span_id on every line logged while a span is active; no log export.
      new PinoInstrumentation({ disableLogSending: true }),
    ],
  });
}
