import { expect } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import {
  Kind,
  parse,
  type ASTNode,
  print,
  type DefinitionNode,
  type FieldDefinitionNode,
  type InputValueDefinitionNode,
} from 'graphql';
import mongoose, { Types } from 'mongoose';
import {
  CheckAiManagedStateDocument,
  CheckAiManagedStatesDocument,
  CreateCredentialDocument,
  CreateWalletDefinitionDocument,
  PauseUserWalletDocument,
  TestCredentialConnectionDocument,
  TrailActorsDocument,
  type AiManagedStateInput,
  type AiStateUpdateInput,
  type CheckAiManagedStateMutationVariables,
} from './generated/graphql';
import { startTestApp, type TestApp } from './helpers/app';
import {
  adminToken,
  binanceCredential,
  definitionInput,
  limits,
  registerUser,
  userWallet,
  type TestUser,
} from './helpers/factories';
import { subscribe, until } from './helpers/live';
import type { StoredWallet } from './helpers/stored';
import { startBinanceSimulator, type Simulator } from './simulators/binance.simulator';

/*
 * An agent may ask before it acts (validateOnly), learns every bound a refused write breaks
 * (violations), and the trail names the acting agent by id (actorId).
 */

const METRICS_TOKEN = 'a-metrics-token-for-the-validation-tests';

let t: TestApp;
let alice: TestUser;
let agent: { id: string; token: string };

const wallets = () => mongoose.connection.db!.collection<StoredWallet>('user_wallets');
const trailCount = (id: string) =>
  mongoose.connection.db!.collection('user_wallet_events').countDocuments({
    wallet_id: new Types.ObjectId(id),
  });
const stored = async (id: string) => wallets().findOne({ _id: new Types.ObjectId(id) });
const wallet = async (overrides: Parameters<typeof limits>[0] = {}) =>
  (await userWallet(t, alice, await binanceCredential(t, alice), overrides)).id;

const check = (vars: CheckAiManagedStateMutationVariables, token = agent.token) =>
  t.gql(CheckAiManagedStateDocument, vars, token);
const batch = (updates: AiStateUpdateInput[], token = agent.token) =>
  t.gql(CheckAiManagedStatesDocument, { updates }, token);

async function metricSamples(): Promise<Map<string, number>> {
  const response = await fetch(`${t.url}/metrics`, {
    headers: { authorization: `Bearer ${METRICS_TOKEN}` },
  });
  const found = new Map<string, number>();
  for (const line of (await response.text()).split('\n')) {
    const match = /^([a-z_:]+(?:\{[^}]*\})?) (\S+)$/.exec(line);
    if (match) found.set(match[1], Number(match[2]));
  }
  return found;
}
const moved = (before: Map<string, number>, after: Map<string, number>, key: string) =>
  (after.get(key) ?? 0) - (before.get(key) ?? 0);
const WRITE_OUTCOMES = ['written', 'paused', 'refused', 'conflict'];

/** An answered wallet without the instants a request sets, which two requests never share. */
function timeless(w: Record<string, unknown> | null | undefined) {
  if (!w) return w;
  const {
    updatedAt: _u,
    userChangedAt: _c,
    aiManagedState,
    ...rest
  } = w as {
    updatedAt: unknown;
    userChangedAt: unknown;
    aiManagedState: Record<string, unknown>;
  };
  const { lastAiDecision: _d, ...state } = aiManagedState;
  return { ...rest, aiManagedState: state };
}

beforeAll(async () => {
  t = await startTestApp({ METRICS_TOKEN });
  alice = await registerUser(t);
  const issued = await t.raw<{ issueAgentToken: { id: string; token: string } }>(
    'mutation { issueAgentToken(name: "checking-agent") { id token } }',
    {},
    await adminToken(t),
  );
  agent = issued.data!.issueAgentToken;
});
afterAll(() => t.close());

describe('updateAiManagedState(validateOnly: true)', () => {
  it('answers the wallet as the write would leave it, and stores, records and counts nothing as a write', async () => {
    const id = await wallet({ maxTotalRisk: 1000, tradingMode: 'MODERATE' });
    const input: AiManagedStateInput = { currentLeverage: 5, riskScore: 40 };
    const live = subscribe(
      t.url,
      agent.token,
      'subscription { managedWalletEvents { walletId version kind } }',
    );
    await live.connected;
    const before = await stored(id);
    const trailBefore = await trailCount(id);
    const metricsBefore = await metricSamples();

    const started = Date.now();
    const validated = await check({ walletId: id, input, expectedVersion: 0, validateOnly: true });
    const ended = Date.now();
    expect(validated.errors).toBeUndefined();
    const answer = validated.data!.updateAiManagedState;
    expect(answer).toMatchObject({
      id,
      version: 1,
      status: 'ACTIVE',
      aiManagedState: { currentLeverage: 5, riskScore: 40 },
    });
    for (const at of [answer.updatedAt, answer.aiManagedState.lastAiDecision]) {
      expect(new Date(at as string).getTime()).toBeGreaterThanOrEqual(started - 1);
      expect(new Date(at as string).getTime()).toBeLessThanOrEqual(ended + 1);
    }

    // Nothing stored: the document (outbox included) and the trail are as they were.
    expect(await stored(id)).toEqual(before);
    expect(await trailCount(id)).toBe(trailBefore);
    const metricsAfter = await metricSamples();
    for (const outcome of WRITE_OUTCOMES)
      expect(
        moved(metricsBefore, metricsAfter, `wallet_ai_writes_total{outcome="${outcome}"}`),
      ).toBe(0);
    expect(
      moved(metricsBefore, metricsAfter, 'wallet_ai_validations_total{outcome="passed"}'),
    ).toBe(1);

    // The live write answers the same, and its event is the first the subscriber sees.
    const written = await check({ walletId: id, input, expectedVersion: 0 });
    expect(written.errors).toBeUndefined();
    expect(timeless(answer)).toEqual(timeless(written.data!.updateAiManagedState));
    // The wallet's CREATED may come too, as the feed starts a little before the subscription.
    const changes = () => live.events.filter((e) => e.walletId === id && e.kind !== 'CREATED');
    await until('the write on the live feed', () => changes().length > 0);
    expect(changes()).toEqual([{ walletId: id, version: 1, kind: 'AI_STATE_CHANGED' }]);
    await live.dispose();
  });

  it('answers AI_PAUSED, with the reason, when the risk would pause the wallet', async () => {
    const id = await wallet({ maxTotalRisk: 100 });
    const before = await stored(id);
    const validated = await check({
      walletId: id,
      input: { currentRisk: 150 },
      validateOnly: true,
    });
    expect(validated.errors).toBeUndefined();
    expect(validated.data!.updateAiManagedState).toMatchObject({
      status: 'AI_PAUSED',
      pauseReason: 'risk limit exceeded: currentRisk 150 > maxTotalRisk 100',
      version: 1,
    });
    expect(await stored(id)).toEqual(before);
    const written = await check({ walletId: id, input: { currentRisk: 150 } });
    expect(timeless(validated.data!.updateAiManagedState)).toEqual(
      timeless(written.data!.updateAiManagedState),
    );
  });

  it('answers as the write on a wallet its user paused', async () => {
    const id = await wallet();
    expect((await t.gql(PauseUserWalletDocument, { id }, alice.token)).errors).toBeUndefined();
    const validated = await check({ walletId: id, input: { riskScore: 3 }, validateOnly: true });
    const written = await check({ walletId: id, input: { riskScore: 3 } });
    expect(validated.data!.updateAiManagedState.status).toBe('USER_PAUSED');
    expect(timeless(validated.data!.updateAiManagedState)).toEqual(
      timeless(written.data!.updateAiManagedState),
    );
  });

  it("fails exactly as the write would: stale version, bounds, no field, unknown wallet, a user's token", async () => {
    const id = await wallet({ maxTotalRisk: 100, tradingMode: 'MODERATE' });
    const cases: Array<[string, CheckAiManagedStateMutationVariables, string?]> = [
      ['stale version', { walletId: id, input: { riskScore: 1 }, expectedVersion: 7 }],
      ['bounds', { walletId: id, input: { currentLeverage: 11, riskScore: 101 } }],
      ['no field', { walletId: id, input: {} }],
      ['unknown wallet', { walletId: new Types.ObjectId().toHexString(), input: { riskScore: 1 } }],
      ["a user's token", { walletId: id, input: { riskScore: 1 } }, alice.token],
    ];
    const before = await stored(id);
    const metricsBefore = await metricSamples();
    for (const [what, vars, token] of cases) {
      const validated = await check({ ...vars, validateOnly: true }, token);
      const written = await check(vars, token);
      expect([what, validated.data ?? null, validated.errors]).toEqual([
        what,
        written.data ?? null,
        written.errors,
      ]);
      expect(validated.errors).toHaveLength(1);
    }
    expect(await stored(id)).toEqual(before);
    const metricsAfter = await metricSamples();
    // The live writes' refusals (bounds, no field) and conflict are counted as writes, once each;
    // the validations' apart.
    const writes = (o: string) =>
      moved(metricsBefore, metricsAfter, `wallet_ai_writes_total{outcome="${o}"}`);
    const checks = (o: string) =>
      moved(metricsBefore, metricsAfter, `wallet_ai_validations_total{outcome="${o}"}`);
    expect([writes('refused'), writes('conflict'), checks('refused'), checks('conflict')]).toEqual([
      2, 1, 2, 1,
    ]);
  });
});

describe('updateAiManagedStates with validateOnly items', () => {
  it('checks validateOnly items and stores the others, each as its own kind', async () => {
    const [a, b, c] = [await wallet(), await wallet(), await wallet({ maxTotalRisk: 100 })];
    const [trailA, trailB, trailC] = [
      await trailCount(a),
      await trailCount(b),
      await trailCount(c),
    ];
    const storedC = await stored(c);
    const result = await batch([
      { walletId: a, input: { riskScore: 10 }, validateOnly: true },
      { walletId: b, input: { riskScore: 20 } },
      { walletId: c, input: { currentMaxPositionSize: 500 }, validateOnly: true },
      { walletId: a, input: { riskScore: 30 }, expectedVersion: 0, validateOnly: false },
      { walletId: c, input: { riskScore: 5 }, expectedVersion: 3, validateOnly: true },
    ]);
    expect(result.errors).toBeUndefined();
    const [va, wb, vc, wa, stale] = result.data!.updateAiManagedStates;
    expect(va).toMatchObject({
      error: null,
      wallet: { version: 1, aiManagedState: { riskScore: 10 } },
    });
    expect(wb).toMatchObject({
      error: null,
      wallet: { version: 1, aiManagedState: { riskScore: 20 } },
    });
    expect(wa).toMatchObject({
      error: null,
      wallet: { version: 1, aiManagedState: { riskScore: 30 } },
    });
    expect(vc).toMatchObject({
      wallet: null,
      error: {
        code: 'BAD_USER_INPUT',
        field: 'currentMaxPositionSize',
        message: 'currentMaxPositionSize must be at most maxTotalRisk (100)',
        violations: [{ field: 'currentMaxPositionSize', rule: 'AT_MOST', bound: 100, value: 500 }],
      },
    });
    expect(stale).toMatchObject({
      wallet: null,
      error: { code: 'CONFLICT', currentVersion: 0, violations: null },
    });
    // Only the live items are stored and recorded.
    expect((await stored(a))!.ai_managed_state.risk_score).toBe(30);
    expect((await stored(b))!.version).toBe(1);
    expect(await stored(c)).toEqual(storedC);
    expect([await trailCount(a), await trailCount(b), await trailCount(c)]).toEqual([
      trailA + 1,
      trailB + 1,
      trailC,
    ]);
  });

  it('counts validateOnly items towards the batch limit', async () => {
    const id = await wallet();
    const updates = Array.from({ length: 101 }, (_, i) => ({
      walletId: id,
      input: { riskScore: i % 100 },
      validateOnly: i > 0,
    }));
    const result = await batch(updates);
    expect(result.errors?.[0].extensions?.code).toBe('BAD_USER_INPUT');
    expect((await stored(id))!.version).toBe(0);
  });
});

describe('violations: every bound a write breaks', () => {
  it('lists each broken bound with its rule, bound and the value sent; field and message name the first', async () => {
    const id = await wallet({ maxTotalRisk: 100, tradingMode: 'MODERATE' });
    const result = await check({
      walletId: id,
      input: {
        currentMaxPositionSize: 150,
        currentLeverage: 0,
        riskScore: 101,
        confidenceLevel: -3,
        marketSentiment: 'BEARISH',
      },
    });
    expect(result.errors).toHaveLength(1);
    expect(result.errors![0].message).toBe(
      'currentMaxPositionSize must be at most maxTotalRisk (100)',
    );
    expect(result.errors![0].extensions).toEqual({
      code: 'BAD_USER_INPUT',
      field: 'currentMaxPositionSize',
      violations: [
        { field: 'currentMaxPositionSize', rule: 'AT_MOST', bound: 100, value: 150 },
        { field: 'currentLeverage', rule: 'AT_LEAST', bound: 1, value: 0 },
        { field: 'riskScore', rule: 'AT_MOST', bound: 100, value: 101 },
        { field: 'confidenceLevel', rule: 'AT_LEAST', bound: 0, value: -3 },
      ],
    });
    expect((await stored(id))!.version).toBe(0);
  });

  it('lists the leverage over the mode cap, and leaves out rules that are no bound', async () => {
    const id = await wallet({ maxTotalRisk: 100, tradingMode: 'CONSERVATIVE' });
    const result = await check({
      walletId: id,
      input: { adaptiveStopLoss: 0, currentLeverage: 4 },
    });
    expect(result.errors![0].message).toBe(
      'currentLeverage must be a whole number from 1 to 3 (conservative mode on this exchange)',
    );
    expect(result.errors![0].extensions).toEqual({
      code: 'BAD_USER_INPUT',
      field: 'currentLeverage',
      violations: [{ field: 'currentLeverage', rule: 'AT_MOST', bound: 3, value: 4 }],
    });
  });

  it('has no violations when only a rule that is no bound breaks', async () => {
    const id = await wallet();
    const result = await check({ walletId: id, input: { adaptiveStopLoss: 0 } });
    expect(result.errors![0].extensions).toEqual({
      code: 'BAD_USER_INPUT',
      field: 'adaptiveStopLoss',
    });
    const inBatch = await batch([{ walletId: id, input: { adaptiveStopLoss: 0 } }]);
    expect(inBatch.data!.updateAiManagedStates[0].error).toMatchObject({
      code: 'BAD_USER_INPUT',
      field: 'adaptiveStopLoss',
      violations: null,
    });
  });

  it("lists them on a batch item's OperationError", async () => {
    const id = await wallet({ maxTotalRisk: 100, tradingMode: 'MODERATE' });
    const input = { currentLeverage: 12, riskScore: 300 };
    const single = await check({ walletId: id, input });
    const result = await batch([{ walletId: id, input }]);
    expect(result.data!.updateAiManagedStates[0].error).toEqual({
      code: 'BAD_USER_INPUT',
      message: single.errors![0].message,
      field: 'currentLeverage',
      currentVersion: null,
      violations: [
        { field: 'currentLeverage', rule: 'AT_MOST', bound: 10, value: 12 },
        { field: 'riskScore', rule: 'AT_MOST', bound: 100, value: 300 },
      ],
    });
  });
});

describe('UserWalletEvent.actorId', () => {
  let simulator: Simulator;
  beforeAll(async () => {
    simulator = await startBinanceSimulator({ accounts: [] });
  });
  afterAll(() => simulator.close());

  const actors = async (user: TestUser, id: string) =>
    (await t.gql(TrailActorsDocument, { id }, user.token))
      .data!.userWallet.auditTrail.edges.map((e) => e.node)
      .reverse();

  it("names the user, the agent token and, for the service's own events, no one", async () => {
    // A key the exchange does not know: the connection test's refusal pauses the wallet.
    const admin = await adminToken(t);
    const slug = `vo-${randomBytes(3).toString('hex')}`;
    const created = await t.gql(
      CreateWalletDefinitionDocument,
      {
        input: definitionInput({
          name: `Binance ${slug}`,
          slug,
          ccxtId: 'binance',
          apiConfig: { baseUrl: simulator.url, testnetUrl: simulator.url, rateLimit: 1200 },
        }),
      },
      admin,
    );
    expect(created.errors).toBeUndefined();
    const credential = await t.gql(
      CreateCredentialDocument,
      {
        input: {
          walletId: created.data!.createWalletDefinition.id,
          name: 'Unknown key',
          values: [
            { key: 'api_key', value: randomBytes(24).toString('hex') },
            { key: 'api_secret', value: randomBytes(32).toString('hex') },
          ],
        },
      },
      alice.token,
    );
    const credentialId = credential.data!.createCredential.id;
    const id = (await userWallet(t, alice, credentialId)).id;
    expect((await check({ walletId: id, input: { riskScore: 9 } })).errors).toBeUndefined();
    await t.gql(TestCredentialConnectionDocument, { id: credentialId }, alice.token);

    expect(await actors(alice, id)).toEqual([
      { kind: 'CREATED', version: 0, actor: alice.id, actorRole: 'USER', actorId: alice.id },
      {
        kind: 'AI_STATE_CHANGED',
        version: 1,
        actor: 'checking-agent',
        actorRole: 'AGENT',
        actorId: agent.id,
      },
      {
        kind: 'STATUS_CHANGED',
        version: 2,
        actor: 'wallet-service',
        actorRole: 'SYSTEM',
        actorId: null,
      },
    ]);
  });

  it('is on the live events', async () => {
    const id = await wallet();
    const live = subscribe(
      t.url,
      alice.token,
      'subscription ($w: ObjectID) { myWalletEvents(walletId: $w) { kind actorRole actorId } }',
      { w: id },
    );
    await live.connected;
    await check({ walletId: id, input: { riskScore: 8 } });
    const changes = () => live.events.filter((e) => e.kind !== 'CREATED');
    await until('the live event', () => changes().length > 0);
    expect(changes()).toEqual([
      { kind: 'AI_STATE_CHANGED', actorRole: 'AGENT', actorId: agent.id },
    ]);
    await live.dispose();
  });
});

describe('the schema, against the delegation addition', () => {
  const emitted = parse(readFileSync('schema/schema.graphql', 'utf8')).definitions;
  const addition = parse(
    readFileSync('schema/contract/api/additions/delegation.graphql', 'utf8'),
  ).definitions;
  type Named = DefinitionNode & {
    name: { value: string };
    fields?: ReadonlyArray<FieldDefinitionNode | InputValueDefinitionNode>;
    values?: ReadonlyArray<{ name: { value: string } }>;
  };
  const named = (defs: readonly DefinitionNode[], name: string) =>
    defs.filter((d): d is Named => 'name' in d && (d as Named).name?.value === name);
  /** As SDL, descriptions in one quoting (the emitted schema may block-quote them). */
  const sdl = (node: object) =>
    print(
      JSON.parse(
        JSON.stringify(node, (k, v: unknown) => (k === 'block' || k === 'loc' ? undefined : v)),
      ) as ASTNode,
    );
  /** A field as SDL, its description included, whatever the order of definitions. */
  const fieldOf = (defs: readonly DefinitionNode[], type: string, field: string) => {
    const found = named(defs, type)
      .flatMap((d) => d.fields ?? [])
      .find((f) => f.name.value === field);
    return found && sdl(found);
  };

  it('has BoundRule and BoundViolation as the addition defines them', () => {
    const [rule] = named(emitted, 'BoundRule');
    expect(rule.values!.map((v) => v.name.value).sort()).toEqual(
      named(addition, 'BoundRule')[0]
        .values!.map((v) => v.name.value)
        .sort(),
    );
    const [ours] = named(emitted, 'BoundViolation');
    const [theirs] = named(addition, 'BoundViolation');
    expect(ours.kind).toBe(Kind.OBJECT_TYPE_DEFINITION);
    expect(sdl({ ...ours, fields: [] })).toBe(sdl({ ...theirs, fields: [] }));
    for (const f of theirs.fields!)
      expect(fieldOf(emitted, 'BoundViolation', f.name.value)).toBe(sdl(f));
    expect(ours.fields).toHaveLength(theirs.fields!.length);
  });

  it.each([
    ['OperationError', 'violations'],
    ['AiStateUpdateInput', 'validateOnly'],
    ['UserWalletEvent', 'actorId'],
  ])('has %s.%s as the addition defines it', (type, field) => {
    expect(fieldOf(emitted, type, field)).toBeDefined();
    expect(fieldOf(emitted, type, field)).toBe(fieldOf(addition, type, field));
  });

  it('has updateAiManagedState(validateOnly: Boolean = false)', () => {
    const [mutation] = named(emitted, 'Mutation');
    const update = mutation.fields!.find((f) => f.name.value === 'updateAiManagedState') as
      FieldDefinitionNode | undefined;
    const arg = update?.arguments?.find((a) => a.name.value === 'validateOnly');
    expect(arg && sdl(arg)).toBe('validateOnly: Boolean = false');
  });
});
