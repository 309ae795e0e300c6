import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import {
  AlwaysOnSampler,
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { MAX_OPERATION_NAME, scrub } from '../src/app/tracing';

/**
 * What app/tracing.ts's processor takes out of every span before it is exported, on spans shaped
 * as the instrumentations make them (test/tracing.test.ts sees it on the built service: these are
 * the paths that a test from outside can't reach at will, such as a failed command's message).
 */

const MARK = 'marker-3f9a1c';

function exportedOf(make: (provider: BasicTracerProvider) => void) {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({
    sampler: new AlwaysOnSampler(),
    spanProcessors: [scrub, new SimpleSpanProcessor(exporter)],
  });
  make(provider);
  return exporter.getFinishedSpans();
}

describe('the span scrubber', () => {
  it("takes error messages and exception messages and stacks out of every span (they may quote a client's input)", () => {
    const [span] = exportedOf((provider) => {
      const started = provider.getTracer('test').startSpan('insert users', {
        kind: SpanKind.CLIENT,
      });
      started.recordException(new Error(`E11000 duplicate key: { email: "${MARK}@example.com" }`));
      started.setStatus({ code: SpanStatusCode.ERROR, message: `dup key ${MARK}` });
      started.end();
    });
    expect(span.status).toEqual({ code: SpanStatusCode.ERROR });
    expect(span.events.map((e) => e.name)).toEqual(['exception']);
    expect(span.events[0].attributes).toEqual({ 'exception.type': 'Error' });
    expect(JSON.stringify([span.name, span.attributes, span.status, span.events])).not.toContain(
      MARK,
    );
  });

  it('drops the GraphQL document and database statements, cuts the operation name, and marks MongoDB spans with db.system', () => {
    const long = `Op${MARK}${'x'.repeat(100)}`;
    const [operation, command] = exportedOf((provider) => {
      const tracer = provider.getTracer('test');
      const execute = tracer.startSpan('graphql.execute');
      execute.setAttributes({
        'graphql.operation.type': 'query',
        'graphql.operation.name': long,
        'graphql.source': `query ${long} { walletDefinition(slug: "${MARK}") { id } }`,
      });
      execute.updateName(`query ${long}`);
      execute.end();
      const find = tracer.startSpan('find users', { kind: SpanKind.CLIENT });
      find.setAttributes({
        'db.system.name': 'mongodb',
        'db.query.text': `{"find":"users","filter":{"email":"${MARK}"}}`,
        'db.statement': MARK,
      });
      find.end();
    });
    expect(operation.name).toBe(`query ${long.slice(0, MAX_OPERATION_NAME)}`);
    expect(operation.attributes).toEqual({
      'graphql.operation.type': 'query',
      'graphql.operation.name': long.slice(0, MAX_OPERATION_NAME),
    });
    expect(command.attributes).toEqual({ 'db.system.name': 'mongodb', 'db.system': 'mongodb' });
  });

  it("keeps query strings out of URLs, and of an incoming request keeps only the service's own routes and no header the caller wrote", () => {
    const [call, known, unknown] = exportedOf((provider) => {
      const tracer = provider.getTracer('test');
      tracer
        .startSpan('GET', {
          kind: SpanKind.CLIENT,
          attributes: {
            'url.full': `https://api.exchange.example/api/v3/account?timestamp=1&signature=${MARK}`,
            'url.path': '/api/v3/account',
            'url.query': `timestamp=1&signature=${MARK}`,
            'user_agent.original': 'ccxt',
          },
        })
        .end();
      for (const path of ['/graphql', `/graphql/${MARK}`])
        tracer
          .startSpan('GET', {
            kind: SpanKind.SERVER,
            attributes: {
              'url.path': path,
              'url.query': `query=${MARK}`,
              'http.target': `${path}?query=${MARK}`,
              'user_agent.original': MARK,
              'server.address': `${MARK}.example`,
              'client.address': '127.0.0.1',
            },
          })
          .end();
    });
    expect(call.attributes).toEqual({
      'url.full': 'https://api.exchange.example/api/v3/account',
      'url.path': '/api/v3/account',
      'user_agent.original': 'ccxt',
    });
    expect(known.attributes).toEqual({ 'url.path': '/graphql', 'client.address': '127.0.0.1' });
    expect(unknown.attributes).toEqual({ 'client.address': '127.0.0.1' });
  });
});
