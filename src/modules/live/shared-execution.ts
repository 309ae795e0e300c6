import { SpanKind } from '@opentelemetry/api';
import {
  Kind,
  createSourceEventStream,
  execute,
  type ExecutionArgs,
  type ExecutionResult,
} from 'graphql';
import { metrics } from '../../core/metrics';
import { isTracing, startLinkedSpan, within, type TraceIds } from '../../core/tracing';
import { isPushSource, type EventSink, type PushSource } from './push-source';

/**
 * graphql-js runs a subscription's selection once per event and subscriber: with 50 agents on the
 * same events that is 50 identical executions of each, and most of the service's time. Here
 * subscriptions that would answer alike share one: the same event object (the feed hands one to
 * every subscriber), the same operation text and variables, and the same caller (principal kind, id
 * and role: what a resolver may look at besides the event). The result is the one graphql-js would
 * give each, computed with the first subscriber's context. Its payload is serialised once too
 * (payloadOf), and each socket adds only its envelope (next-frames.ts).
 */

type Result = ExecutionResult | Promise<ExecutionResult>;

/** Which subscriptions answer alike: null for one that shares with none. */
export type ShareKeyOf = (args: ExecutionArgs) => string | null;

export function sharedSubscribe(
  shareKeyOf: ShareKeyOf,
): (args: ExecutionArgs) => Promise<AsyncIterableIterator<ExecutionResult> | ExecutionResult> {
  // Per event object: gone with the event once every subscriber has had it.
  const results = new WeakMap<object, Map<string, Result>>();
  return async (args) => {
    // A span per subscribe (a trace of its own: a socket's messages carry no traceparent), with the
    // checks of its source beneath it; one per delivery, linked to the span of the write that made
    // the event (core/tracing.ts).
    const operation = operationOf(args);
    const stream = await within(
      startLinkedSpan(
        `subscription${operation.suffix}`,
        SpanKind.SERVER,
        undefined,
        operation.attributes,
      ),
      () => createSourceEventStream(args),
    );
    if (!isAsyncIterable(stream)) return stream;
    const key = shareKeyOf(args);
    const resultOf = (event: unknown): Result => {
      const run = () => execute({ ...args, rootValue: event });
      if (key === null || typeof event !== 'object' || event === null) return run();
      let byKey = results.get(event);
      if (!byKey) results.set(event, (byKey = new Map<string, Result>()));
      let result = byKey.get(key);
      if (!result) byKey.set(key, (result = run()));
      return result;
    };
    if (!isTracing()) return mapEvents(stream[Symbol.asyncIterator](), resultOf);
    return mapEvents(stream[Symbol.asyncIterator](), (event: unknown) =>
      within(
        startLinkedSpan(
          `deliver subscription${operation.suffix}`,
          SpanKind.PRODUCER,
          writeOf(event),
          operation.attributes,
        ),
        () => resultOf(event),
      ),
    );
  };
}

/** Per result object, shared by the subscriptions that answer alike: gone with the result. */
const payloads = new WeakMap<ExecutionResult, string>();

/**
 * The result's payload as JSON, serialised by `serialise` the first time it is asked for and
 * reused for every other subscription that shares the result.
 */
export function payloadOf(
  result: ExecutionResult,
  serialise: (result: ExecutionResult) => string,
): string {
  let payload = payloads.get(result);
  if (payload === undefined) {
    payload = serialise(result);
    payloads.set(result, payload);
    metrics.liveResultsSerialised.inc();
  }
  return payload;
}

/** The subscription's name in its spans: the operation's GraphQL name, when it has one. */
function operationOf(args: ExecutionArgs): {
  suffix: string;
  attributes: Record<string, string>;
} {
  const operations = args.document.definitions.filter((d) => d.kind === Kind.OPERATION_DEFINITION);
  const operation = args.operationName
    ? operations.find((o) => o.name?.value === args.operationName)
    : operations[0];
  const name = operation?.name?.value;
  return name
    ? {
        suffix: ` ${name}`,
        attributes: { 'graphql.operation.type': 'subscription', 'graphql.operation.name': name },
      }
    : { suffix: '', attributes: { 'graphql.operation.type': 'subscription' } };
}

/** The span of the write that made an event, when it was traced (build-events.ts records it). */
function writeOf(event: unknown): TraceIds | undefined {
  return typeof event === 'object' && event !== null
    ? (event as { trace?: TraceIds }).trace
    : undefined;
}

export function isAsyncIterable(value: unknown): value is AsyncIterable<unknown> {
  return typeof value === 'object' && value !== null && Symbol.asyncIterator in value;
}

/**
 * The source's events mapped to results. `return` goes straight to the source (an async generator
 * would wait for the next event first, and a quiet feed would never let a finished subscription
 * go). A source that pushes (the feed's) gives results that push too: each event mapped as it is
 * handed over, with no promise between unless the result is one.
 */
function mapEvents(
  source: AsyncIterator<unknown>,
  map: (event: unknown) => Result,
): AsyncIterableIterator<ExecutionResult> {
  const results: AsyncIterableIterator<ExecutionResult> = {
    async next() {
      const step = await source.next();
      if (step.done) return { done: true, value: undefined };
      try {
        return { done: false, value: await map(step.value) };
      } catch (error) {
        // As graphql-js's own mapping does: a failed execution ends the subscription's source too.
        await source.return?.();
        throw error;
      }
    },
    async return() {
      await source.return?.();
      return { done: true, value: undefined };
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
  if (!isPushSource(source)) return results;
  const pushTo = (sink: EventSink<ExecutionResult>): (() => void) => {
    let failed = false;
    const fail = (error: unknown) => {
      if (failed) return;
      failed = true;
      sink.fail(error);
      void source.return?.();
    };
    // The sink's resume is the source's: a result still being made holds the source until it is
    // taken, so results go in the events' order.
    const resume = source.pushTo({
      take: (event) => {
        if (failed) return false;
        let result: Result;
        try {
          result = map(event);
        } catch (error) {
          fail(error);
          return false;
        }
        if (!isPromiseLike(result)) return sink.take(result);
        result.then((value) => {
          if (!failed && sink.take(value)) resume();
        }, fail);
        return false;
      },
      end: () => {
        if (!failed) sink.end();
      },
      fail,
    });
    return resume;
  };
  return Object.assign(results, { pushTo }) satisfies PushSource<ExecutionResult>;
}

function isPromiseLike<T>(value: T | Promise<T>): value is Promise<T> {
  return typeof (value as Partial<Promise<T>>).then === 'function';
}
