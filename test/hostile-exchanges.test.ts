import { randomBytes } from 'node:crypto';
import { expect } from '@jest/globals';
import {
  CreateCredentialDocument,
  CreateUserWalletDocument,
  CreateWalletDefinitionDocument,
  CredentialHealthDocument,
  TestCredentialConnectionDocument,
} from './generated/graphql';
import { startTestApp, type TestApp } from './helpers/app';
import {
  adminToken,
  definitionInput,
  limits,
  registerUser,
  type TestUser,
} from './helpers/factories';
import { waitFor } from './helpers/processes';
import {
  startHostileSimulator,
  startRawSimulator,
  type HostileSimulator,
  type RawSimulator,
} from './simulators/hostile.simulator';

/**
 * Exchanges that answer to hurt: error codes holding text meant for a log or a page, and bodies
 * too large to hold. Whoever starts the test (a user, or the service's own schedule), it fails
 * with a fixed message, and no word of the answer reaches a response, a log line or /metrics.
 */

const UNEXPECTED_ANSWER = 'the exchange returned an unexpected answer';
const AN_ERROR = 'the exchange returned an error';
const TOO_LARGE = "the exchange's answer was larger than 4 MB: the test stopped reading it";
const HUGE = 200 * 1024 * 1024;
/** The cap, and more than the sockets' buffers on both sides could take beyond it. */
const READ_AT_MOST = 32 * 1024 * 1024;

/** Pieces of the hostile codes: none may show anywhere. */
const MARKERS = ['SUPERSECRET', 'frank-valu', 'INJECTED-CODE', '<b>x</b>', 'APIKEY-'];
const hostileCodes = (apiKey: string) => [
  'SUPERSECRET-frank-value-9f3a7c',
  `INJECTED-CODE <b>x</b> APIKEY-${apiKey}`,
];

interface Exchange {
  ccxtId: string;
  /** The exchange's error body, with `code` where it puts its error code. */
  errorBody: (code: string) => unknown;
  /** The test's message for such an answer. */
  message: string;
  values: () => Record<string, string>;
}

const secretValue = () => randomBytes(16).toString('hex');
const EXCHANGES: Exchange[] = [
  {
    // ccxt reads Binance's code as a number (a BigInt): a code that is none breaks it.
    ccxtId: 'binance',
    errorBody: (code) => ({ code, msg: 'm' }),
    message: UNEXPECTED_ANSWER,
    values: () => ({ api_key: secretValue(), api_secret: secretValue() }),
  },
  {
    // ccxt takes any code but "0" for an error of OKX's: a code it does not know is one.
    ccxtId: 'okx',
    errorBody: (code) => ({ code, msg: 'm', data: [] }),
    message: AN_ERROR,
    values: () => ({
      api_key: secretValue(),
      api_secret: secretValue(),
      passphrase: 'pass-phrase',
    }),
  },
  {
    ccxtId: 'bybit',
    errorBody: (code) => ({ retCode: code, retMsg: 'm', result: {} }),
    message: AN_ERROR,
    values: () => ({ api_key: secretValue(), api_secret: secretValue() }),
  },
];
const byId = (id: string) => EXCHANGES.find((e) => e.ccxtId === id)!;

let t: TestApp;
let admin: string;
let user: TestUser;
const simulators: Array<HostileSimulator | RawSimulator> = [];
const secrets: string[] = [];

beforeAll(async () => {
  t = await startTestApp({
    CREDENTIAL_CHECK_INTERVAL: '2s',
    EXCHANGE_TIMEOUT_MS: '10000',
    MAX_CREDENTIALS_PER_USER: '100',
  });
  admin = await adminToken(t);
  user = await registerUser(t);
});

afterAll(async () => {
  await t.close();
  await Promise.all(simulators.map((s) => s.close()));
});

/** A catalog entry tested as `exchange`, at `url`. */
async function definitionAt(exchange: Exchange, url: string): Promise<string> {
  const slug = `${exchange.ccxtId}-${randomBytes(3).toString('hex')}`;
  const field = (key: string, encrypted: boolean) => ({
    key,
    label: key,
    type: encrypted ? ('PASSWORD' as const) : ('STRING' as const),
    required: true,
    encrypted,
  });
  const result = await t.gql(
    CreateWalletDefinitionDocument,
    {
      input: definitionInput({
        name: `Hostile ${slug}`,
        slug,
        ccxtId: exchange.ccxtId,
        authFields: Object.keys(exchange.values()).map((key) => field(key, key !== 'api_key')),
        apiConfig: { baseUrl: url, testnetUrl: url, rateLimit: 1200 },
      }),
    },
    admin,
  );
  if (!result.data)
    throw new Error(`createWalletDefinition failed: ${JSON.stringify(result.errors)}`);
  return result.data.createWalletDefinition.id;
}

/** A catalog entry tested as `exchange`, at a hostile simulator answering `answer`. */
async function hostile(
  exchange: Exchange,
  answer: HostileSimulator['answer'],
): Promise<{ simulator: HostileSimulator; definitionId: string }> {
  const simulator = await startHostileSimulator(answer);
  simulators.push(simulator);
  return { simulator, definitionId: await definitionAt(exchange, simulator.url) };
}

async function credentialOn(definitionId: string, values: Record<string, string>): Promise<string> {
  secrets.push(...Object.values(values).filter((v) => v.length >= 12));
  const result = await t.gql(
    CreateCredentialDocument,
    {
      input: {
        walletId: definitionId,
        name: 'Key',
        values: Object.entries(values).map(([key, value]) => ({ key, value })),
      },
    },
    user.token,
  );
  if (!result.data) throw new Error(`createCredential failed: ${JSON.stringify(result.errors)}`);
  return result.data.createCredential.id;
}

/** What must never show: the hostile codes' pieces, and the credentials' values. */
function expectClean(what: string, text: string): void {
  for (const forbidden of [...MARKERS, ...secrets])
    expect([what, text.includes(forbidden)]).toEqual([what, false]);
}

/** The log lines from `since` on, and what /metrics shows now. */
async function expectLogsAndMetricsClean(since: number): Promise<void> {
  for (const line of t.logs.slice(since)) expectClean('log line', line);
  const metrics = await (await fetch(`${t.url}/metrics`)).text();
  expect(metrics).toContain('exchange_connection_tests_total');
  expectClean('/metrics', metrics);
}

/** The log lines about one credential's tests, parsed. */
function testLines(credentialId: string): Array<Record<string, unknown>> {
  return t.logs
    .flatMap((chunk) => chunk.split('\n'))
    .filter((line) => line.includes(credentialId))
    .map((line) => JSON.parse(line) as Record<string, unknown>)
    .filter((line) => typeof line.msg === 'string' && line.msg.startsWith('connection tested'));
}

describe("an exchange's error code holding text", () => {
  const cases = EXCHANGES.flatMap((exchange) =>
    [0, 1].map((which) => [exchange.ccxtId, which] as const),
  );

  it.each(cases)(
    "fails a user's %s test with a fixed message (code %i), never quoting the answer",
    async (ccxtId, which) => {
      const logged = t.logs.length;
      const exchange = byId(ccxtId);
      const values = exchange.values();
      const code = hostileCodes(values.api_key)[which];
      const { simulator, definitionId } = await hostile(exchange, {
        status: 400,
        json: exchange.errorBody(code),
      });
      const credentialId = await credentialOn(definitionId, values);

      const result = await t.gql(
        TestCredentialConnectionDocument,
        { id: credentialId },
        user.token,
      );
      expect(result.errors).toBeUndefined();
      expect(result.data!.testCredentialConnection).toMatchObject({
        ok: false,
        error: exchange.message,
        credential: { connectionState: 'UNREACHABLE', connectionError: exchange.message },
      });
      expect(simulator.requests.length).toBeGreaterThan(0);
      expectClean('response', JSON.stringify(result));
      const health = await t.gql(CredentialHealthDocument, { id: credentialId }, user.token);
      expectClean('credential', JSON.stringify(health));
      await expectLogsAndMetricsClean(logged);

      // What the log keeps of an answer that broke the reading: the error's class and the status.
      const lines = testLines(credentialId);
      expect(lines).toHaveLength(1);
      if (exchange.message === UNEXPECTED_ANSWER)
        expect(lines[0]).toMatchObject({
          level: 40,
          kind: 'unreachable',
          by: 'user',
          errorClass: 'SyntaxError',
          httpStatus: 400,
        });
    },
  );

  it("fails the service's own re-test the same way, and says in the log only the error's class and the status", async () => {
    const logged = t.logs.length;
    const exchange = byId('binance');
    const values = exchange.values();
    const { simulator, definitionId } = await hostile(exchange, {
      status: 400,
      json: exchange.errorBody(hostileCodes(values.api_key)[1]),
    });
    const credentialId = await credentialOn(definitionId, values);
    // A live wallet puts its credential in the service's test queue, due at once.
    const wallet = await t.gql(
      CreateUserWalletDocument,
      { input: { credentialId, name: 'Trading', userLimits: limits() } },
      user.token,
    );
    expect(wallet.errors).toBeUndefined();

    const health = await waitFor(
      "the service's test of the credential",
      async () => {
        const found = await t.gql(CredentialHealthDocument, { id: credentialId }, user.token);
        return found.data?.credential.lastCheckedAt ? found : undefined;
      },
      30_000,
      100,
    );
    expect(health.data!.credential).toMatchObject({
      connectionState: 'UNREACHABLE',
      connectionError: UNEXPECTED_ANSWER,
    });
    expect(simulator.requests.length).toBeGreaterThan(0);
    expectClean('credential', JSON.stringify(health));
    expect(testLines(credentialId)[0]).toMatchObject({
      level: 40,
      by: 'service',
      errorClass: 'SyntaxError',
      httpStatus: 400,
    });
    await expectLogsAndMetricsClean(logged);
  });
});

describe('an answer larger than 4 MB', () => {
  it.each([
    ['binance', false],
    ['okx', false],
    ['binance', true],
  ] as const)(
    'fails a %s test, and the read stops at the cap (Content-Length declared: %s)',
    async (ccxtId, declareLength) => {
      const exchange = byId(ccxtId);
      const { simulator, definitionId } = await hostile(exchange, {
        status: 200,
        stream: { bytes: HUGE, declareLength },
      });
      const credentialId = await credentialOn(definitionId, exchange.values());

      const result = await t.gql(
        TestCredentialConnectionDocument,
        { id: credentialId },
        user.token,
      );
      expect(result.errors).toBeUndefined();
      expect(result.data!.testCredentialConnection).toMatchObject({
        ok: false,
        error: TOO_LARGE,
        credential: { connectionState: 'UNREACHABLE', connectionError: TOO_LARGE },
      });
      expect(simulator.streams).toHaveLength(1);
      const [streamed] = simulator.streams;
      await streamed.over;
      expect(streamed.closedEarly).toBe(true);
      expect(streamed.sent).toBeLessThan(READ_AT_MOST);
    },
  );
});

describe('an answer that is not HTTP', () => {
  it.each([
    ['not HTTP at all', 'SUPERSECRET-frank-value-9f3a7c <b>x</b>\r\n\r\n'],
    [
      'a header holding a control character',
      'HTTP/1.1 200 OK\r\nX-Code: INJECTED-CODE\u0001<b>x</b>\r\nContent-Length: 2\r\n\r\n{}',
    ],
    ['a malformed status line', 'HTTP/1.1 2x0 SUPERSECRET-frank-value-9f3a7c\r\n\r\n'],
  ])('fails a test as an unexpected answer: %s', async (_what, raw) => {
    const logged = t.logs.length;
    const simulator = await startRawSimulator(raw);
    simulators.push(simulator);
    const exchange = byId('binance');
    const credentialId = await credentialOn(
      await definitionAt(exchange, simulator.url),
      exchange.values(),
    );

    const result = await t.gql(TestCredentialConnectionDocument, { id: credentialId }, user.token);
    expect(result.errors).toBeUndefined();
    expect(result.data!.testCredentialConnection).toMatchObject({
      ok: false,
      error: UNEXPECTED_ANSWER,
    });
    expect(simulator.answered).toBeGreaterThan(0);
    expectClean('response', JSON.stringify(result));
    await expectLogsAndMetricsClean(logged);
  });
});
