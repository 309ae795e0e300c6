import { expect } from '@jest/globals';
import mongoose, { Types } from 'mongoose';
import {
  AiPauseWalletDocument,
  CreateCredentialDocument,
  CreateUserWalletDocument,
  CreateWalletDefinitionDocument,
  UserWalletEventsDocument,
  DeleteCredentialDocument,
  DeleteUserWalletDocument,
  PauseUserWalletDocument,
  ResumeUserWalletDocument,
  UpdateAiManagedStateDocument,
  UpdateCredentialDocument,
  UpdateUserWalletDocument,
  UpdateWalletDefinitionDocument,
  UserWalletDocument,
  UserWalletsDocument,
  type UserLimitsInput,
} from './generated/graphql';
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
import type { StoredWalletEvent } from './helpers/stored';

let t: TestApp;
let alice: TestUser;
let bob: TestUser;
let agent: string;

const wallets = () => mongoose.connection.db!.collection('user_wallets');
const create = (
  user: TestUser,
  credentialId: string,
  userLimits: UserLimitsInput = limits(),
  name = 'Trading',
) => t.gql(CreateUserWalletDocument, { input: { credentialId, name, userLimits } }, user.token);

beforeAll(async () => {
  t = await startTestApp();
  alice = await registerUser(t);
  bob = await registerUser(t);
  agent = await agentToken(t);
});
afterAll(() => t.close());

describe('createUserWallet', () => {
  it("creates a wallet with valid data, stored under the spec's names", async () => {
    const credentialId = await binanceCredential(t, alice);
    const result = await create(
      alice,
      credentialId,
      limits({ allowedSymbols: ['btc/usdt', 'ETH', 'BTC/USDT', 'SOL/USDT:USDT'] }),
    );
    expect(result.errors).toBeUndefined();
    const wallet = result.data!.createUserWallet;
    expect(wallet).toMatchObject({
      name: 'Trading',
      status: 'ACTIVE',
      pauseReason: null,
      version: 0,
      userLimits: {
        maxTotalRisk: 1000,
        allowedSymbols: ['BTC/USDT', 'ETH', 'SOL/USDT:USDT'],
        tradingMode: 'MODERATE',
      },
    });
    const raw = await wallets().findOne({ _id: new Types.ObjectId(wallet.id) });
    expect(raw).toMatchObject({
      user_id: new Types.ObjectId(alice.id),
      credential_id: new Types.ObjectId(credentialId),
      status: 'active',
      user_limits: {
        max_total_risk: 1000,
        allowed_symbols: ['BTC/USDT', 'ETH', 'SOL/USDT:USDT'],
        trading_mode: 'moderate',
      },
      ai_managed_state: expect.objectContaining({
        market_sentiment: 'neutral',
        current_max_position_size: 0,
      }),
    });
    const indexes = await wallets().indexes();
    for (const key of [{ user_id: 1, status: 1 }, { credential_id: 1 }, { wallet_id: 1 }]) {
      expect(indexes).toEqual(expect.arrayContaining([expect.objectContaining({ key })]));
    }
  });

  it.each([
    ['CONSERVATIVE', 2],
    ['MODERATE', 5],
    ['AGGRESSIVE', 10],
  ] as const)(
    'initializes a safe AI-managed state (%s: stop loss %d %%)',
    async (tradingMode, stopLoss) => {
      const result = await create(
        alice,
        await binanceCredential(t, alice),
        limits({ tradingMode }),
      );
      expect(result.data!.createUserWallet.aiManagedState).toEqual({
        currentRisk: 0,
        dailyPnl: 0,
        openPositions: 0,
        currentMaxPositionSize: 0,
        currentLeverage: 1,
        adaptiveStopLoss: stopLoss,
        riskScore: 50,
        marketSentiment: 'NEUTRAL',
        confidenceLevel: 0,
        lastAiDecision: null,
      });
    },
  );

  const badSymbols: Array<[string, string[], string]> = [
    [
      'an asset the exchange does not support',
      ['BTC', 'DOGE/USDT'],
      'userLimits.allowedSymbols[1]',
    ],
    ['a symbol not in ccxt form', ['BTC-USDT'], 'userLimits.allowedSymbols[0]'],
    ['an empty list', [], 'userLimits.allowedSymbols'],
    [
      'more than 200 entries',
      Array.from({ length: 201 }, () => 'BTC'),
      'userLimits.allowedSymbols',
    ],
  ];

  it.each(badSymbols)(
    'validates symbols against the exchange: rejects %s',
    async (_what, allowedSymbols, field) => {
      const credentialId = await binanceCredential(t, alice);
      const result = await create(alice, credentialId, limits({ allowedSymbols }));
      expect(result.errors![0].extensions).toEqual({ code: 'BAD_USER_INPUT', field });
      expect(
        await wallets().countDocuments({ credential_id: new Types.ObjectId(credentialId) }),
      ).toBe(0);
    },
  );

  it('requires maxTotalRisk above 0', async () => {
    const zero = await create(
      alice,
      await binanceCredential(t, alice),
      limits({ maxTotalRisk: 0 }),
    );
    expect(zero.errors![0].extensions).toEqual({
      code: 'BAD_USER_INPUT',
      field: 'userLimits.maxTotalRisk',
    });
    const negative = await create(
      alice,
      await binanceCredential(t, alice),
      limits({ maxTotalRisk: -5 }),
    );
    expect(codes(negative)).toEqual(['BAD_USER_INPUT']);
  });

  it("needs the caller's own, active credential on an active exchange", async () => {
    const bobs = await binanceCredential(t, bob);
    expect(codes(await create(alice, bobs))).toEqual(['FORBIDDEN']);
    expect(codes(await create(alice, new Types.ObjectId().toHexString()))).toEqual(['NOT_FOUND']);
    const parked = await binanceCredential(t, alice);
    await t.gql(UpdateCredentialDocument, { id: parked, input: { isActive: false } }, alice.token);
    expect((await create(alice, parked)).errors![0].extensions).toEqual({
      code: 'BAD_USER_INPUT',
      field: 'credentialId',
    });
  });

  it('refuses a wallet on a credential of a deactivated exchange', async () => {
    const credentialId = await binanceCredential(t, alice);
    const admin = await adminToken(t);
    await t.gql(
      UpdateWalletDefinitionDocument,
      { slug: 'binance', input: { isActive: false } },
      admin,
    );
    try {
      expect((await create(alice, credentialId)).errors![0].extensions).toEqual({
        code: 'BAD_USER_INPUT',
        field: 'credentialId',
      });
    } finally {
      await t.gql(
        UpdateWalletDefinitionDocument,
        { slug: 'binance', input: { isActive: true } },
        admin,
      );
    }
  });

  it('is for users: agents are FORBIDDEN, anonymous callers UNAUTHENTICATED', async () => {
    const credentialId = await binanceCredential(t, alice);
    expect(
      codes(
        await t.gql(
          CreateUserWalletDocument,
          { input: { credentialId, name: 'x', userLimits: limits() } },
          agent,
        ),
      ),
    ).toEqual(['FORBIDDEN']);
    expect(
      codes(
        await t.gql(CreateUserWalletDocument, {
          input: { credentialId, name: 'x', userLimits: limits() },
        }),
      ),
    ).toEqual(['UNAUTHENTICATED']);
    expect(codes(await t.gql(UserWalletsDocument, {}, agent))).toEqual(['FORBIDDEN']);
  });
});

describe('one live wallet per credential', () => {
  it('refuses a second live wallet with CONFLICT, and allows one once the first is paused', async () => {
    const credentialId = await binanceCredential(t, alice);
    const first = await userWallet(t, alice, credentialId);
    expect(codes(await create(alice, credentialId))).toEqual(['CONFLICT']);
    await t.gql(PauseUserWalletDocument, { id: first.id }, alice.token);
    expect((await create(alice, credentialId)).errors).toBeUndefined();
    expect(codes(await t.gql(ResumeUserWalletDocument, { id: first.id }, alice.token))).toEqual([
      'CONFLICT',
    ]);
  });

  it('lets exactly one of 20 concurrent creates on one credential through', async () => {
    const credentialId = await binanceCredential(t, alice);
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => create(alice, credentialId, limits(), `racer ${i}`)),
    );
    expect(results.filter((r) => !r.errors)).toHaveLength(1);
    expect(results.flatMap(codes)).toEqual(Array(19).fill('CONFLICT'));
    expect(
      await wallets().countDocuments({
        credential_id: new Types.ObjectId(credentialId),
        status: { $in: ['active', 'ai_paused'] },
      }),
    ).toBe(1);
  });

  it('lets exactly one of 20 concurrent resumes on one credential through', async () => {
    const credentialId = await binanceCredential(t, alice);
    const ids: string[] = [];
    for (let i = 0; i < 20; i++) {
      const wallet = await userWallet(t, alice, credentialId);
      await t.gql(PauseUserWalletDocument, { id: wallet.id }, alice.token);
      ids.push(wallet.id);
    }
    const results = await Promise.all(
      ids.map((id) => t.gql(ResumeUserWalletDocument, { id }, alice.token)),
    );
    expect(results.filter((r) => !r.errors)).toHaveLength(1);
    expect(results.flatMap(codes)).toEqual(Array(19).fill('CONFLICT'));
    expect(
      await wallets().countDocuments({
        credential_id: new Types.ObjectId(credentialId),
        status: 'active',
      }),
    ).toBe(1);
  });
});

describe('userWallets and userWallet', () => {
  let charlie: TestUser;
  let activeId: string;
  let pausedId: string;

  beforeAll(async () => {
    charlie = await registerUser(t);
    activeId = (await userWallet(t, charlie, await binanceCredential(t, charlie))).id;
    pausedId = (await userWallet(t, charlie, await binanceCredential(t, charlie))).id;
    await t.gql(PauseUserWalletDocument, { id: pausedId }, charlie.token);
  });

  it("lists the caller's wallets, oldest first", async () => {
    const list = await t.gql(UserWalletsDocument, {}, charlie.token);
    expect(list.data!.userWallets.map((w) => w.id)).toEqual([activeId, pausedId]);
    const others = await t.gql(UserWalletsDocument, {}, bob.token);
    expect(others.data!.userWallets.map((w) => w.id)).not.toContain(activeId);
  });

  it('filters by status', async () => {
    const paused = await t.gql(
      UserWalletsDocument,
      { filter: { status: 'USER_PAUSED' } },
      charlie.token,
    );
    expect(paused.data!.userWallets.map((w) => w.id)).toEqual([pausedId]);
    const active = await t.gql(
      UserWalletsDocument,
      { filter: { status: 'ACTIVE' } },
      charlie.token,
    );
    expect(active.data!.userWallets.map((w) => w.id)).toEqual([activeId]);
  });

  it('gets one, with its AI-managed state and links', async () => {
    const wallet = await t.gql(UserWalletDocument, { id: activeId }, charlie.token);
    expect(wallet.data!.userWallet).toMatchObject({
      id: activeId,
      definition: { slug: 'binance' },
      aiManagedState: { riskScore: 50 },
    });
  });

  it("is FORBIDDEN for another user's wallet and NOT_FOUND for an unknown id", async () => {
    expect(codes(await t.gql(UserWalletDocument, { id: activeId }, bob.token))).toEqual([
      'FORBIDDEN',
    ]);
    expect(
      codes(
        await t.gql(UserWalletDocument, { id: new Types.ObjectId().toHexString() }, charlie.token),
      ),
    ).toEqual(['NOT_FOUND']);
  });
});

describe('updateUserWallet', () => {
  it('updates the name and limits', async () => {
    const { id } = await userWallet(t, alice, await binanceCredential(t, alice));
    const result = await t.gql(
      UpdateUserWalletDocument,
      {
        id,
        input: {
          name: 'Renamed',
          userLimits: limits({
            maxTotalRisk: 2500,
            allowedSymbols: ['eth/usdt'],
            tradingMode: 'AGGRESSIVE',
          }),
        },
      },
      alice.token,
    );
    expect(result.data!.updateUserWallet).toMatchObject({
      name: 'Renamed',
      version: 1,
      userLimits: { maxTotalRisk: 2500, allowedSymbols: ['ETH/USDT'], tradingMode: 'AGGRESSIVE' },
    });
  });

  it('cannot modify the AI-managed state: the input has no such field', async () => {
    const { id } = await userWallet(t, alice, await binanceCredential(t, alice));
    const result = await t.raw(
      'mutation ($id: ObjectID!) { updateUserWallet(id: $id, input: { aiManagedState: { currentLeverage: 50 } }) { id } }',
      { id },
      alice.token,
    );
    expect(codes(result)).toEqual(['BAD_USER_INPUT']);
    const viaVariables = await t.raw(
      'mutation ($id: ObjectID!, $input: UpdateUserWalletInput!) { updateUserWallet(id: $id, input: $input) { id } }',
      { id, input: { status: 'ACTIVE', currentLeverage: 50 } },
      alice.token,
    );
    expect(new Set(codes(viaVariables))).toEqual(new Set(['BAD_USER_INPUT']));
    expect(await wallets().findOne({ _id: new Types.ObjectId(id) })).toMatchObject({
      version: 0,
      ai_managed_state: expect.objectContaining({ current_leverage: 1 }),
    });
  });

  it("pulls the AI's parameters inside tighter limits in the same write", async () => {
    const { id } = await userWallet(t, alice, await binanceCredential(t, alice), {
      maxTotalRisk: 1000,
      tradingMode: 'AGGRESSIVE',
    });
    await t.gql(
      UpdateAiManagedStateDocument,
      { walletId: id, input: { currentMaxPositionSize: 800, currentLeverage: 50 } },
      agent,
    );
    const result = await t.gql(
      UpdateUserWalletDocument,
      { id, input: { userLimits: limits({ maxTotalRisk: 300, tradingMode: 'CONSERVATIVE' }) } },
      alice.token,
    );
    expect(result.data!.updateUserWallet.aiManagedState).toMatchObject({
      currentMaxPositionSize: 300,
      currentLeverage: 3,
    });
    expect(result.data!.updateUserWallet.version).toBe(2);
  });

  it('validates limits like create and changes nothing when they fail', async () => {
    const { id } = await userWallet(t, alice, await binanceCredential(t, alice));
    const result = await t.gql(
      UpdateUserWalletDocument,
      { id, input: { name: 'Changed', userLimits: limits({ allowedSymbols: ['XRP'] }) } },
      alice.token,
    );
    expect(result.errors![0].extensions).toEqual({
      code: 'BAD_USER_INPUT',
      field: 'userLimits.allowedSymbols[0]',
    });
    expect(await wallets().findOne({ _id: new Types.ObjectId(id) })).toMatchObject({
      name: 'Trading',
      version: 0,
    });
  });

  it("is FORBIDDEN on another user's wallet", async () => {
    const { id } = await userWallet(t, alice, await binanceCredential(t, alice));
    expect(
      codes(await t.gql(UpdateUserWalletDocument, { id, input: { name: 'Mine' } }, bob.token)),
    ).toEqual(['FORBIDDEN']);
  });
});

describe('pause and resume', () => {
  it('pauses an ACTIVE wallet and resumes it', async () => {
    const { id } = await userWallet(t, alice, await binanceCredential(t, alice));
    const paused = await t.gql(PauseUserWalletDocument, { id }, alice.token);
    expect(paused.data!.pauseUserWallet).toMatchObject({
      status: 'USER_PAUSED',
      pauseReason: 'paused by the user',
      version: 1,
    });
    const resumed = await t.gql(ResumeUserWalletDocument, { id }, alice.token);
    expect(resumed.data!.resumeUserWallet).toMatchObject({
      status: 'ACTIVE',
      pauseReason: null,
      version: 2,
    });
  });

  it('pauses and resumes an AI_PAUSED wallet', async () => {
    const { id } = await userWallet(t, alice, await binanceCredential(t, alice));
    await t.gql(AiPauseWalletDocument, { walletId: id, reason: 'volatility' }, agent);
    expect(
      (await t.gql(ResumeUserWalletDocument, { id }, alice.token)).data!.resumeUserWallet.status,
    ).toBe('ACTIVE');
    await t.gql(AiPauseWalletDocument, { walletId: id, reason: 'volatility' }, agent);
    expect(
      (await t.gql(PauseUserWalletDocument, { id }, alice.token)).data!.pauseUserWallet.status,
    ).toBe('USER_PAUSED');
  });

  it('refuses the transitions that make no sense with CONFLICT', async () => {
    const { id } = await userWallet(t, alice, await binanceCredential(t, alice));
    expect(codes(await t.gql(ResumeUserWalletDocument, { id }, alice.token))).toEqual(['CONFLICT']);
    await t.gql(PauseUserWalletDocument, { id }, alice.token);
    expect(codes(await t.gql(PauseUserWalletDocument, { id }, alice.token))).toEqual(['CONFLICT']);
  });

  it('resumes only while the credential is active', async () => {
    const credentialId = await binanceCredential(t, alice);
    const { id } = await userWallet(t, alice, credentialId);
    await t.gql(PauseUserWalletDocument, { id }, alice.token);
    await t.gql(
      UpdateCredentialDocument,
      { id: credentialId, input: { isActive: false } },
      alice.token,
    );
    const result = await t.gql(ResumeUserWalletDocument, { id }, alice.token);
    expect(result.errors![0].extensions).toEqual({ code: 'BAD_USER_INPUT', field: 'credentialId' });
    expect(await wallets().findOne({ _id: new Types.ObjectId(id) })).toMatchObject({
      status: 'user_paused',
    });
  });

  it("is FORBIDDEN on another user's wallet", async () => {
    const { id } = await userWallet(t, alice, await binanceCredential(t, alice));
    expect(codes(await t.gql(PauseUserWalletDocument, { id }, bob.token))).toEqual(['FORBIDDEN']);
    expect(codes(await t.gql(PauseUserWalletDocument, { id }, agent))).toEqual(['FORBIDDEN']);
  });
});

describe('deleteUserWallet', () => {
  it('deletes a wallet in any status', async () => {
    for (const pause of [false, true]) {
      const { id } = await userWallet(t, alice, await binanceCredential(t, alice));
      if (pause) await t.gql(PauseUserWalletDocument, { id }, alice.token);
      expect(
        (await t.gql(DeleteUserWalletDocument, { id }, alice.token)).data!.deleteUserWallet,
      ).toEqual({ id, deleted: true });
      expect(await wallets().countDocuments({ _id: new Types.ObjectId(id) })).toBe(0);
    }
  });

  it('frees the credential for deletion', async () => {
    const credentialId = await binanceCredential(t, alice);
    const { id } = await userWallet(t, alice, credentialId);
    expect(codes(await t.gql(DeleteCredentialDocument, { id: credentialId }, alice.token))).toEqual(
      ['CONFLICT'],
    );
    await t.gql(DeleteUserWalletDocument, { id }, alice.token);
    expect(
      (await t.gql(DeleteCredentialDocument, { id: credentialId }, alice.token)).data!
        .deleteCredential.deleted,
    ).toBe(true);
  });

  it('never leaves a wallet on a deleted credential when both race', async () => {
    for (let round = 0; round < 10; round++) {
      const credentialId = await binanceCredential(t, alice);
      await Promise.all([
        create(alice, credentialId),
        t.gql(DeleteCredentialDocument, { id: credentialId }, alice.token),
      ]);
      const credentialLeft = await mongoose.connection
        .db!.collection('credentials')
        .countDocuments({ _id: new Types.ObjectId(credentialId) });
      const walletsLeft = await wallets().countDocuments({
        credential_id: new Types.ObjectId(credentialId),
      });
      if (credentialLeft === 0) expect(walletsLeft).toBe(0);
    }
  });

  it('keeps the audit trail of a deleted wallet, with the events its outbox still held', async () => {
    const { id } = await userWallet(t, alice, await binanceCredential(t, alice));
    const walletId = new Types.ObjectId(id);
    // An event a write could not copy to the trail (see test/agents.test.ts for one made for real).
    const undelivered = {
      _id: new Types.ObjectId(),
      wallet_id: walletId,
      kind: 'status_changed',
      actor: alice.id,
      actor_id: new Types.ObjectId(alice.id),
      actor_role: 'user',
      before: null,
      after: null,
      version: 0,
      at: new Date(),
    };
    await wallets().updateOne({ _id: walletId }, {
      $push: { pending_events: undelivered },
    } as never);
    expect(
      (await t.gql(DeleteUserWalletDocument, { id }, alice.token)).data!.deleteUserWallet.deleted,
    ).toBe(true);
    const trail = await mongoose.connection
      .db!.collection<StoredWalletEvent>('user_wallet_events')
      .find({ wallet_id: walletId })
      .toArray();
    expect(trail.map((e) => e.kind).sort()).toEqual(['created', 'status_changed']);
    expect(trail.find((e) => e.kind === 'status_changed')!._id).toEqual(undelivered._id);
  });

  it("is FORBIDDEN on another user's wallet", async () => {
    const { id } = await userWallet(t, alice, await binanceCredential(t, alice));
    expect(codes(await t.gql(DeleteUserWalletDocument, { id }, bob.token))).toEqual(['FORBIDDEN']);
    expect(await wallets().countDocuments({ _id: new Types.ObjectId(id) })).toBe(1);
  });
});

describe('keeping wallets inside what changes around them', () => {
  it("refuses a trading mode whose leverage cap is below the exchange's minimum", async () => {
    const admin = await adminToken(t);
    const futures = await t.gql(
      CreateWalletDefinitionDocument,
      {
        input: definitionInput({
          features: {
            spot: false,
            futures: true,
            perpetuals: true,
            leverage: { min: 5, max: 20 },
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
          walletId: futures.data!.createWalletDefinition.id,
          name: 'futures',
          values: [
            { key: 'api_key', value: 'k'.repeat(20) },
            { key: 'api_secret', value: 's'.repeat(20) },
          ],
        },
      },
      alice.token,
    );
    const credentialId = credential.data!.createCredential.id;
    const conservative = await create(alice, credentialId, limits({ tradingMode: 'CONSERVATIVE' }));
    expect(conservative.errors![0]).toMatchObject({
      message: expect.stringMatching(
        /CONSERVATIVE caps leverage at 3, below Kraken's minimum of 5/,
      ),
      extensions: { code: 'BAD_USER_INPUT', field: 'userLimits.tradingMode' },
    });
    const moderate = await create(alice, credentialId, limits({ tradingMode: 'MODERATE' }));
    expect(moderate.data!.createUserWallet.aiManagedState.currentLeverage).toBe(5);
  });

  it('pauses an ACTIVE wallet whose new limit is below the risk already taken', async () => {
    const { id } = await userWallet(t, alice, await binanceCredential(t, alice), {
      maxTotalRisk: 1000,
    });
    await t.gql(UpdateAiManagedStateDocument, { walletId: id, input: { currentRisk: 800 } }, agent);
    const result = await t.gql(
      UpdateUserWalletDocument,
      { id, input: { userLimits: limits({ maxTotalRisk: 500 }) } },
      alice.token,
    );
    expect(result.data!.updateUserWallet).toMatchObject({
      status: 'AI_PAUSED',
      pauseReason: 'risk limit exceeded: currentRisk 800 > maxTotalRisk 500',
    });
  });

  it('pauses the live wallet of a credential the user deactivates', async () => {
    const credentialId = await binanceCredential(t, alice);
    const { id } = await userWallet(t, alice, credentialId);
    await t.gql(
      UpdateCredentialDocument,
      { id: credentialId, input: { isActive: false } },
      alice.token,
    );
    expect(await wallets().findOne({ _id: new Types.ObjectId(id) })).toMatchObject({
      status: 'user_paused',
      pause_reason: 'the credential was deactivated',
    });
  });

  it("brings the AI's leverage inside an exchange's lowered maximum, on the audit trail", async () => {
    const admin = await adminToken(t);
    const perps = await t.gql(
      CreateWalletDefinitionDocument,
      {
        input: definitionInput({
          features: {
            spot: false,
            futures: false,
            perpetuals: true,
            leverage: { min: 1, max: 50 },
            supportedAssets: ['ETH'],
          },
        }),
      },
      admin,
    );
    const definition = perps.data!.createWalletDefinition;
    const credential = await t.gql(
      CreateCredentialDocument,
      {
        input: {
          walletId: definition.id,
          name: 'perps',
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
    await t.gql(
      UpdateAiManagedStateDocument,
      { walletId: id, input: { currentLeverage: 40 } },
      agent,
    );
    await t.gql(
      UpdateWalletDefinitionDocument,
      {
        slug: definition.slug,
        input: {
          features: {
            spot: false,
            futures: false,
            perpetuals: true,
            leverage: { min: 1, max: 20 },
            supportedAssets: ['ETH'],
          },
        },
      },
      admin,
    );
    expect(await wallets().findOne({ _id: new Types.ObjectId(id) })).toMatchObject({
      ai_managed_state: expect.objectContaining({ current_leverage: 20 }),
    });
    const events = await t.gql(UserWalletEventsDocument, { id, first: 1 }, alice.token);
    expect(events.data!.userWallet.events[0]).toMatchObject({
      kind: 'AI_STATE_CHANGED',
      actorRole: 'ADMIN',
      before: { currentLeverage: 40 },
      after: { currentLeverage: 20 },
    });

    // Again while an agent keeps writing other fields of the wallet: the clamp still lands.
    await t.gql(
      UpdateWalletDefinitionDocument,
      {
        slug: definition.slug,
        input: {
          features: {
            spot: false,
            futures: false,
            perpetuals: true,
            leverage: { min: 1, max: 50 },
            supportedAssets: ['ETH'],
          },
        },
      },
      admin,
    );
    await t.gql(
      UpdateAiManagedStateDocument,
      { walletId: id, input: { currentLeverage: 45 } },
      agent,
    );
    await Promise.all([
      t.gql(
        UpdateWalletDefinitionDocument,
        {
          slug: definition.slug,
          input: {
            features: {
              spot: false,
              futures: false,
              perpetuals: true,
              leverage: { min: 1, max: 10 },
              supportedAssets: ['ETH'],
            },
          },
        },
        admin,
      ),
      ...Array.from({ length: 12 }, (_, i) =>
        t.gql(UpdateAiManagedStateDocument, { walletId: id, input: { riskScore: i } }, agent),
      ),
    ]);
    expect(await wallets().findOne({ _id: new Types.ObjectId(id) })).toMatchObject({
      ai_managed_state: expect.objectContaining({ current_leverage: 10 }),
    });
    const trail = await mongoose.connection
      .db!.collection('user_wallet_events')
      .find({ wallet_id: new Types.ObjectId(id), actor_role: 'admin' })
      .sort({ at: -1 })
      .toArray();
    expect(trail[0]).toMatchObject({
      before: { currentLeverage: 45 },
      after: { currentLeverage: 10 },
      version: expect.any(Number),
    });
  });

  it('refuses names that are blank once trimmed', async () => {
    const credentialId = await binanceCredential(t, alice);
    expect((await create(alice, credentialId, limits(), '   ')).errors![0].extensions).toEqual({
      code: 'BAD_USER_INPUT',
      field: 'name',
    });
    const { id } = await userWallet(t, alice, credentialId);
    expect(
      (await t.gql(UpdateUserWalletDocument, { id, input: { name: ' \t ' } }, alice.token))
        .errors![0].extensions,
    ).toEqual({ code: 'BAD_USER_INPUT', field: 'name' });
  });
});
