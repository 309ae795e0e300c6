import { randomBytes } from 'node:crypto';
import { expect } from '@jest/globals';
import mongoose, { Types } from 'mongoose';
import {
  CreatePaperCredentialDocument,
  CreateUserWalletDocument,
  PaperCredentialDocument,
  PaperManagedWalletsDocument,
  PaperWalletDocument,
  ResetPaperBalancesDocument,
  TestPaperCredentialDocument,
  UpdateAiManagedStateDocument,
  UpdateCredentialDocument,
  type PaperBalanceInput,
} from './generated/graphql';
import { codes, startTestApp, type GqlResult, type TestApp } from './helpers/app';
import {
  adminToken,
  agentToken,
  limits,
  registerUser,
  simulatedDefinition,
  type TestUser,
} from './helpers/factories';
import {
  startBinanceSimulator,
  type BinanceAccount,
  type BinanceSimulator,
} from './simulators/binance.simulator';

/**
 * Paper credentials through the API: no keys, no exchange contacted, virtual balances the owner
 * sets and resets; wallets on them work like any other and say they are paper. This file's app
 * re-tests every 2 s, so a paper credential left out of the queue shows within a few polls.
 */

let t: TestApp;
let admin: string;
let agent: string;
let owner: TestUser;
let other: TestUser;
let binance: BinanceSimulator;
let definitionId: string;
const key: BinanceAccount = {
  apiKey: randomBytes(24).toString('hex'),
  secret: randomBytes(32).toString('hex'),
};

const START: PaperBalanceInput[] = [
  { asset: 'USDT', amount: 10_000 },
  { asset: 'BTC', amount: 0.25 },
];

beforeAll(async () => {
  binance = await startBinanceSimulator({ accounts: [key] });
  t = await startTestApp({ CREDENTIAL_CHECK_INTERVAL: '2s' });
  admin = await adminToken(t);
  agent = await agentToken(t, 'paper-agent');
  owner = await registerUser(t);
  other = await registerUser(t);
  definitionId = await simulatedDefinition(t, admin, 'binance', binance.url);
});

afterAll(async () => {
  await t.close();
  await binance.close();
});

const credentials = () => mongoose.connection.db!.collection('credentials');
const snapshots = (id: string) =>
  mongoose.connection
    .db!.collection('credential_balances')
    .countDocuments({ credential_id: new Types.ObjectId(id) });

function create(
  variables: {
    environment?: 'MAINNET' | 'TESTNET' | 'PAPER';
    values?: Array<{ key: string; value: string }>;
    paperBalances?: PaperBalanceInput[] | null;
  },
  user = owner,
) {
  return t.gql(
    CreatePaperCredentialDocument,
    {
      walletId: definitionId,
      environment: 'PAPER',
      values: [],
      paperBalances: START,
      ...variables,
    },
    user.token,
  );
}

/** A real credential of `user` (the simulator's key), for what paper must not be. */
const realCredential = (environment: 'MAINNET' | 'TESTNET', user = owner) =>
  create(
    {
      environment,
      values: [
        { key: 'api_key', value: key.apiKey },
        { key: 'api_secret', value: key.secret },
      ],
      paperBalances: null,
    },
    user,
  );

async function paperCredential(balances = START): Promise<string> {
  const created = await create({ paperBalances: balances });
  if (!created.data) throw new Error(JSON.stringify(created.errors));
  return created.data.createCredential.id;
}

const held = (balances: PaperBalanceInput[]) =>
  balances.map(({ asset, amount }) => ({ asset, free: amount, used: 0, total: amount }));

function field(result: GqlResult<unknown>): string | undefined {
  return result.errors?.[0]?.extensions?.field;
}

describe('a PAPER credential', () => {
  it('is CONNECTED from creation, holds its paper balances and no key, and is never queued', async () => {
    const created = await create({});
    expect(created.errors).toBeUndefined();
    const credential = created.data!.createCredential;
    expect(credential).toMatchObject({
      environment: 'PAPER',
      isPaper: true,
      connectionState: 'CONNECTED',
      isConnected: true,
      lastCheckedAt: null,
      nextCheckAt: null,
      balances: held(START),
    });
    expect(credential.balancesAt).not.toBeNull();
    expect(credential.fields.map((f) => f.isSet)).toEqual(credential.fields.map(() => false));
    // Nothing secret stored, and its first balances are a snapshot.
    const stored = await credentials().findOne({ _id: new Types.ObjectId(credential.id) });
    expect(stored!.credentials).toEqual({});
    expect(stored!.environment).toBe('paper');
    const history = (await t.gql(PaperCredentialDocument, { id: credential.id }, owner.token)).data!
      .credential.balanceHistory;
    expect(history).toHaveLength(1);
    expect(history[0].balances).toEqual([
      { asset: 'USDT', total: 10_000 },
      { asset: 'BTC', total: 0.25 },
    ]);
  });

  it.each([
    ['key values', { values: [{ key: 'api_key', value: 'something' }] }, 'values'],
    ['no paper balances', { paperBalances: null }, 'paperBalances'],
    ['an empty list', { paperBalances: [] }, 'paperBalances'],
    [
      '51 assets',
      {
        paperBalances: Array.from({ length: 51 }, (_, i) => ({ asset: `A${i}`, amount: 1 })),
      },
      'paperBalances',
    ],
    ['a lower-case asset', { paperBalances: [{ asset: 'usdt', amount: 1 }] }, 'paperBalances'],
    [
      'an asset of 21 characters',
      { paperBalances: [{ asset: 'A'.repeat(21), amount: 1 }] },
      'paperBalances',
    ],
    ['an empty asset', { paperBalances: [{ asset: '', amount: 1 }] }, 'paperBalances'],
    [
      'an asset twice',
      {
        paperBalances: [
          { asset: 'BTC', amount: 1 },
          { asset: 'BTC', amount: 2 },
        ],
      },
      'paperBalances',
    ],
    ['paper balances on MAINNET', { environment: 'MAINNET' as const }, 'paperBalances'],
    ['paper balances on TESTNET', { environment: 'TESTNET' as const }, 'paperBalances'],
  ])('refuses %s as BAD_USER_INPUT, storing nothing', async (_, variables, name) => {
    const before = await credentials().countDocuments();
    const refused = await create(variables);
    expect(codes(refused)).toEqual(['BAD_USER_INPUT']);
    expect(field(refused)).toBe(name);
    expect(await credentials().countDocuments()).toBe(before);
  });

  it('takes 50 assets, symbols of 20 characters and symbols the catalog entry does not list', async () => {
    const fifty = Array.from({ length: 50 }, (_, i) => ({ asset: `A${i}`, amount: i + 1 }));
    const long = [
      { asset: 'X'.repeat(20), amount: 1 },
      { asset: 'XYZ123', amount: 0.000001 },
    ];
    for (const balances of [fifty, long]) {
      const created = await create({ paperBalances: balances });
      expect(created.errors).toBeUndefined();
      expect(created.data!.createCredential.balances).toEqual(held(balances));
    }
  });

  it("keeps no snapshot of a creation refused by the user's cap", async () => {
    const user = await registerUser(t);
    for (let i = 0; i < 50; i++) expect((await create({}, user)).errors).toBeUndefined();
    const stored = await mongoose.connection.db!.collection('credential_balances').countDocuments();
    const refused = await create({}, user);
    expect(codes(refused)).toEqual(['BAD_USER_INPUT']);
    expect(await mongoose.connection.db!.collection('credential_balances').countDocuments()).toBe(
      stored,
    );
  });

  it.each([
    ['zero', 0],
    ['a negative amount', -5],
  ])('refuses %s as an amount as BAD_USER_INPUT (PositiveFloat)', async (_, amount) => {
    const before = await credentials().countDocuments();
    const refused = await create({ paperBalances: [{ asset: 'USDT', amount }] });
    expect(codes(refused)).toEqual(['BAD_USER_INPUT']);
    expect(await credentials().countDocuments()).toBe(before);
  });

  it('passes its test without contacting the exchange, with its balances and a warning, adding no snapshot', async () => {
    const id = await paperCredential();
    const requests = binance.requests.length;
    const tested = await t.gql(TestPaperCredentialDocument, { id }, owner.token);
    expect(tested.errors).toBeUndefined();
    expect(tested.data!.testCredentialConnection).toMatchObject({
      ok: true,
      error: null,
      latencyMs: null,
      permissions: null,
      balances: held(START),
      warnings: [
        'this is a paper credential: no exchange was contacted, and its balances are the ones its owner set',
      ],
      // Checked, never verified: no key was proven.
      credential: {
        connectionState: 'CONNECTED',
        isPaper: true,
        nextCheckAt: null,
        lastVerifiedAt: null,
      },
    });
    expect(tested.data!.testCredentialConnection.credential.lastCheckedAt).not.toBeNull();
    expect(binance.requests.length).toBe(requests);
    expect(await snapshots(id)).toBe(1);
    const metrics = await (await fetch(`${t.url}/metrics`)).text();
    expect(metrics).toMatch(
      /^exchange_connection_tests_total\{exchange="binance",outcome="ok",environment="paper"\} [1-9]/m,
    );
    // No exchange's time to measure, and no key to expire.
    expect(metrics).not.toMatch(/^exchange_connection_test_duration_seconds_count\{[^}]*paper/m);
    expect(metrics).toMatch(/^wallet_credentials_expiring_soon\{environment="paper"\} 0$/m);
  });

  it('stays PAPER: no environment change either way, no key values on update', async () => {
    const id = await paperCredential();
    for (const environment of ['MAINNET', 'TESTNET'] as const) {
      const refused = await t.gql(
        UpdateCredentialDocument,
        { id, input: { environment } },
        owner.token,
      );
      expect(codes(refused)).toEqual(['BAD_USER_INPUT']);
      expect(field(refused)).toBe('environment');
    }
    for (const values of [[{ key: 'api_key', value: 'x' }], []]) {
      const withValues = await t.gql(
        UpdateCredentialDocument,
        { id, input: { values } },
        owner.token,
      );
      expect(codes(withValues)).toEqual(['BAD_USER_INPUT']);
      expect(field(withValues)).toBe('values');
    }
    // A real credential never becomes PAPER.
    const real = await realCredential('MAINNET', owner);
    expect(real.data!.createCredential.isPaper).toBe(false);
    const toPaper = await t.gql(
      UpdateCredentialDocument,
      { id: real.data!.createCredential.id, input: { environment: 'PAPER' } },
      owner.token,
    );
    expect(codes(toPaper)).toEqual(['BAD_USER_INPUT']);
    // Renaming is fine, and leaves it as it was.
    const renamed = await t.gql(
      UpdateCredentialDocument,
      { id, input: { name: 'Try-out' } },
      owner.token,
    );
    expect(renamed.errors).toBeUndefined();
    const now = (await t.gql(PaperCredentialDocument, { id }, owner.token)).data!.credential;
    expect(now).toMatchObject({
      environment: 'PAPER',
      connectionState: 'CONNECTED',
      balances: held(START),
    });
  });
});

describe('resetPaperBalances', () => {
  it("sets the owner's paper balances again, recorded in the balance history", async () => {
    const id = await paperCredential();
    const next = [{ asset: 'ETH', amount: 3 }];
    const reset = await t.gql(
      ResetPaperBalancesDocument,
      { credentialId: id, balances: next },
      owner.token,
    );
    expect(reset.errors).toBeUndefined();
    expect(reset.data!.resetPaperBalances.balances).toEqual(held(next));
    const history = (await t.gql(PaperCredentialDocument, { id }, owner.token)).data!.credential
      .balanceHistory;
    expect(history.map((h) => h.balances)).toEqual([
      [{ asset: 'ETH', total: 3 }],
      [
        { asset: 'USDT', total: 10_000 },
        { asset: 'BTC', total: 0.25 },
      ],
    ]);
  });

  it('is refused to another user, an agent, the anonymous and on a real credential, changing nothing', async () => {
    const id = await paperCredential();
    const next = [{ asset: 'ETH', amount: 3 }];
    const attempt = (token?: string, credentialId = id, balances = next) =>
      t.gql(ResetPaperBalancesDocument, { credentialId, balances }, token);
    expect(codes(await attempt(other.token))).toEqual(['FORBIDDEN']);
    expect(codes(await attempt(agent))).toEqual(['FORBIDDEN']);
    expect(codes(await attempt())).toEqual(['UNAUTHENTICATED']);
    expect(codes(await attempt(owner.token, new Types.ObjectId().toHexString()))).toEqual([
      'NOT_FOUND',
    ]);
    for (const balances of [
      [{ asset: 'eth', amount: 1 }],
      [],
      Array.from({ length: 51 }, (_, i) => ({ asset: `A${i}`, amount: 1 })),
      [
        { asset: 'ETH', amount: 1 },
        { asset: 'ETH', amount: 2 },
      ],
      [{ asset: 'E'.repeat(21), amount: 1 }],
    ]) {
      const bad = await attempt(owner.token, id, balances);
      expect(codes(bad)).toEqual(['BAD_USER_INPUT']);
      expect(field(bad)).toBe('balances');
    }
    for (const amount of [0, -1])
      expect(codes(await attempt(owner.token, id, [{ asset: 'ETH', amount }]))).toEqual([
        'BAD_USER_INPUT',
      ]);

    const real = await realCredential('TESTNET', owner);
    const notPaper = await attempt(owner.token, real.data!.createCredential.id);
    expect(codes(notPaper)).toEqual(['BAD_USER_INPUT']);
    expect(field(notPaper)).toBe('credentialId');

    const now = (await t.gql(PaperCredentialDocument, { id }, owner.token)).data!.credential;
    expect(now.balances).toEqual(held(START));
    expect(now.balanceHistory).toHaveLength(1);
  });
});

describe('a wallet on a PAPER credential', () => {
  it('works like any other, says isPaper to its owner and to agents, and is never re-tested', async () => {
    const id = await paperCredential();
    const requests = binance.requests.length;
    const created = await t.gql(
      CreateUserWalletDocument,
      { input: { credentialId: id, name: 'Paper trading', userLimits: limits() } },
      owner.token,
    );
    expect(created.errors).toBeUndefined();
    const walletId = created.data!.createUserWallet.id;
    // One live wallet per credential, as on a real one.
    const second = await t.gql(
      CreateUserWalletDocument,
      { input: { credentialId: id, name: 'Another', userLimits: limits() } },
      owner.token,
    );
    expect(codes(second)).toEqual(['CONFLICT']);
    expect(
      (await t.gql(PaperWalletDocument, { id: walletId }, owner.token)).data!.userWallet,
    ).toEqual({
      id: walletId,
      isPaper: true,
      status: 'ACTIVE',
      credential: { isPaper: true, nextCheckAt: null },
    });
    const seen = (await t.gql(PaperManagedWalletsDocument, {}, agent)).data!.managedWallets.edges;
    expect(seen.find((e) => e.node.id === walletId)?.node).toEqual({
      id: walletId,
      isPaper: true,
      credential: { isPaper: true },
    });
    // The same limits as on a real wallet: the agent writes inside them, is refused past them.
    const write = (currentLeverage: number) =>
      t.gql(
        UpdateAiManagedStateDocument,
        { walletId, input: { currentMaxPositionSize: 100, currentLeverage } },
        agent,
      );
    expect(codes(await write(2))).toEqual(['BAD_USER_INPUT']);
    expect((await write(1)).errors).toBeUndefined();

    // Several polls of the re-test schedule later: never tested by the service, never queued.
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    const after = (await t.gql(PaperCredentialDocument, { id }, owner.token)).data!.credential;
    expect(after).toMatchObject({ lastCheckedAt: null, nextCheckAt: null });
    expect(binance.requests).toHaveLength(requests);
  });

  it('is not paper on a real credential', async () => {
    const real = await realCredential('MAINNET', other);
    const created = await t.gql(
      CreateUserWalletDocument,
      {
        input: { credentialId: real.data!.createCredential.id, name: 'Real', userLimits: limits() },
      },
      other.token,
    );
    const wallet = (
      await t.gql(PaperWalletDocument, { id: created.data!.createUserWallet.id }, other.token)
    ).data!.userWallet;
    expect(wallet).toMatchObject({ isPaper: false, credential: { isPaper: false } });
  });
});

describe('secrets', () => {
  it('never appear in the log output', () => {
    const logs = t.logs.join('\n');
    expect(logs).toMatch(/paper balances reset/);
    expect(logs).not.toContain(key.secret);
    expect(logs).not.toContain(key.apiKey);
  });
});
