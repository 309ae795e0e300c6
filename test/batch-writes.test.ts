import { expect } from '@jest/globals';
import mongoose, { Types } from 'mongoose';
import {
  ManagedWalletDocument,
  PauseUserWalletDocument,
  UpdateAiManagedStateDocument,
  UpdateAiManagedStatesDocument,
  UpdateUserWalletDocument,
  type AiStateUpdateInput,
} from './generated/graphql';
import { codes, startTestApp, type TestApp } from './helpers/app';
import { commandsFor } from './helpers/commands';
import {
  agentToken,
  binanceCredential,
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
const events = () => mongoose.connection.db!.collection<StoredWalletEvent>('user_wallet_events');
const stored = async (id: string) => (await wallets().findOne({ _id: new Types.ObjectId(id) }))!;
const batch = (updates: AiStateUpdateInput[], token = agent) =>
  t.gql(UpdateAiManagedStatesDocument, { updates }, token);
const wallet = async (overrides: Parameters<typeof limits>[0] = {}) =>
  userWallet(t, alice, await binanceCredential(t, alice), overrides);
/** `n` fresh wallets of alice's, created 10 at a time. */
async function walletsOf(
  n: number,
  overrides: Parameters<typeof limits>[0] = {},
): Promise<string[]> {
  const ids: string[] = [];
  while (ids.length < n)
    ids.push(
      ...(await Promise.all(
        Array.from(
          { length: Math.min(10, n - ids.length) },
          async () => (await wallet(overrides)).id,
        ),
      )),
    );
  return ids;
}

beforeAll(async () => {
  // Alice holds many wallets, each on its own credential.
  t = await startTestApp({ MAX_CREDENTIALS_PER_USER: '1000', MAX_WALLETS_PER_USER: '1000' });
  alice = await registerUser(t);
  agent = await agentToken(t, 'batch-agent');
});
afterAll(() => t.close());

describe('updateAiManagedStates', () => {
  it('stores each write as updateAiManagedState would, and answers each one, in order', async () => {
    const [a, b] = await walletsOf(2, { maxTotalRisk: 1000, tradingMode: 'MODERATE' });
    const result = await batch([
      {
        walletId: a,
        expectedVersion: 0,
        input: { currentMaxPositionSize: 250, currentLeverage: 5, marketSentiment: 'BULLISH' },
      },
      { walletId: b, input: { riskScore: 30, currentRisk: 100 } },
    ]);
    expect(result.errors).toBeUndefined();
    const [first, second] = result.data!.updateAiManagedStates;
    expect(first).toMatchObject({
      walletId: a,
      error: null,
      wallet: {
        id: a,
        version: 1,
        status: 'ACTIVE',
        aiManagedState: {
          currentMaxPositionSize: 250,
          currentLeverage: 5,
          marketSentiment: 'BULLISH',
        },
      },
    });
    expect(second).toMatchObject({
      walletId: b,
      error: null,
      wallet: { id: b, version: 1, aiManagedState: { riskScore: 30, currentRisk: 100 } },
    });
    // The answer is the wallet as stored, lastAiDecision and updatedAt included, with its links and
    // its events.
    for (const outcome of [first, second]) {
      const { managedWallet } = (
        await t.gql(ManagedWalletDocument, { id: outcome.walletId }, agent)
      ).data!;
      const { events: answered, definition, userChangedAt, ...rest } = outcome.wallet!;
      expect(rest).toEqual(
        Object.fromEntries(
          Object.keys(rest).map((k) => [k, managedWallet[k as keyof typeof managedWallet]]),
        ),
      );
      expect(definition).toEqual({ slug: 'binance' });
      expect(userChangedAt).toBe(managedWallet.userChangedAt);
      expect(answered).toEqual([
        { kind: 'AI_STATE_CHANGED', version: 1, walletId: outcome.walletId },
        { kind: 'CREATED', version: 0, walletId: outcome.walletId },
      ]);
    }
    // Each write's event is in the trail, complete, and nothing is left in the outboxes.
    const trail = await events().findOne({ wallet_id: new Types.ObjectId(a), version: 1 });
    expect(trail).toMatchObject({
      kind: 'ai_state_changed',
      actor: 'batch-agent',
      actor_role: 'agent',
      before: { currentMaxPositionSize: 0, currentLeverage: 1, marketSentiment: 'NEUTRAL' },
    });
    expect(trail!.after).toMatchObject({
      currentMaxPositionSize: 250,
      currentLeverage: 5,
      marketSentiment: 'BULLISH',
    });
    expect((await stored(a)).pending_events).toEqual([]);
    expect((await stored(b)).pending_events).toEqual([]);
  });

  it("lets one write's failure be its own: the others go on", async () => {
    const [ok, stale, tooMuch, alsoOk] = await walletsOf(4, {
      maxTotalRisk: 1000,
      tradingMode: 'CONSERVATIVE',
    });
    await t.gql(UpdateAiManagedStateDocument, { walletId: stale, input: { riskScore: 1 } }, agent);
    const unknown = new Types.ObjectId().toHexString();
    const result = await batch([
      { walletId: ok, input: { riskScore: 10 } },
      { walletId: stale, expectedVersion: 0, input: { riskScore: 20 } },
      { walletId: tooMuch, input: { currentLeverage: 4 } },
      { walletId: unknown, input: { riskScore: 30 } },
      { walletId: alsoOk, expectedVersion: 0, input: { confidenceLevel: 90 } },
      { walletId: ok, input: {} },
    ]);
    expect(result.errors).toBeUndefined();
    const outcomes = result.data!.updateAiManagedStates;
    expect(outcomes.map((o) => o.walletId)).toEqual([ok, stale, tooMuch, unknown, alsoOk, ok]);
    expect(outcomes.map((o) => o.error)).toEqual([
      null,
      {
        code: 'CONFLICT',
        message: 'expectedVersion is stale: the wallet is at version 1',
        field: null,
        currentVersion: 1,
      },
      {
        code: 'BAD_USER_INPUT',
        message:
          'currentLeverage must be a whole number from 1 to 3 (conservative mode on this exchange)',
        field: 'currentLeverage',
        currentVersion: null,
      },
      { code: 'NOT_FOUND', message: 'no wallet with that id', field: null, currentVersion: null },
      null,
      {
        code: 'BAD_USER_INPUT',
        message: 'give at least one field to change',
        field: 'input',
        currentVersion: null,
      },
    ]);
    expect(outcomes.map((o) => o.wallet?.version ?? null)).toEqual([1, null, null, null, 1, null]);
    // The same codes and messages one write at a time gives.
    const single = await t.gql(
      UpdateAiManagedStateDocument,
      { walletId: tooMuch, input: { currentLeverage: 4 } },
      agent,
    );
    expect(single.errors![0]).toMatchObject({
      message: outcomes[2].error!.message,
      extensions: { code: 'BAD_USER_INPUT', field: 'currentLeverage' },
    });
    const conflict = await t.gql(
      UpdateAiManagedStateDocument,
      { walletId: stale, expectedVersion: 0, input: { riskScore: 20 } },
      agent,
    );
    expect(conflict.errors![0]).toMatchObject({
      message: outcomes[1].error!.message,
      extensions: { code: 'CONFLICT', currentVersion: 1 },
    });
    expect(await stored(stale)).toMatchObject({
      version: 1,
      ai_managed_state: expect.objectContaining({ risk_score: 1 }),
    });
    expect(await stored(tooMuch)).toMatchObject({ version: 0 });
  });

  it('pauses a wallet whose risk passes its limit, in the same write, with both events', async () => {
    const [over, under] = await walletsOf(2, { maxTotalRisk: 100 });
    const outcomes = (
      await batch([
        { walletId: over, input: { currentRisk: 150 } },
        { walletId: under, input: { currentRisk: 100 } },
      ])
    ).data!.updateAiManagedStates;
    expect(outcomes[0].wallet).toMatchObject({
      status: 'AI_PAUSED',
      pauseReason: 'risk limit exceeded: currentRisk 150 > maxTotalRisk 100',
      version: 1,
    });
    expect(outcomes[1].wallet).toMatchObject({ status: 'ACTIVE', version: 1 });
    expect(await stored(over)).toMatchObject({
      status: 'ai_paused',
      pause_reason: 'risk limit exceeded: currentRisk 150 > maxTotalRisk 100',
    });
    const trail = await events()
      .find({ wallet_id: new Types.ObjectId(over), version: 1 })
      .toArray();
    expect(trail.map((e) => [e.kind, e.actor]).sort()).toEqual([
      ['ai_state_changed', 'batch-agent'],
      ['status_changed', 'batch-agent'],
    ]);
    expect(trail.find((e) => e.kind === 'status_changed')).toMatchObject({
      before: { status: 'ACTIVE' },
      after: { status: 'AI_PAUSED' },
    });
  });

  it('retries a write that missed, as one write does: two writes of one wallet in a batch both land', async () => {
    const [id] = await walletsOf(1);
    const outcomes = (
      await batch([
        { walletId: id, input: { riskScore: 5 } },
        { walletId: id, input: { confidenceLevel: 6 } },
      ])
    ).data!.updateAiManagedStates;
    expect(outcomes.map((o) => o.error)).toEqual([null, null]);
    expect(outcomes.map((o) => o.wallet!.version).sort()).toEqual([1, 2]);
    expect(await stored(id)).toMatchObject({
      version: 2,
      pending_events: [],
      ai_managed_state: expect.objectContaining({ risk_score: 5, confidence_level: 6 }),
    });
    expect(
      await events().countDocuments({
        wallet_id: new Types.ObjectId(id),
        kind: 'ai_state_changed',
      }),
    ).toBe(2);
    // On one expectedVersion, one of them wins and the other is a CONFLICT with the version now.
    const raced = (
      await batch([
        { walletId: id, expectedVersion: 2, input: { riskScore: 7 } },
        { walletId: id, expectedVersion: 2, input: { riskScore: 8 } },
      ])
    ).data!.updateAiManagedStates;
    expect(raced.filter((o) => o.error === null)).toHaveLength(1);
    expect(raced.find((o) => o.error)!.error).toMatchObject({
      code: 'CONFLICT',
      currentVersion: 3,
    });
    expect(await stored(id)).toMatchObject({ version: 3 });
  });

  it('never leaves a state outside the limits when the user tightens them during batched writes', async () => {
    for (let round = 0; round < 5; round++) {
      const ids = await walletsOf(3, { maxTotalRisk: 1000, tradingMode: 'AGGRESSIVE' });
      const [target] = ids;
      await Promise.all([
        ...Array.from({ length: 6 }, (_, i) =>
          batch(
            ids.map((walletId) => ({
              walletId,
              input: { currentMaxPositionSize: 900 + i, currentLeverage: 50 + i },
            })),
          ),
        ),
        t.gql(
          UpdateUserWalletDocument,
          {
            id: target,
            input: { userLimits: limits({ maxTotalRisk: 500, tradingMode: 'CONSERVATIVE' }) },
          },
          alice.token,
        ),
      ]);
      const doc = await stored(target);
      expect(doc.user_limits).toMatchObject({ max_total_risk: 500, trading_mode: 'conservative' });
      expect(doc.ai_managed_state.current_max_position_size).toBeLessThanOrEqual(500);
      expect(doc.ai_managed_state.current_leverage).toBeLessThanOrEqual(3);
      // Every version has its event.
      const versions = await events().distinct('version', { wallet_id: doc._id });
      expect(versions.sort((x: number, y: number) => x - y)).toEqual(
        Array.from({ length: doc.version + 1 }, (_, v) => v),
      );
    }
  });

  it('sends as many database commands for 100 writes as for 10', async () => {
    const ids = await walletsOf(100, { maxTotalRisk: 1000, tradingMode: 'MODERATE' });
    const run = (n: number, round: number) =>
      commandsFor(async () => {
        const result = await batch(
          ids.slice(0, n).map((walletId, i) => ({
            walletId,
            expectedVersion: round,
            input: { riskScore: (i + round) % 100, currentLeverage: 1 + (i % 10) },
          })),
        );
        expect(result.data!.updateAiManagedStates.filter((o) => o.error)).toEqual([]);
      });
    const hundred = await run(100, 0);
    const ten = await run(10, 1);
    // The wallets, their definition, the conditional updates, their events, the pull from the
    // outboxes; then the answer's `events` of every wallet, in one aggregation.
    expect(ten).toEqual([
      'find user_wallets',
      'find wallets',
      'update user_wallets',
      'insert user_wallet_events',
      'update user_wallets',
      'aggregate user_wallet_events',
    ]);
    expect(hundred).toEqual(ten);
    expect(
      await wallets().countDocuments({
        _id: { $in: ids.map((id) => new Types.ObjectId(id)) },
        version: 2,
      }),
    ).toBe(10);
    expect(
      await wallets().countDocuments({
        _id: { $in: ids.map((id) => new Types.ObjectId(id)) },
        'pending_events.0': { $exists: true },
      }),
    ).toBe(0);
  });

  it('takes at most 100 writes, and is for agents only', async () => {
    const [id] = await walletsOf(1);
    const tooMany = await batch(
      Array.from({ length: 101 }, () => ({ walletId: id, input: { riskScore: 1 } })),
    );
    expect(tooMany.errors![0].extensions).toEqual({ code: 'BAD_USER_INPUT', field: 'updates' });
    expect((await batch([])).data!.updateAiManagedStates).toEqual([]);
    expect(codes(await batch([{ walletId: id, input: { riskScore: 1 } }], alice.token))).toEqual([
      'FORBIDDEN',
    ]);
    expect(
      codes(
        await t.gql(UpdateAiManagedStatesDocument, {
          updates: [{ walletId: id, input: { riskScore: 1 } }],
        }),
      ),
    ).toEqual(['UNAUTHENTICATED']);
    await t.gql(PauseUserWalletDocument, { id }, alice.token);
    expect(await stored(id)).toMatchObject({ version: 1 });
  });

  it('keeps the events the trail refuses in their wallets, and still answers every write', async () => {
    const [blocked, free] = await walletsOf(2);
    await events().createIndex(
      { wallet_id: 1, version: 1, kind: 1 },
      { unique: true, name: 'test_blocker' },
    );
    const blocker = await events().insertOne({
      _id: new Types.ObjectId(),
      wallet_id: new Types.ObjectId(blocked),
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
      const outcomes = (
        await batch([
          { walletId: blocked, input: { riskScore: 1 } },
          { walletId: free, input: { riskScore: 2 } },
        ])
      ).data!.updateAiManagedStates;
      expect(outcomes.map((o) => [o.error, o.wallet?.version])).toEqual([
        [null, 1],
        [null, 1],
      ]);
      // The refused one is in the answer's trail (from the outbox), the delivered one from the
      // trail.
      expect(outcomes[0].wallet!.events[0]).toEqual({
        kind: 'AI_STATE_CHANGED',
        version: 1,
        walletId: blocked,
      });
      expect((await stored(blocked)).pending_events).toHaveLength(1);
      expect((await stored(free)).pending_events).toEqual([]);
      expect(t.logs.join('')).toContain('audit events stay in their wallet until the next sweep');
    } finally {
      await events().deleteOne({ _id: blocker.insertedId });
      await events().dropIndex('test_blocker');
    }
  });
});
