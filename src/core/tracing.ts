import {
  SpanKind,
  SpanStatusCode,
  TraceFlags,
  context,
  isSpanContextValid,
  trace,
  type Attributes,
  type Span,
  type SpanContext,
} from '@opentelemetry/api';

/**
 * The service's own spans, through the OpenTelemetry API only. Until app/tracing.ts registers a
 * provider (only when an OTLP endpoint is configured) every call here is the API's no-op: nothing
 * is recorded, kept or sent.
 *
 * The instrumentations make the rest: a server span per HTTP request, a span per GraphQL operation,
 * the database commands, the calls to exchanges and the log lines' trace ids.
 */

const tracer = trace.getTracer('wallet-service');

/**
 * Whether app/tracing.ts started the SDK. Off, the hot paths (a delivery per event and
 * subscription, a job's run) skip even the API's no-op spans.
 */
let started = false;

export function tracingStarted(): void {
  started = true;
}

export function isTracing(): boolean {
  return started;
}

/** A span's ids as an event keeps them, to link a delivery to the write that made it. */
export interface TraceIds {
  trace_id: string;
  span_id: string;
}

/**
 * A background job's run (a re-test, a sweep, a poll): a root span, sampled like a request, with
 * the job's work inside (its logs, database commands and exchange calls). A failure is handed to
 * `failed` within the span, so its log line carries the trace's ids; the span is marked failed,
 * without the error's message (messages may quote what a client sent). Never rejects.
 */
export function asJob(
  job: string,
  work: () => Promise<unknown>,
  failed: (error: unknown) => void,
): Promise<void> {
  if (!started) return work().then(() => undefined, failed);
  return tracer.startActiveSpan(
    `job ${job}`,
    { root: true, kind: SpanKind.INTERNAL },
    async (span) => {
      try {
        await work();
      } catch (error) {
        span.setStatus({ code: SpanStatusCode.ERROR });
        failed(error);
      } finally {
        span.end();
      }
    },
  );
}

/** The active span's ids when it is recorded and sampled (so a link to it leads somewhere). */
export function activeTraceIds(): TraceIds | undefined {
  const context = trace.getActiveSpan()?.spanContext();
  if (!context || !isSpanContextValid(context)) return undefined;
  if ((context.traceFlags & TraceFlags.SAMPLED) === 0) return undefined;
  return { trace_id: context.traceId, span_id: context.spanId };
}

/**
 * A span of its own for work a request set off but does not wait for (a subscription's start, an
 * event's delivery): a new root, linked to what caused it when that is known.
 */
export function startLinkedSpan(
  name: string,
  kind: SpanKind,
  cause?: TraceIds,
  attributes?: Attributes,
): Span {
  const links = cause ? [{ context: remoteContext(cause) }] : [];
  return tracer.startSpan(name, { root: true, kind, links, attributes });
}

/**
 * Runs `work` with `span` active (its database commands and log lines beneath it), then ends the
 * span; a failure marks it failed, without the error's message.
 */
export async function within<T>(span: Span, work: () => T | Promise<T>): Promise<T> {
  try {
    return await context.with(trace.setSpan(context.active(), span), work);
  } catch (error) {
    span.setStatus({ code: SpanStatusCode.ERROR });
    throw error;
  } finally {
    span.end();
  }
}

function remoteContext(ids: TraceIds): SpanContext {
  return {
    traceId: ids.trace_id,
    spanId: ids.span_id,
    traceFlags: TraceFlags.SAMPLED,
    isRemote: true,
  };
}
