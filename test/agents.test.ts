import { expect } from '@jest/globals';
import mongoose, { Types } from 'mongoose';
import {
  AiPauseWalletDocument,
  AiResumeWalletDocument,
  CreateCredentialDocument,
  CreateWalletDefinitionDocument,
  ManagedWalletDocument,
  ManagedWalletsDocument,
  PauseUserWalletDocument,
  ResumeUserWalletDocument,
  UpdateAiManagedStateDocument,
  UpdateCredentialDocument,
  UpdateUserWalletDocument,
  UserWalletEventsDocument,
  WalletBoundsDocument,
  type AiManagedStateInput,
  type TradingMode,
} from './generated/graphql';
import { createLogger } from '../src/core/logger';
import { planAiWrite } from '../src/modules/wallets/ai-state.service';
import { AuditOutboxSweep } from '../src/modules/audit/outbox-sweep';
import { walletPendingEvents } from '../src/modules/wallets/wallet-outbox';
import { UserWalletModel, type UserWallet } from '../src/modules/wallets/user-wallet.model';
import {
  WalletDefinitionModel,
  type WalletDefinition,
} from '../src/modules/catalog/wallet-definition.model';
import { codes, startTestApp, type TestApp } from './helpers/app';
import {
  adminToken,
  agentToken,
  binanceCredential,
  definitionInput,
  limits,
  registerUser,
  userWallet,
  type TestUser,
} from './helpers/factories';
import type { StoredWallet, StoredWalletEvent } from './helpers/stored';

let t: TestApp;
let alice: TestUser;
let agent: string;

const wallets = () => mongoose.connection.db!.collection<StoredWallet>('user_wallets');
const write = (
  walletId: string,
  input: AiManagedStateInput,
  expectedVersion?: number,
  token = agent,
) => t.gql(UpdateAiManagedStateDocument, { walletId, input, expectedVersion }, token);
const stored = async (id: string) => (await wallets().findOne({ _id: new Types.ObjectId(id) }))!;

/** A fresh wallet of alice's on Binance (leverage 1..125), in the given mode. */
const wallet = async (overrides: Parameters<typeof limits>[0] = {}) =>
  userWallet(t, alice, await binanceCredential(t, alice), overrides);

beforeAll(async () => {
  // Alice holds many wallets, each on its own credential.
  t = await startTestApp({ MAX_CREDENTIALS_PER_USER: '1000', MAX_WALLETS_PER_USER: '1000' });
  alice = await registerUser(t);
  agent = await agentToken(t, 'risk-agent');
});
afterAll(() => t.close());

describe('role separation', () => {
  it("keeps users and admins out of the agents' operations", async () => {
    const { id } = await wallet();
    const admin = await adminToken(t);
    for (const token of [alice.token, admin]) {
      expect(codes(await t.gql(ManagedWalletsDocument, {}, token))).toEqual(['FORBIDDEN']);
      expect(codes(await write(id, { riskScore: 10 }, undefined, token))).toEqual(['FORBIDDEN']);
      expect(
        codes(await t.gql(AiPauseWalletDocument, { walletId: id, reason: 'x' }, token)),
      ).toEqual(['FORBIDDEN']);
      expect(codes(await t.gql(AiResumeWalletDocument, { walletId: id }, token))).toEqual([
        'FORBIDDEN',
      ]);
    }
    expect(codes(await t.gql(ManagedWalletsDocument, {}))).toEqual(['UNAUTHENTICATED']);
    expect(await stored(id)).toMatchObject({ version: 0 });
  });

  it("keeps agents out of the users' operations", async () => {
    const { id } = await wallet();
    expect(
      codes(
        await t.gql(
          UpdateUserWalletDocument,
          { id, input: { userLimits: limits({ maxTotalRisk: 1e9 }) } },
          agent,
        ),
      ),
    ).toEqual(['FORBIDDEN']);
    expect(codes(await t.gql(PauseUserWalletDocument, { id }, agent))).toEqual(['FORBIDDEN']);
    expect(codes(await t.gql(ResumeUserWalletDocument, { id }, agent))).toEqual(['FORBIDDEN']);
    expect(await stored(id)).toMatchObject({
      version: 0,
      user_limits: expect.objectContaining({ max_total_risk: 1000 }),
    });
  });
});

describe('managedWallets', () => {
  it("pages through every user's wallets, oldest first", async () => {
    const bob = await registerUser(t);
    await userWallet(t, bob, await binanceCredential(t, bob));
    const all = await wallets()
      .find({}, { projection: { _id: 1 } })
      .sort({ _id: 1 })
      .toArray();
    const seen: string[] = [];
    let after: string | null | undefined;
    for (;;) {
      const page = await t.gql(ManagedWalletsDocument, { first: 2, after }, agent);
      const { edges, pageInfo } = page.data!.managedWallets;
      seen.push(...edges.map((e) => e.node.id));
      if (!pageInfo.hasNextPage) break;
      after = pageInfo.endCursor;
    }
    expect(seen).toEqual(all.map((w) => w._id.toHexString()));
  });

  it('filters by status, and bounds the page size', async () => {
    const { id } = await wallet();
    await t.gql(AiPauseWalletDocument, { walletId: id, reason: 'news' }, agent);
    const paused = await t.gql(ManagedWalletsDocument, { status: 'AI_PAUSED', first: 500 }, agent);
    expect(paused.data!.managedWallets.edges.map((e) => e.node.id)).toContain(id);
    expect(paused.data!.managedWallets.edges.every((e) => e.node.status === 'AI_PAUSED')).toBe(
      true,
    );
    expect(
      (await t.gql(ManagedWalletsDocument, { first: 501 }, agent)).errors![0].extensions,
    ).toEqual({ code: 'BAD_USER_INPUT', field: 'first' });
    expect(
      (await t.gql(ManagedWalletsDocument, { first: 0 }, agent)).errors![0].extensions,
    ).toEqual({ code: 'BAD_USER_INPUT', field: 'first' });
    expect(
      (await t.gql(ManagedWalletsDocument, { after: 'garbage' }, agent)).errors![0].extensions,
    ).toEqual({ code: 'BAD_USER_INPUT', field: 'after' });
  });
});

describe("updateAiManagedState: inside the user's limits", () => {
  it('writes a partial update, sets lastAiDecision and grows the version', async () => {
    const { id } = await wallet({ maxTotalRisk: 1000, tradingMode: 'MODERATE' });
    const before = Date.now();
    const result = await write(
      id,
      {
        currentMaxPositionSize: 250,
        currentLeverage: 5,
        marketSentiment: 'BULLISH',
        riskScore: 30,
        confidenceLevel: 80,
      },
      0,
    );
    expect(result.errors).toBeUndefined();
    const written = result.data!.updateAiManagedState;
    expect(written.version).toBe(1);
    expect(written.aiManagedState).toMatchObject({
      currentMaxPositionSize: 250,
      currentLeverage: 5,
      marketSentiment: 'BULLISH',
      riskScore: 30,
      confidenceLevel: 80,
      adaptiveStopLoss: 5,
    });
    expect(new Date(written.aiManagedState.lastAiDecision!).getTime()).toBeGreaterThanOrEqual(
      before - 1000,
    );
    expect(await stored(id)).toMatchObject({
      ai_managed_state: expect.objectContaining({
        market_sentiment: 'bullish',
        current_leverage: 5,
      }),
    });
  });

  // [mode, field, allowed at the edge, refused just past it, the limit the error names, the bound
  // it breaks (extensions.violations): none for a rule that is no bound]
  type Bound = ['AT_MOST' | 'AT_LEAST', number] | null;
  const edges: Array<[string, keyof AiManagedStateInput, number, number, RegExp, Bound]> = [
    [
      'MODERATE',
      'currentMaxPositionSize',
      1000,
      1000.01,
      /at most maxTotalRisk \(1000\)/,
      ['AT_MOST', 1000],
    ],
    ['CONSERVATIVE', 'currentLeverage', 3, 4, /from 1 to 3 \(conservative/, ['AT_MOST', 3]],
    ['MODERATE', 'currentLeverage', 10, 11, /from 1 to 10 \(moderate/, ['AT_MOST', 10]],
    ['AGGRESSIVE', 'currentLeverage', 125, 126, /from 1 to 125 \(aggressive/, ['AT_MOST', 125]],
    ['AGGRESSIVE', 'currentLeverage', 1, 0, /from 1 to 125/, ['AT_LEAST', 1]],
    ['MODERATE', 'adaptiveStopLoss', 100, 100.5, /at most 100/, ['AT_MOST', 100]],
    ['MODERATE', 'adaptiveStopLoss', 0.01, 0, /greater than 0/, null],
    ['MODERATE', 'riskScore', 100, 101, /0 to 100/, ['AT_MOST', 100]],
    ['MODERATE', 'riskScore', 0, -1, /0 to 100/, ['AT_LEAST', 0]],
    ['MODERATE', 'confidenceLevel', 100, 101, /0 to 100/, ['AT_MOST', 100]],
    ['MODERATE', 'confidenceLevel', 0, -1, /0 to 100/, ['AT_LEAST', 0]],
  ];

  it.each(edges)(
    '%s: %s takes %d and refuses %d, naming the field and the limit',
    async (mode, field, ok, bad, limit, bound) => {
      const { id } = await wallet({ maxTotalRisk: 1000, tradingMode: mode as 'MODERATE' });
      const refused = await write(id, { [field]: bad });
      expect(refused.errors![0].extensions).toEqual({
        code: 'BAD_USER_INPUT',
        field,
        ...(bound && { violations: [{ field, rule: bound[0], bound: bound[1], value: bad }] }),
      });
      expect(refused.errors![0].message).toMatch(limit);
      expect(await stored(id)).toMatchObject({ version: 0 });
      const accepted = await write(id, { [field]: ok });
      expect(accepted.errors).toBeUndefined();
      expect(accepted.data!.updateAiManagedState.aiManagedState[field]).toBe(ok);
    },
  );

  it('refuses a risk score that is not a whole number', async () => {
    const { id } = await wallet();
    const result = await t.raw(
      'mutation ($id: ObjectID!) { updateAiManagedState(walletId: $id, input: { riskScore: 50.5 }) { id } }',
      { id },
      agent,
    );
    expect(codes(result)).toEqual(['BAD_USER_INPUT']);
  });

  it('refuses negative observed facts through the scalars', async () => {
    const { id } = await wallet();
    for (const input of [
      { currentRisk: -1 },
      { openPositions: -1 },
      { currentMaxPositionSize: -0.5 },
    ]) {
      expect(codes(await write(id, input))).toEqual(['BAD_USER_INPUT']);
    }
    expect(await stored(id)).toMatchObject({ version: 0 });
  });

  it('allows only leverage 1 on an exchange without derivatives', async () => {
    const admin = await adminToken(t);
    const spot = await t.gql(
      CreateWalletDefinitionDocument,
      {
        input: definitionInput({
          features: {
            spot: true,
            futures: false,
            perpetuals: false,
            leverage: { min: 1, max: 20 },
            supportedAssets: ['BTC'],
          },
        }),
      },
      admin,
    );
    const credential = await t.gql(
      CreateCredentialDocument,
      {
        input: {
          walletId: spot.data!.createWalletDefinition.id,
          name: 'spot',
          values: [
            { key: 'api_key', value: 'k'.repeat(20) },
            { key: 'api_secret', value: 's'.repeat(20) },
          ],
        },
      },
      alice.token,
    );
    const { id } = await userWallet(t, alice, credential.data!.createCredential.id, {
      tradingMode: 'AGGRESSIVE',
    });
    expect((await write(id, { currentLeverage: 2 })).errors![0].message).toMatch(/from 1 to 1/);
    expect((await write(id, { currentLeverage: 1 })).errors).toBeUndefined();
  });

  it('records observed facts as given, and pauses an ACTIVE wallet whose risk passes the limit', async () => {
    const { id } = await wallet({ maxTotalRisk: 1000 });
    const within = await write(id, { currentRisk: 1000, dailyPnl: -42.5, openPositions: 3 });
    expect(within.data!.updateAiManagedState).toMatchObject({
      status: 'ACTIVE',
      aiManagedState: { currentRisk: 1000, dailyPnl: -42.5, openPositions: 3 },
    });
    const over = await write(id, { currentRisk: 1200.5 });
    expect(over.data!.updateAiManagedState).toMatchObject({
      status: 'AI_PAUSED',
      pauseReason: 'risk limit exceeded: currentRisk 1200.5 > maxTotalRisk 1000',
      aiManagedState: { currentRisk: 1200.5 },
    });
    expect(await stored(id)).toMatchObject({ status: 'ai_paused', version: 2 });
  });
});

describe('updateAiManagedState: under concurrency', () => {
  // The agent's read, check and write, with other writes placed exactly between check and write.
  const plan = async (id: string, input: Parameters<typeof planAiWrite>[2]) => {
    const snapshot = (await UserWalletModel.findById(id).lean<UserWallet>())!;
    const definition = (await WalletDefinitionModel.findById(
      snapshot.wallet_id,
    ).lean<WalletDefinition>())!;
    return planAiWrite(snapshot, definition, input, new Date());
  };

  it.each([
    [
      'maxTotalRisk',
      { currentMaxPositionSize: 900 },
      { maxTotalRisk: 500, tradingMode: 'AGGRESSIVE' as const },
    ],
    [
      'tradingMode',
      { currentLeverage: 50 },
      { maxTotalRisk: 1000, tradingMode: 'CONSERVATIVE' as const },
    ],
  ])('puts the %s check into the one conditional update', async (_limit, input, tighter) => {
    const { id } = await wallet({ maxTotalRisk: 1000, tradingMode: 'AGGRESSIVE' });
    const checked = await plan(id, input);
    expect(await UserWalletModel.countDocuments(checked.filter)).toBe(1);
    // The user tightens the limit after the agent's check and before its write.
    await t.gql(
      UpdateUserWalletDocument,
      { id, input: { userLimits: limits(tighter) } },
      alice.token,
    );
    expect(await UserWalletModel.countDocuments(checked.filter)).toBe(0);
    // Even at the current version, the limit in the filter refuses it on its own.
    const { version } = await stored(id);
    expect(await UserWalletModel.countDocuments({ ...checked.filter, version })).toBe(0);
    // Checked afresh, the same value is refused with the limit named.
    await expect(plan(id, input)).rejects.toMatchObject({
      extensions: { code: 'BAD_USER_INPUT', field: Object.keys(input)[0] },
    });
  });

  it('writes only on the version it checked', async () => {
    const { id } = await wallet();
    const checked = await plan(id, { riskScore: 70 });
    await write(id, { riskScore: 20 });
    expect(await UserWalletModel.countDocuments(checked.filter)).toBe(0);
  });

  it('answers a stale expectedVersion with CONFLICT and writes nothing', async () => {
    const { id } = await wallet();
    await write(id, { riskScore: 10 }, 0);
    const stale = await write(id, { riskScore: 90 }, 0);
    expect(codes(stale)).toEqual(['CONFLICT']);
    // The version now, so the agent can re-read (managedWallet) or retry on it.
    expect(stale.errors![0].extensions).toEqual({ code: 'CONFLICT', currentVersion: 1 });
    expect(await stored(id)).toMatchObject({
      version: 1,
      ai_managed_state: expect.objectContaining({ risk_score: 10 }),
    });
  });

  it('lets exactly one of 20 agents writing the same expectedVersion win', async () => {
    const { id } = await wallet();
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => write(id, { riskScore: i + 1 }, 0)),
    );
    const winners = results.filter((r) => !r.errors);
    expect(winners).toHaveLength(1);
    expect(results.flatMap(codes)).toEqual(Array(19).fill('CONFLICT'));
    // The losers lost either at their read or at the write; both say the version now.
    expect(results.flatMap((r) => r.errors ?? []).map((e) => e.extensions)).toEqual(
      Array(19).fill({ code: 'CONFLICT', currentVersion: 1 }),
    );
    expect(await stored(id)).toMatchObject({
      version: 1,
      ai_managed_state: expect.objectContaining({
        risk_score: winners[0].data!.updateAiManagedState.aiManagedState.riskScore,
      }),
    });
  });

  it('never leaves the state outside the limits when a user tightens them during agent writes', async () => {
    for (let round = 0; round < 10; round++) {
      const { id } = await wallet({ maxTotalRisk: 1000, tradingMode: 'AGGRESSIVE' });
      await Promise.all([
        ...Array.from({ length: 10 }, (_, i) =>
          write(id, { currentMaxPositionSize: 900 + i, currentLeverage: 50 + i }),
        ),
        t.gql(
          UpdateUserWalletDocument,
          { id, input: { userLimits: limits({ maxTotalRisk: 500, tradingMode: 'CONSERVATIVE' }) } },
          alice.token,
        ),
      ]);
      const doc = await stored(id);
      expect(doc.user_limits).toMatchObject({ max_total_risk: 500, trading_mode: 'conservative' });
      expect(doc.ai_managed_state.current_max_position_size).toBeLessThanOrEqual(500);
      expect(doc.ai_managed_state.current_leverage).toBeLessThanOrEqual(3);
    }
  });
});

describe('the audit trail', () => {
  const events = () => mongoose.connection.db!.collection('user_wallet_events');
  /** Every event of a wallet, delivered or still in its outbox. */
  const trail = async (id: string) => {
    const walletId = new Types.ObjectId(id);
    const pending = ((await stored(id)).pending_events ?? []) as Array<{
      kind: string;
      version: number;
    }>;
    return [...(await events().find({ wallet_id: walletId }).toArray()), ...pending] as Array<{
      kind: string;
      version: number;
    }>;
  };

  it('has an event for every version of a wallet written by agents and its user at once', async () => {
    const { id } = await wallet({ maxTotalRisk: 1000, tradingMode: 'AGGRESSIVE' });
    const results = await Promise.all([
      ...Array.from({ length: 12 }, (_, i) => write(id, { riskScore: i, currentLeverage: 10 + i })),
      ...[800, 700, 600].map((maxTotalRisk) =>
        t.gql(
          UpdateUserWalletDocument,
          { id, input: { userLimits: limits({ maxTotalRisk, tradingMode: 'AGGRESSIVE' }) } },
          alice.token,
        ),
      ),
      t.gql(PauseUserWalletDocument, { id }, alice.token),
    ]);
    // The user's writes all land, however busy the agents are; agents' writes on a version taken
    // meanwhile retry.
    expect(results.slice(12).flatMap(codes)).toEqual([]);
    const { version, pending_events } = await stored(id);
    const all = await trail(id);
    expect([...new Set(all.map((e) => e.version))].sort((a, b) => a - b)).toEqual(
      Array.from({ length: version + 1 }, (_, v) => v),
    );
    expect(all.filter((e) => e.kind === 'limits_changed')).toHaveLength(3);
    expect(all.filter((e) => e.kind === 'ai_state_changed')).toHaveLength(
      results.slice(0, 12).filter((r) => !r.errors).length,
    );
    expect(all.filter((e) => e.kind === 'status_changed')).toHaveLength(1);
    // Delivered as they were written: nothing is left in the outbox.
    expect(pending_events).toEqual([]);
  });

  it('keeps an event the trail could not take in its wallet, shows it, and delivers it once later', async () => {
    const { id } = await wallet();
    const walletId = new Types.ObjectId(id);
    // The trail refuses this wallet's next event for real: a unique index and an event in the way
    // (dated 1970, so it sorts last).
    await events().createIndex(
      { wallet_id: 1, version: 1, kind: 1 },
      { unique: true, name: 'test_blocker' },
    );
    const blocker = await events().insertOne({
      wallet_id: walletId,
      version: 1,
      kind: 'ai_state_changed',
      actor: 'blocker',
      actor_role: 'agent',
      actor_id: new Types.ObjectId(),
      before: null,
      after: null,
      at: new Date(0),
    });
    try {
      const written = await write(id, { riskScore: 42 });
      expect(written.errors).toBeUndefined();
      const kept = await stored(id);
      expect(kept).toMatchObject({
        version: 1,
        ai_managed_state: expect.objectContaining({ risk_score: 42 }),
      });
      expect(kept.pending_events).toHaveLength(1);
      expect(kept.pending_events[0]).toMatchObject({
        kind: 'ai_state_changed',
        version: 1,
        after: expect.objectContaining({ riskScore: 42 }),
      });
      expect(t.logs.join('')).toContain('audit events stay in their wallet until the next sweep');

      // The API shows it in the trail meanwhile.
      const shown = await t.gql(UserWalletEventsDocument, { id, first: 5 }, alice.token);
      expect(shown.data!.userWallet.events.map((e) => e.actor)).toEqual([
        'risk-agent',
        alice.id,
        'blocker',
      ]);
      expect(shown.data!.userWallet.events[0]).toMatchObject({
        id: kept.pending_events[0]._id.toHexString(),
        actor: 'risk-agent',
      });

      // While the trail still refuses it, the sweep leaves it where it is.
      const logger = createLogger({ logLevel: 'silent' });
      const later = new Date(Date.now() + 60_000);
      expect(await new AuditOutboxSweep(logger, walletPendingEvents).deliverPending(later)).toBe(0);
      expect((await stored(id)).pending_events).toHaveLength(1);
    } finally {
      await events().deleteOne({ _id: blocker.insertedId });
      await events().dropIndex('test_blocker');
    }
    const logger = createLogger({ logLevel: 'silent' });
    const later = new Date(Date.now() + 60_000);
    expect(
      await new AuditOutboxSweep(logger, walletPendingEvents).deliverPending(later),
    ).toBeGreaterThanOrEqual(1);
    expect(await new AuditOutboxSweep(logger, walletPendingEvents).deliverPending(later)).toBe(0);
    expect((await stored(id)).pending_events).toEqual([]);
    expect(
      await events().countDocuments({ wallet_id: walletId, kind: 'ai_state_changed', version: 1 }),
    ).toBe(1);
    const shown = await t.gql(UserWalletEventsDocument, { id, first: 5 }, alice.token);
    expect(shown.data!.userWallet.events.map((e) => e.kind)).toEqual([
      'AI_STATE_CHANGED',
      'CREATED',
    ]);
  });

  it("completes a user's event the trail refused in the wallet, so the sweep delivers it whole", async () => {
    const { id } = await wallet({ maxTotalRisk: 1000, tradingMode: 'AGGRESSIVE' });
    const walletId = new Types.ObjectId(id);
    await write(id, { currentMaxPositionSize: 900 });
    // The user's limits update (version 2) meets a refusing trail.
    await events().createIndex(
      { wallet_id: 1, version: 1, kind: 1 },
      { unique: true, name: 'test_blocker' },
    );
    const blocker = await events().insertOne({
      wallet_id: walletId,
      version: 2,
      kind: 'limits_changed',
      actor: 'blocker',
      actor_role: 'user',
      actor_id: new Types.ObjectId(),
      before: null,
      after: null,
      at: new Date(0),
    });
    try {
      const updated = await t.gql(
        UpdateUserWalletDocument,
        { id, input: { userLimits: limits({ maxTotalRisk: 500, tradingMode: 'AGGRESSIVE' }) } },
        alice.token,
      );
      expect(updated.errors).toBeUndefined();
      // Kept in the wallet, and complete: the version it made and what it replaced, clamp included.
      const [kept] = (await stored(id)).pending_events;
      expect(kept).toMatchObject({
        kind: 'limits_changed',
        version: 2,
        before: {
          userLimits: expect.objectContaining({ maxTotalRisk: 1000 }),
          aiManagedState: { currentMaxPositionSize: 900 },
        },
        after: {
          userLimits: expect.objectContaining({ maxTotalRisk: 500 }),
          aiManagedState: { currentMaxPositionSize: 500 },
        },
      });
    } finally {
      await events().deleteOne({ _id: blocker.insertedId });
      await events().dropIndex('test_blocker');
    }
    expect(
      await new AuditOutboxSweep(
        createLogger({ logLevel: 'silent' }),
        walletPendingEvents,
      ).deliverPending(new Date(Date.now() + 60_000)),
    ).toBeGreaterThanOrEqual(1);
    expect(await events().findOne({ wallet_id: walletId, kind: 'limits_changed' })).toMatchObject({
      version: 2,
      before: { aiManagedState: { currentMaxPositionSize: 900 } },
    });
  });

  it('pauses the wallet of a credential its user deactivates, however busy the agents are', async () => {
    for (let round = 0; round < 5; round++) {
      const credentialId = await binanceCredential(t, alice);
      const { id } = await userWallet(t, alice, credentialId);
      const [deactivated] = await Promise.all([
        t.gql(
          UpdateCredentialDocument,
          { id: credentialId, input: { isActive: false } },
          alice.token,
        ),
        ...Array.from({ length: 12 }, (_, i) => write(id, { riskScore: i })),
      ]);
      expect(deactivated.errors).toBeUndefined();
      expect(await stored(id)).toMatchObject({
        status: 'user_paused',
        pause_reason: 'the credential was deactivated',
      });
      expect((await trail(id)).filter((e) => e.kind === 'status_changed')).toHaveLength(1);
    }
  });

  it('leaves a younger pending event to the request that wrote it', async () => {
    const { id } = await wallet();
    const at = new Date();
    await wallets().updateOne(
      { _id: new Types.ObjectId(id) },
      {
        $push: {
          pending_events: {
            _id: new Types.ObjectId(),
            wallet_id: new Types.ObjectId(id),
            kind: 'ai_state_changed',
            actor: 'x',
            actor_id: new Types.ObjectId(),
            actor_role: 'agent',
            before: {},
            after: {},
            version: 1,
            at,
          },
        } as never,
      },
    );
    expect(
      await new AuditOutboxSweep(
        createLogger({ logLevel: 'silent' }),
        walletPendingEvents,
      ).deliverPending(new Date(at.getTime() + 1_000)),
    ).toBe(0);
    expect((await stored(id)).pending_events).toHaveLength(1);
  });
});

describe('aiPauseWallet and aiResumeWallet', () => {
  it('pauses an ACTIVE wallet with a reason, and resumes it', async () => {
    const { id } = await wallet();
    const paused = await t.gql(
      AiPauseWalletDocument,
      { walletId: id, reason: '  exchange outage  ' },
      agent,
    );
    expect(paused.data!.aiPauseWallet).toMatchObject({
      status: 'AI_PAUSED',
      pauseReason: 'exchange outage',
    });
    const resumed = await t.gql(AiResumeWalletDocument, { walletId: id }, agent);
    expect(resumed.data!.aiResumeWallet).toMatchObject({ status: 'ACTIVE', pauseReason: null });
  });

  it('needs a reason of 1 to 500 characters', async () => {
    const { id } = await wallet();
    for (const reason of ['', '   ', 'x'.repeat(501)]) {
      expect(
        (await t.gql(AiPauseWalletDocument, { walletId: id, reason }, agent)).errors![0].extensions,
      ).toEqual({ code: 'BAD_USER_INPUT', field: 'reason' });
    }
    expect(await stored(id)).toMatchObject({ status: 'active' });
  });

  it("can't pause or resume what the user paused, nor make a transition twice", async () => {
    const { id } = await wallet();
    await t.gql(PauseUserWalletDocument, { id }, alice.token);
    const pause = await t.gql(AiPauseWalletDocument, { walletId: id, reason: 'x' }, agent);
    expect(codes(pause)).toEqual(['CONFLICT']);
    expect(pause.errors![0].message).toMatch(/the user paused this wallet/);
    expect(codes(await t.gql(AiResumeWalletDocument, { walletId: id }, agent))).toEqual([
      'CONFLICT',
    ]);
    expect(await stored(id)).toMatchObject({ status: 'user_paused' });

    const other = await wallet();
    expect(codes(await t.gql(AiResumeWalletDocument, { walletId: other.id }, agent))).toEqual([
      'CONFLICT',
    ]);
    await t.gql(AiPauseWalletDocument, { walletId: other.id, reason: 'x' }, agent);
    expect(
      codes(await t.gql(AiPauseWalletDocument, { walletId: other.id, reason: 'x' }, agent)),
    ).toEqual(['CONFLICT']);
  });

  it('answers NOT_FOUND for an unknown wallet', async () => {
    expect(
      codes(
        await t.gql(
          AiPauseWalletDocument,
          { walletId: new Types.ObjectId().toHexString(), reason: 'x' },
          agent,
        ),
      ),
    ).toEqual(['NOT_FOUND']);
    expect(codes(await write(new Types.ObjectId().toHexString(), { riskScore: 1 }))).toEqual([
      'NOT_FOUND',
    ]);
  });
});

describe('the audit trail', () => {
  it('answers "who set leverage to 20, and when", newest first, to the owner and to agents', async () => {
    const { id } = await wallet({ tradingMode: 'AGGRESSIVE' });
    await write(id, { currentLeverage: 20 });
    await t.gql(
      UpdateUserWalletDocument,
      { id, input: { userLimits: limits({ tradingMode: 'MODERATE' }) } },
      alice.token,
    );
    await t.gql(PauseUserWalletDocument, { id }, alice.token);

    const trail = await t.gql(UserWalletEventsDocument, { id }, alice.token);
    const events = trail.data!.userWallet.events;
    expect(events.map((e) => e.kind)).toEqual([
      'STATUS_CHANGED',
      'LIMITS_CHANGED',
      'AI_STATE_CHANGED',
      'CREATED',
    ]);
    const leverage = events[2];
    expect(leverage).toMatchObject({
      actor: 'risk-agent',
      actorRole: 'AGENT',
      before: { currentLeverage: 1 },
      after: expect.objectContaining({ currentLeverage: 20 }),
    });
    // Agent names are not unique: the stored event also keeps the token's own id.
    const stored = await mongoose.connection
      .db!.collection<StoredWalletEvent>('user_wallet_events')
      .findOne({ _id: new Types.ObjectId(leverage.id) });
    const agentId = (
      JSON.parse(Buffer.from(agent.split('.')[1], 'base64url').toString()) as { sub: string }
    ).sub.slice('agent:'.length);
    expect(stored!.actor_id.toHexString()).toBe(agentId);
    expect(Date.parse(leverage.at)).not.toBeNaN();
    expect(events[1]).toMatchObject({
      actor: alice.id,
      actorRole: 'USER',
      before: {
        userLimits: expect.objectContaining({ tradingMode: 'AGGRESSIVE' }),
        aiManagedState: { currentLeverage: 20 },
      },
      after: {
        userLimits: expect.objectContaining({ tradingMode: 'MODERATE' }),
        aiManagedState: { currentLeverage: 10 },
      },
    });
    expect(events[0]).toMatchObject({
      before: { status: 'ACTIVE', pauseReason: null },
      after: { status: 'USER_PAUSED', pauseReason: 'paused by the user' },
    });

    const limited = await t.gql(UserWalletEventsDocument, { id, first: 2 }, alice.token);
    expect(limited.data!.userWallet.events.map((e) => e.kind)).toEqual([
      'STATUS_CHANGED',
      'LIMITS_CHANGED',
    ]);
    expect(
      (await t.gql(UserWalletEventsDocument, { id, first: 101 }, alice.token)).errors![0]
        .extensions,
    ).toEqual({ code: 'BAD_USER_INPUT', field: 'first' });

    const forAgents = await t.gql(ManagedWalletsDocument, { first: 500 }, agent);
    const node = forAgents.data!.managedWallets.edges.find((e) => e.node.id === id)!.node;
    expect(node.events.map((e) => e.kind)).toEqual([
      'STATUS_CHANGED',
      'LIMITS_CHANGED',
      'AI_STATE_CHANGED',
      'CREATED',
    ]);
  });

  it('records the automatic pause as a status change by the agent', async () => {
    const { id } = await wallet({ maxTotalRisk: 100 });
    await write(id, { currentRisk: 150 });
    const events = (await t.gql(UserWalletEventsDocument, { id, first: 2 }, alice.token)).data!
      .userWallet.events;
    expect(events.map((e) => [e.kind, e.actor])).toEqual(
      expect.arrayContaining([
        ['STATUS_CHANGED', 'risk-agent'],
        ['AI_STATE_CHANGED', 'risk-agent'],
      ]),
    );
  });
});

describe('aiBounds: the policy as data', () => {
  const bounds = async (id: string) =>
    (await t.gql(ManagedWalletDocument, { id }, agent)).data!.managedWallet.aiBounds;
  const exchange = async (features: {
    futures: boolean;
    perpetuals: boolean;
    leverage: { min: number; max: number };
  }) => {
    const admin = await adminToken(t);
    const created = await t.gql(
      CreateWalletDefinitionDocument,
      {
        input: definitionInput({ features: { spot: true, ...features, supportedAssets: ['BTC'] } }),
      },
      admin,
    );
    const credential = await t.gql(
      CreateCredentialDocument,
      {
        input: {
          walletId: created.data!.createWalletDefinition.id,
          name: 'x',
          values: [
            { key: 'api_key', value: 'k'.repeat(20) },
            { key: 'api_secret', value: 's'.repeat(20) },
          ],
        },
      },
      alice.token,
    );
    return credential.data!.createCredential.id;
  };

  // [exchange, mode, the leverage range the policy gives, a credential on that exchange]
  const futures = { futures: true, perpetuals: false, leverage: { min: 2, max: 20 } };
  const spot = { futures: false, perpetuals: false, leverage: { min: 1, max: 20 } };
  const cases: Array<[string, TradingMode, { min: number; max: number }, () => Promise<string>]> = [
    ['Binance (1..125)', 'CONSERVATIVE', { min: 1, max: 3 }, () => binanceCredential(t, alice)],
    ['Binance (1..125)', 'MODERATE', { min: 1, max: 10 }, () => binanceCredential(t, alice)],
    ['Binance (1..125)', 'AGGRESSIVE', { min: 1, max: 125 }, () => binanceCredential(t, alice)],
    ['futures 2..20', 'MODERATE', { min: 2, max: 10 }, () => exchange(futures)],
    ['futures 2..20', 'AGGRESSIVE', { min: 2, max: 20 }, () => exchange(futures)],
    ['spot only', 'AGGRESSIVE', { min: 1, max: 1 }, () => exchange(spot)],
  ];

  it.each(cases)(
    '%s, %s: a write exactly at each bound is accepted, one just past it refused',
    async (_exchange, tradingMode, leverage, credential) => {
      const { id } = await userWallet(t, alice, await credential(), {
        maxTotalRisk: 750.5,
        tradingMode,
      });
      const b = await bounds(id);
      expect(b).toEqual({ maxPositionSize: 750.5, leverage, maxTotalRisk: 750.5 });
      // The bounds are the same to the wallet's owner.
      expect(
        (await t.gql(WalletBoundsDocument, { id }, alice.token)).data!.userWallet.aiBounds,
      ).toEqual(b);

      // The one bound broken, as extensions.violations lists it.
      const refused = async (
        input: AiManagedStateInput,
        field: keyof AiManagedStateInput,
        rule: 'AT_MOST' | 'AT_LEAST',
        bound: number,
      ) => {
        const before = await stored(id);
        expect((await write(id, input)).errors![0].extensions).toEqual({
          code: 'BAD_USER_INPUT',
          field,
          violations: [{ field, rule, bound, value: input[field] }],
        });
        expect((await stored(id)).version).toBe(before.version);
      };
      const accepted = async (input: AiManagedStateInput) => {
        const result = await write(id, input);
        expect(result.errors).toBeUndefined();
        return result.data!.updateAiManagedState;
      };
      await refused(
        { currentMaxPositionSize: b.maxPositionSize + 0.01 },
        'currentMaxPositionSize',
        'AT_MOST',
        b.maxPositionSize,
      );
      expect(
        (await accepted({ currentMaxPositionSize: b.maxPositionSize })).aiManagedState
          .currentMaxPositionSize,
      ).toBe(b.maxPositionSize);
      await refused(
        { currentLeverage: b.leverage.max + 1 },
        'currentLeverage',
        'AT_MOST',
        b.leverage.max,
      );
      expect(
        (await accepted({ currentLeverage: b.leverage.max })).aiManagedState.currentLeverage,
      ).toBe(b.leverage.max);
      await refused(
        { currentLeverage: b.leverage.min - 1 },
        'currentLeverage',
        'AT_LEAST',
        b.leverage.min,
      );
      expect(
        (await accepted({ currentLeverage: b.leverage.min })).aiManagedState.currentLeverage,
      ).toBe(b.leverage.min);
      // maxTotalRisk is where the wallet stops: at it the wallet trades on, past it it pauses.
      expect(await accepted({ currentRisk: b.maxTotalRisk })).toMatchObject({ status: 'ACTIVE' });
      expect(await accepted({ currentRisk: b.maxTotalRisk + 0.01 })).toMatchObject({
        status: 'AI_PAUSED',
      });
    },
  );

  it("follows the user's limits", async () => {
    const { id } = await wallet({ maxTotalRisk: 1000, tradingMode: 'AGGRESSIVE' });
    expect(await bounds(id)).toEqual({
      maxPositionSize: 1000,
      leverage: { min: 1, max: 125 },
      maxTotalRisk: 1000,
    });
    await t.gql(
      UpdateUserWalletDocument,
      { id, input: { userLimits: limits({ maxTotalRisk: 200, tradingMode: 'CONSERVATIVE' }) } },
      alice.token,
    );
    expect(await bounds(id)).toEqual({
      maxPositionSize: 200,
      leverage: { min: 1, max: 3 },
      maxTotalRisk: 200,
    });
  });
});

describe('managedWallet', () => {
  it('reads one wallet, whoever owns it, as managedWallets shows it', async () => {
    const bob = await registerUser(t);
    const { id } = await userWallet(t, bob, await binanceCredential(t, bob));
    await write(id, { riskScore: 12 });
    const one = await t.gql(ManagedWalletDocument, { id }, agent);
    expect(one.errors).toBeUndefined();
    expect(one.data!.managedWallet).toMatchObject({
      id,
      version: 1,
      aiManagedState: { riskScore: 12 },
      definition: { slug: 'binance' },
    });
  });

  it('answers NOT_FOUND for an unknown id, and is for agents only', async () => {
    expect(
      codes(await t.gql(ManagedWalletDocument, { id: new Types.ObjectId().toHexString() }, agent)),
    ).toEqual(['NOT_FOUND']);
    const { id } = await wallet();
    expect(codes(await t.gql(ManagedWalletDocument, { id }, alice.token))).toEqual(['FORBIDDEN']);
    expect(codes(await t.gql(ManagedWalletDocument, { id }))).toEqual(['UNAUTHENTICATED']);
  });
});
