import {
  CreateUserWalletDocument,
  PauseUserWalletDocument,
  UpdateAiManagedStateDocument,
  UpdateAiManagedStatesDocument,
} from './generated/graphql';
import { startTestApp, type TestApp } from './helpers/app';
import {
  agentToken,
  binanceCredential,
  limits,
  registerUser,
  userWallet,
} from './helpers/factories';

const METRICS_TOKEN = 'a-metrics-token-for-the-tests';

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({
    TRUST_PROXY: 'true',
    METRICS_TOKEN,
    RATE_LIMIT_REGISTRATIONS_PER_HOUR: '2',
  });
});
afterAll(() => t.close());

async function scrape(
  headers: Record<string, string> = {},
): Promise<{ status: number; text: string }> {
  const response = await fetch(`${t.url}/metrics`, { headers });
  return { status: response.status, text: await response.text() };
}

/** `name{labels}` -> value, from Prometheus' text format. */
function samples(text: string): Map<string, number> {
  const found = new Map<string, number>();
  for (const line of text.split('\n')) {
    const match = /^([a-z_:]+(?:\{[^}]*\})?) (\S+)$/.exec(line);
    if (match) found.set(match[1], Number(match[2]));
  }
  return found;
}

const moved = (before: Map<string, number>, after: Map<string, number>, key: string) =>
  (after.get(key) ?? 0) - (before.get(key) ?? 0);

describe('GET /metrics', () => {
  it('counts what a scripted session did', async () => {
    const before = samples((await scrape()).text);
    const user = await registerUser(t);
    await t.raw('{ walletDefinitions { slug } }');
    await t.raw(
      'mutation { login(email: "nobody@example.com", password: "wrong password") { token } }',
    );
    await t.raw('query SecretLookingName { walletDefinitons { slug } }');
    const credentialId = await binanceCredential(t, user);
    const wallet = await t.gql(
      CreateUserWalletDocument,
      { input: { credentialId, name: 'm', userLimits: limits() } },
      user.token,
    );
    const walletId = wallet.data!.createUserWallet.id;
    // Binance's own host: no internet here, so the test can't reach it.
    await t.raw(
      'mutation ($c: ObjectID!) { testCredentialConnection(id: $c) { ok } }',
      { c: credentialId },
      user.token,
    );
    await t.gql(PauseUserWalletDocument, { id: walletId }, user.token);
    for (let i = 0; i < 3; i++)
      await t.raw(
        'mutation { register(input: { email: "x@example.com", password: "long enough pass" }) { token } }',
        {},
        undefined,
        { 'x-forwarded-for': '198.51.100.9' },
      );
    const { text } = await scrape();
    const after = samples(text);

    expect(
      moved(before, after, 'graphql_requests_total{operation="walletDefinitions",outcome="ok"}'),
    ).toBe(1);
    expect(moved(before, after, 'graphql_requests_total{operation="login",outcome="error"}')).toBe(
      1,
    );
    expect(moved(before, after, 'graphql_requests_total{operation="other",outcome="error"}')).toBe(
      1,
    );
    expect(
      moved(before, after, 'graphql_requests_total{operation="createUserWallet",outcome="ok"}'),
    ).toBe(1);
    expect(moved(before, after, 'graphql_errors_total{code="UNAUTHENTICATED"}')).toBe(1);
    expect(moved(before, after, 'graphql_errors_total{code="BAD_USER_INPUT"}')).toBe(1);
    expect(moved(before, after, 'graphql_errors_total{code="RATE_LIMITED"}')).toBe(1);
    expect(
      moved(before, after, 'graphql_request_duration_seconds_count{operation="walletDefinitions"}'),
    ).toBe(1);
    expect(moved(before, after, 'wallet_status_changes_total{to="user_paused"}')).toBe(1);
    expect(moved(before, after, 'rate_limit_refusals_total{kind="register"}')).toBe(1);
    expect(
      moved(
        before,
        after,
        'exchange_connection_tests_total{exchange="binance",outcome="unreachable",environment="mainnet"}',
      ),
    ).toBe(1);
    expect(
      moved(
        before,
        after,
        'exchange_connection_test_duration_seconds_count{exchange="binance",environment="mainnet"}',
      ),
    ).toBe(1);
    expect(after.get('mongodb_pool_connections{state="open"}')).toBeGreaterThan(0);
    expect(after.has('audit_outbox_pending')).toBe(true);
    expect(after.has('audit_sweep_delivered_total')).toBe(true);
    expect(after.has('process_cpu_user_seconds_total')).toBe(true);
    expect(after.has('nodejs_heap_size_used_bytes')).toBe(true);
    // No label holds what a client wrote: not an operation's name, a mistyped field, an email.
    for (const typed of ['SecretLookingName', 'walletDefinitons', 'nobody@example.com', user.email])
      expect(text).not.toContain(typed);
  });

  it("counts agents' writes by outcome, one at a time and in batches alike", async () => {
    const user = await registerUser(t);
    const agent = await agentToken(t);
    const [a, b] = [
      await userWallet(t, user, await binanceCredential(t, user), { maxTotalRisk: 100 }),
      await userWallet(t, user, await binanceCredential(t, user), { maxTotalRisk: 100 }),
    ];
    const before = samples((await scrape()).text);
    await t.gql(
      UpdateAiManagedStateDocument,
      { walletId: a.id, expectedVersion: 0, input: { riskScore: 5 } },
      agent,
    );
    await t.gql(
      UpdateAiManagedStateDocument,
      { walletId: a.id, expectedVersion: 0, input: { riskScore: 6 } },
      agent,
    );
    await t.gql(
      UpdateAiManagedStateDocument,
      { walletId: a.id, input: { currentLeverage: 99 } },
      agent,
    );
    await t.gql(
      UpdateAiManagedStatesDocument,
      {
        updates: [
          { walletId: b.id, expectedVersion: 0, input: { riskScore: 7 } },
          { walletId: b.id, expectedVersion: 0, input: { riskScore: 8 } },
          { walletId: a.id, input: { currentRisk: 150 } },
          { walletId: b.id, input: { riskScore: 101 } },
        ],
      },
      agent,
    );
    const after = samples((await scrape()).text);
    const outcome = (name: string) =>
      moved(before, after, `wallet_ai_writes_total{outcome="${name}"}`);
    // Of the batch's two writes on b's version 0, one lands and the other is a CONFLICT.
    expect([
      outcome('written'),
      outcome('conflict'),
      outcome('refused'),
      outcome('paused'),
    ]).toEqual([2, 2, 2, 1]);
    expect(moved(before, after, 'wallet_status_changes_total{to="ai_paused"}')).toBe(1);
  });

  it('is open on loopback, and wants METRICS_TOKEN from anywhere else', async () => {
    const elsewhere = { 'x-forwarded-for': '203.0.113.9' };
    expect((await scrape(elsewhere)).status).toBe(401);
    expect(
      (await scrape({ ...elsewhere, authorization: 'Bearer not-the-token-at-all' })).status,
    ).toBe(401);
    // The proxy (TRUST_PROXY=true: one hop) appends what it saw to what the client wrote.
    expect((await scrape({ 'x-forwarded-for': '127.0.0.1, 203.0.113.9' })).status).toBe(401);
    expect((await scrape({ 'x-forwarded-for': '::ffff:127.0.0.1, 203.0.113.9' })).status).toBe(401);
    const allowed = await scrape({ ...elsewhere, authorization: `Bearer ${METRICS_TOKEN}` });
    expect(allowed.status).toBe(200);
    expect(allowed.text).toContain('# TYPE graphql_requests_total counter');
    expect((await scrape()).status).toBe(200);
  });
});
