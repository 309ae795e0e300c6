import { randomBytes } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { print } from 'graphql';
import {
  CreateCredentialDocument,
  CreateUserWalletDocument,
  UpdateAiManagedStateDocument,
  LoginDocument,
  MeDocument,
  RegisterDocument,
  TestCredentialConnectionDocument,
} from './generated/graphql';
import { gqlAt, testEnv, type GqlResult, type TestApp } from './helpers/app';
import { adminToken, agentToken, limits, simulatedDefinition } from './helpers/factories';
import { subscribe, until } from './helpers/live';
import { startInstance, waitFor } from './helpers/processes';
import { startBinanceSimulator, type Simulator } from './simulators/binance.simulator';

/**
 * OpenTelemetry traces, as a collector receives them. The instrumentations hook `require`, which
 * jest's module registry hides, so the traced service is the built one (dist/main.js) in a process
 * of its own, exporting OTLP/HTTP to a receiver here. Every value a client sends carries a marker;
 * no marker may appear anywhere in what was exported.
 */

/** What a receiver got: each export's body and headers. */
interface Receiver {
  url: string;
  exports: Array<{ path: string; headers: IncomingHttpHeaders; body: Buffer }>;
  close(): Promise<void>;
}

async function startReceiver(port = 0, host = '127.0.0.1'): Promise<Receiver> {
  const exports: Receiver['exports'] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      exports.push({ path: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks) });
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolve);
  });
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${(server.address() as AddressInfo).port}`,
    exports,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

interface OtlpAttribute {
  key: string;
  value: Record<string, unknown>;
}
interface ExportedSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  links?: Array<{ traceId: string; spanId: string }>;
  attributes: Record<string, unknown>;
  scope: string;
}

const SERVER = 2;
const CLIENT = 3;

/** Every span the receiver got over http/json. */
function spansOf(receiver: Receiver): ExportedSpan[] {
  const spans: ExportedSpan[] = [];
  for (const { body } of receiver.exports) {
    const parsed = JSON.parse(body.toString()) as {
      resourceSpans: Array<{
        scopeSpans: Array<{
          scope: { name: string };
          spans: Array<
            Omit<ExportedSpan, 'attributes' | 'scope'> & { attributes?: OtlpAttribute[] }
          >;
        }>;
      }>;
    };
    for (const resource of parsed.resourceSpans)
      for (const scope of resource.scopeSpans)
        for (const span of scope.spans)
          spans.push({
            ...span,
            scope: scope.scope.name,
            attributes: Object.fromEntries(
              (span.attributes ?? []).map((a) => [a.key, Object.values(a.value)[0]]),
            ),
          });
  }
  return spans;
}

const hex = (bytes: number) => randomBytes(bytes).toString('hex');
/** A W3C traceparent of a caller's sampled span. */
function callerSpan(): { traceId: string; spanId: string; header: string } {
  const traceId = hex(16);
  const spanId = hex(8);
  return { traceId, spanId, header: `00-${traceId}-${spanId}-01` };
}

/** Marks every value a client sends here: none may reach a span. */
const MARK = `mk${hex(6)}`;
const marked = (what: string) => `${MARK}-${what}`;

let receiver: Receiver;
let traced: Awaited<ReturnType<typeof startInstance>>;
let simulator: Simulator;
/** The traced instance, as the factories take a test app. */
let at: TestApp;
let admin: string;
const account = { apiKey: marked('key').padEnd(64, 'k'), secret: marked('secret').padEnd(64, 's') };
const email = `${MARK}@example.com`;
const password = marked('password-horse-battery');

function post<T, V>(
  document: TypedDocumentNode<T, V>,
  variables: V,
  token?: string,
  headers: Record<string, string> = {},
): Promise<GqlResult<T>> {
  return fetch(`${traced.url}/graphql`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...headers,
    },
    body: JSON.stringify({ query: print(document), variables }),
  }).then(
    async (response) =>
      ({
        status: response.status,
        headers: response.headers,
        ...((await response.json()) as object),
      }) as GqlResult<T>,
  );
}

/** The spans of one trace, once its server span has arrived. */
async function traceOf(traceId: string, rootName = 'POST'): Promise<ExportedSpan[]> {
  return waitFor(`the trace ${traceId}`, () => {
    const spans = spansOf(receiver).filter((s) => s.traceId === traceId);
    return spans.some((s) => s.kind === SERVER && s.name === rootName) ? spans : undefined;
  });
}

beforeAll(async () => {
  receiver = await startReceiver();
  simulator = await startBinanceSimulator({
    accounts: [{ ...account, balances: [{ asset: 'BTC', free: '1.5', locked: '0' }] }],
  });
  const env = testEnv({
    OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
    OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
    OTEL_BSP_SCHEDULE_DELAY: '50',
    OTEL_SERVICE_NAME: 'wallet-service-under-test',
    CREDENTIAL_CHECK_INTERVAL: '2s',
  });
  traced = await startInstance(env);
  at = {
    gql: (document, variables, token) => gqlAt(traced.url, document, variables, token),
  } as TestApp;
  admin = await adminToken(at);
}, 120_000);

afterAll(async () => {
  await traced?.stop();
  await receiver?.close();
  await simulator?.close();
});

describe('traces', () => {
  let user: { token: string };
  let credentialId: string;
  let walletId: string;
  let creation: ReturnType<typeof callerSpan>;

  it("continues the caller's traceparent: one span per operation, with its type and name, the database commands beneath", async () => {
    const registered = await post(
      RegisterDocument,
      { input: { email, password, name: marked('name') } },
      undefined,
    );
    user = { token: registered.data!.register.token };
    const definition = await simulatedDefinition(at, admin, 'binance', simulator.url);
    creation = callerSpan();
    const created = await post(
      CreateCredentialDocument,
      {
        input: {
          walletId: definition,
          name: marked('credential'),
          values: [
            { key: 'api_key', value: account.apiKey },
            { key: 'api_secret', value: account.secret },
          ],
        },
      },
      user.token,
      { traceparent: creation.header },
    );
    credentialId = created.data!.createCredential.id;

    const spans = await traceOf(creation.traceId);
    const server = spans.find((s) => s.kind === SERVER)!;
    expect(server.parentSpanId).toBe(creation.spanId);
    expect(server.attributes).toMatchObject({
      'http.request.method': 'POST',
      'url.path': '/graphql',
    });
    const operations = spans.filter((s) => s.scope.includes('graphql'));
    expect(operations.map((s) => s.name)).toEqual(['mutation CreateCredential']);
    const [operation] = operations;
    expect(operation.parentSpanId).toBe(server.spanId);
    expect(operation.attributes).toEqual({
      'graphql.operation.type': 'mutation',
      'graphql.operation.name': 'CreateCredential',
    });
    const commands = spans.filter((s) => s.scope.includes('mongodb'));
    const insert = commands.find((s) => s.name === 'insert credentials');
    expect(insert?.parentSpanId).toBe(operation.spanId);
    for (const command of commands) {
      expect(command.kind).toBe(CLIENT);
      // The token's check comes before the operation, within the request.
      expect([operation.spanId, server.spanId]).toContain(command.parentSpanId);
      expect(command.attributes['db.system']).toBe('mongodb');
      expect(
        Object.keys(command.attributes).filter((k) => /statement|query\.text/.test(k)),
      ).toEqual([]);
    }
    // Exported under the configured name.
    const resource = JSON.stringify(
      (JSON.parse(receiver.exports[0].body.toString()) as { resourceSpans: unknown[] })
        .resourceSpans[0],
    );
    expect(resource).toContain('wallet-service-under-test');
  });

  it('makes each call to the exchange a client span of the request, without the query string, and sends the exchange no tracing header', async () => {
    const before = simulator.requests.length;
    const request = callerSpan();
    const tested = await post(TestCredentialConnectionDocument, { id: credentialId }, user.token, {
      traceparent: request.header,
      tracestate: 'vendor=value',
      baggage: 'user=someone',
    });
    expect(tested.data?.testCredentialConnection.ok).toBe(true);

    const spans = await traceOf(request.traceId);
    const operation = spans.find((s) => s.name === 'mutation TestCredentialConnection')!;
    const calls = spans.filter((s) => s.scope.includes('undici'));
    const sent = simulator.requests.slice(before);
    expect(sent.length).toBeGreaterThan(0);
    expect(calls).toHaveLength(sent.length);
    for (const call of calls) {
      expect(call.kind).toBe(CLIENT);
      expect(call.parentSpanId).toBe(operation.spanId);
      expect(String(call.attributes['url.full'])).toMatch(new RegExp(`^${simulator.url}/[^?]+$`));
      expect(call.attributes['url.query']).toBeUndefined();
    }
    for (const exchangeRequest of sent) {
      expect(Object.keys(exchangeRequest.headers)).not.toEqual(
        expect.arrayContaining(['traceparent']),
      );
      for (const header of ['traceparent', 'tracestate', 'baggage', 'b3', 'x-b3-traceid'])
        expect(exchangeRequest.headers[header]).toBeUndefined();
      // The signature is in the query string: in no span.
      const signature = new URL(exchangeRequest.path, simulator.url).searchParams.get('signature')!;
      expect(signature).toMatch(/^[0-9a-f]{64}$/);
      expect(receiver.exports.map((e) => e.body.toString()).join('')).not.toContain(signature);
    }
  });

  it("makes each re-test of a live wallet's key its own root span, with its exchange calls beneath", async () => {
    const before = simulator.requests.length;
    const wallet = await post(
      CreateUserWalletDocument,
      { input: { credentialId, name: marked('wallet'), userLimits: limits() } },
      user.token,
    );
    walletId = wallet.data!.createUserWallet.id;
    const retest = await waitFor(
      'a re-test span with its exchange calls',
      () => {
        const spans = spansOf(receiver);
        const job = spans.find(
          (s) =>
            s.name === 'job credential re-test' &&
            spans.some((c) => c.parentSpanId === s.spanId && c.scope.includes('undici')),
        );
        return job && { job, spans };
      },
      30_000,
    ).catch((error: unknown) => {
      console.log(
        [...new Set(spansOf(receiver).map((s) => s.name))],
        traced.running.stdout.slice(-20),
      );
      throw error;
    });
    expect(simulator.requests.length).toBeGreaterThan(before);
    expect(retest.job.parentSpanId ?? '').toBe('');
    expect(retest.job.links ?? []).toEqual([]);
    // The poll that found it is a trace of its own too.
    const poll = retest.spans.find((s) => s.name === 'job credential checks');
    expect(poll).toBeDefined();
    expect(poll!.traceId).not.toBe(retest.job.traceId);
  });

  it('starts a span per subscribe, and links each delivery of an event to the span of the write that made it', async () => {
    const agent = await agentToken(at, 'trace-agent');
    const follower = subscribe(
      traced.url,
      user.token,
      'subscription FollowWallet($walletId: ObjectID) { myWalletEvents(walletId: $walletId) { id kind version } }',
      { walletId },
    );
    try {
      await follower.connected;
      const subscribed = await waitFor('the subscribe span', () =>
        spansOf(receiver).find((s) => s.name === 'subscription FollowWallet'),
      );
      expect(subscribed.kind).toBe(SERVER);
      expect(subscribed.attributes).toEqual({
        'graphql.operation.type': 'subscription',
        'graphql.operation.name': 'FollowWallet',
      });
      // The wallet's owner was looked up within it.
      expect(
        spansOf(receiver).filter(
          (s) => s.parentSpanId === subscribed.spanId && s.scope.includes('mongodb'),
        ).length,
      ).toBeGreaterThan(0);

      const write = callerSpan();
      const written = await post(
        UpdateAiManagedStateDocument,
        { walletId, input: { riskScore: 42, confidenceLevel: 70 } },
        agent,
        { traceparent: write.header },
      );
      expect(written.errors).toBeUndefined();
      await until('the event on the subscription', () =>
        follower.events.some((e) => e.kind === 'AI_STATE_CHANGED'),
      );
      const writeSpans = await traceOf(write.traceId);
      const delivery = await waitFor('a delivery linked to the write', () =>
        spansOf(receiver).find((s) => (s.links ?? []).some((l) => l.traceId === write.traceId)),
      );
      expect(delivery.name).toBe('deliver subscription FollowWallet');
      expect(delivery.traceId).not.toBe(write.traceId);
      expect(delivery.parentSpanId ?? '').toBe('');
      const operation = writeSpans.find((s) => s.name === 'mutation UpdateAiManagedState')!;
      expect(delivery.links).toEqual([
        expect.objectContaining({ traceId: write.traceId, spanId: operation.spanId }),
      ]);
      // The feed's polls and the open connections' token checks: root spans of their own.
      const jobs = await waitFor('the live jobs', () => {
        const roots = spansOf(receiver).filter((s) => !s.parentSpanId);
        const names = new Set(roots.map((s) => s.name));
        return names.has('job wallet event feed') && names.has('job subscription sessions')
          ? roots
          : undefined;
      });
      expect(jobs.length).toBeGreaterThan(0);
    } finally {
      await follower.dispose();
    }
  });

  it('puts trace_id and span_id on the log lines of a request', async () => {
    const line = await waitFor('the log line of the credential creation', () =>
      traced.running.stdout.find((l) => l.includes('"credential created"')),
    );
    const logged = JSON.parse(line) as { trace_id: string; span_id: string };
    expect(logged.trace_id).toBe(creation.traceId);
    const spans = spansOf(receiver).filter((s) => s.traceId === creation.traceId);
    expect(spans.map((s) => s.spanId)).toContain(logged.span_id);
  });

  it('exports no value a client sent and no secret: not in attributes, names, statuses or events', async () => {
    // A refused login, a duplicate registration (the database's error quotes the key), a bad
    // variable and a GET with its operation in the query string: each error path quotes input.
    await post(LoginDocument, { email, password: marked('wrong-password') });
    const again = await post(RegisterDocument, { input: { email, password, name: 'again' } });
    expect(again.errors?.length).toBeGreaterThan(0);
    const badId = await post(
      TestCredentialConnectionDocument,
      { id: marked('not-an-id') },
      user.token,
    );
    expect(badId.errors?.length).toBeGreaterThan(0);
    const get = callerSpan();
    const operationName = `${MARK}${'Long'.repeat(30)}`;
    const query = `query ${operationName} { me { id email } walletDefinition(slug: "${marked('literal')}") { id } }`;
    const response = await fetch(
      `${traced.url}/graphql?${new URLSearchParams({ query, operationName })}`,
      {
        headers: {
          authorization: `Bearer ${user.token}`,
          traceparent: get.header,
          'apollo-require-preflight': 'true',
        },
      },
    );
    expect(response.status).toBeLessThan(500);
    await fetch(`${traced.url}/graphql/${marked('path')}`, {
      headers: { 'user-agent': marked('agent') },
    });
    await post(MeDocument, {}, user.token, { 'user-agent': marked('agent') });

    const spans = await traceOf(get.traceId, 'GET');
    const operation = spans.find((s) => s.scope.includes('graphql'))!;
    // The operation's name is the client's, cut to 64 characters.
    expect(operation.attributes['graphql.operation.name']).toBe(operationName.slice(0, 64));
    expect(operation.name).toBe(`query ${operationName.slice(0, 64)}`);
    const server = spans.find((s) => s.kind === SERVER)!;
    expect(server.attributes['url.path']).toBe('/graphql');
    await new Promise((resolve) => setTimeout(resolve, 500));

    const exported = receiver.exports.map((e) => e.body.toString()).join('\n');
    const withoutOperationNames = exported.split(operationName.slice(0, 64)).join('');
    expect(withoutOperationNames).not.toContain(MARK);
    for (const secret of [account.apiKey, account.secret, user.token, admin, password])
      expect(exported).not.toContain(secret);
    for (const span of spansOf(receiver)) {
      expect(span.attributes['graphql.source']).toBeUndefined();
      expect(span.name).not.toMatch(/^graphql\.(parse|validate|resolve)/);
    }
  });
});

describe('tracing settings', () => {
  /** The specification's default endpoint: nothing may reach it when no endpoint is configured. */
  const defaults: Receiver[] = [];
  let elsewhere: Receiver;
  let protobuf: Receiver;
  const instances: Record<string, Awaited<ReturnType<typeof startInstance>>> = {};
  const quick = { OTEL_BSP_SCHEDULE_DELAY: '50', OTEL_TRACES_SAMPLER: 'always_on' };

  beforeAll(async () => {
    defaults.push(await startReceiver(4318, '127.0.0.1'));
    // Where localhost may also resolve; a machine without IPv6 has nothing to reach there.
    await startReceiver(4318, '::1').then(
      (receiver) => defaults.push(receiver),
      (error: NodeJS.ErrnoException) => {
        if (error.code !== 'EADDRNOTAVAIL' && error.code !== 'EAFNOSUPPORT') throw error;
      },
    );
    elsewhere = await startReceiver();
    protobuf = await startReceiver();
    const started = await Promise.all([
      startInstance(testEnv({ ...quick, OTEL_SERVICE_NAME: 'no-endpoint' })),
      startInstance(
        testEnv({
          ...quick,
          OTEL_EXPORTER_OTLP_ENDPOINT: elsewhere.url,
          OTEL_SDK_DISABLED: 'true',
        }),
      ),
      startInstance(
        testEnv({
          ...quick,
          OTEL_EXPORTER_OTLP_ENDPOINT: elsewhere.url,
          OTEL_TRACES_SAMPLER: 'always_off',
        }),
      ),
      startInstance(
        testEnv({
          OTEL_BSP_SCHEDULE_DELAY: '50',
          OTEL_EXPORTER_OTLP_ENDPOINT: elsewhere.url,
          OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${protobuf.url}/collector/traces`,
          OTEL_EXPORTER_OTLP_HEADERS: 'x-collector-key=collector%20key',
        }),
      ),
    ]);
    [instances.noEndpoint, instances.disabled, instances.alwaysOff, instances.protobuf] = started;
  }, 120_000);

  afterAll(async () => {
    await Promise.all(Object.values(instances).map((i) => i.stop()));
    await Promise.all([...defaults, elsewhere, protobuf].filter(Boolean).map((r) => r.close()));
  });

  it('sends nothing anywhere without an endpoint, with OTEL_SDK_DISABLED, or with the always_off sampler, and says why it is off', async () => {
    for (const name of ['noEndpoint', 'disabled', 'alwaysOff']) {
      const caller = callerSpan();
      const response = await fetch(`${instances[name].url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', traceparent: caller.header },
        body: JSON.stringify({ query: '{ walletDefinitions { id } }' }),
      });
      expect(response.status).toBe(200);
    }
    // Many times the batch delay: anything started would have sent by now.
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect(defaults.flatMap((r) => r.exports)).toEqual([]);
    expect(elsewhere.exports).toEqual([]);
    expect(instances.noEndpoint.running.stdout.join('\n')).toMatch(
      /no OTLP endpoint is: tracing is off/,
    );
    for (const name of ['noEndpoint', 'disabled'])
      expect(instances[name].running.stdout.join('\n')).not.toMatch(/"trace_id"/);
  });

  it('exports http/protobuf by default, to the traces endpoint as written, with the configured headers', async () => {
    const caller = callerSpan();
    await fetch(`${instances.protobuf.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', traceparent: caller.header },
      body: JSON.stringify({ query: '{ walletDefinitions { id } }' }),
    });
    const sent = await waitFor('a protobuf export with the trace', () =>
      protobuf.exports.find((e) => e.body.includes(Buffer.from(caller.traceId, 'hex'))),
    );
    expect(sent.path).toBe('/collector/traces');
    expect(sent.headers['content-type']).toBe('application/x-protobuf');
    expect(sent.headers['x-collector-key']).toBe('collector key');
    expect(elsewhere.exports).toEqual([]);
  });
});
