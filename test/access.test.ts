import mongoose from 'mongoose';
import { startTestApp, type TestApp } from './helpers/app';
import {
  agentToken,
  binanceCredential,
  limits,
  registerUser,
  userWallet,
  type TestUser,
} from './helpers/factories';

/**
 * Every user operation, by another user, on Alice's credential and wallet ids: FORBIDDEN each
 * time, and not one stored byte changes. And every operation by the wrong kind of token.
 */
let t: TestApp;
let alice: TestUser;
let mallory: TestUser;
let agent: string;
let credentialId: string;
let walletId: string;

const snapshot = async () => {
  const db = mongoose.connection.db!;
  return JSON.stringify(
    await Promise.all(
      ['credentials', 'user_wallets', 'user_wallet_events'].map((name) =>
        db.collection(name).find({}).sort({ _id: 1 }).toArray(),
      ),
    ),
  );
};

beforeAll(async () => {
  t = await startTestApp();
  alice = await registerUser(t);
  mallory = await registerUser(t);
  agent = await agentToken(t);
  credentialId = await binanceCredential(t, alice);
  walletId = (await userWallet(t, alice, credentialId)).id;
  // A second, paused wallet of Alice's, so resume has something to act on.
  const paused = (await userWallet(t, alice, await binanceCredential(t, alice))).id;
  await t.raw(
    'mutation ($id: ObjectID!) { pauseUserWallet(id: $id) { id } }',
    { id: paused },
    alice.token,
  );
});
afterAll(() => t.close());

const userOperations = (): Array<[string, string, Record<string, unknown>]> => [
  ['credential', 'query ($id: ObjectID!) { credential(id: $id) { id } }', { id: credentialId }],
  [
    'updateCredential',
    'mutation ($id: ObjectID!) { updateCredential(id: $id, input: { name: "mine", isActive: false }) { id } }',
    { id: credentialId },
  ],
  [
    'deleteCredential',
    'mutation ($id: ObjectID!) { deleteCredential(id: $id) { id } }',
    { id: credentialId },
  ],
  [
    'testCredentialConnection',
    'mutation ($id: ObjectID!) { testCredentialConnection(id: $id) { ok } }',
    { id: credentialId },
  ],
  [
    'resetPaperBalances',
    'mutation ($id: ObjectID!) { resetPaperBalances(credentialId: $id, balances: [{ asset: "USDT", amount: 1 }]) { id } }',
    { id: credentialId },
  ],
  [
    'createUserWallet',
    'mutation ($c: ObjectID!, $l: UserLimitsInput!) { createUserWallet(input: { credentialId: $c, name: "x", userLimits: $l }) { id } }',
    { c: credentialId, l: limits() },
  ],
  ['userWallet', 'query ($id: ObjectID!) { userWallet(id: $id) { id } }', { id: walletId }],
  [
    'userWallet events',
    'query ($id: ObjectID!) { userWallet(id: $id) { events { kind } } }',
    { id: walletId },
  ],
  [
    'updateUserWallet',
    'mutation ($id: ObjectID!, $l: UserLimitsInput!) { updateUserWallet(id: $id, input: { userLimits: $l }) { id } }',
    { id: walletId, l: limits({ maxTotalRisk: 1 }) },
  ],
  [
    'pauseUserWallet',
    'mutation ($id: ObjectID!) { pauseUserWallet(id: $id) { id } }',
    { id: walletId },
  ],
  [
    'resumeUserWallet',
    'mutation ($id: ObjectID!) { resumeUserWallet(id: $id) { id } }',
    { id: walletId },
  ],
  [
    'deleteUserWallet',
    'mutation ($id: ObjectID!) { deleteUserWallet(id: $id) { id } }',
    { id: walletId },
  ],
];

describe("another user's ids", () => {
  it.each(userOperations().map(([name]) => [name]))(
    '%s is FORBIDDEN and changes nothing',
    async (name) => {
      const [, query, variables] = userOperations().find(([n]) => n === name)!;
      const before = await snapshot();
      const result = await t.raw(query, variables, mallory.token);
      expect(result.errors!.map((e) => e.extensions?.code)).toEqual(['FORBIDDEN']);
      expect(await snapshot()).toBe(before);
    },
  );

  it("lists none of Alice's things to Mallory", async () => {
    const result = await t.raw<{ credentials: unknown[]; userWallets: unknown[] }>(
      '{ credentials { id } userWallets { id } }',
      {},
      mallory.token,
    );
    expect(result.data).toEqual({ credentials: [], userWallets: [] });
  });
});

describe('the wrong kind of token', () => {
  it.each(userOperations().map(([name]) => [name]))(
    '%s is FORBIDDEN to an agent and changes nothing',
    async (name) => {
      const [, query, variables] = userOperations().find(([n]) => n === name)!;
      const before = await snapshot();
      const result = await t.raw(query, variables, agent);
      expect(result.errors!.map((e) => e.extensions?.code)).toEqual(['FORBIDDEN']);
      expect(await snapshot()).toBe(before);
    },
  );

  it.each([
    ['managedWallets', '{ managedWallets { edges { node { id } } } }', {}],
    [
      'updateAiManagedState',
      'mutation ($id: ObjectID!) { updateAiManagedState(walletId: $id, input: { riskScore: 1 }) { id } }',
      {},
    ],
    [
      'aiPauseWallet',
      'mutation ($id: ObjectID!) { aiPauseWallet(walletId: $id, reason: "x") { id } }',
      {},
    ],
    ['aiResumeWallet', 'mutation ($id: ObjectID!) { aiResumeWallet(walletId: $id) { id } }', {}],
    ['managedWallet', 'query ($id: ObjectID!) { managedWallet(id: $id) { id } }', {}],
    [
      'managedWalletChanges',
      '{ managedWalletChanges(since: "2020-01-01T00:00:00Z") { edges { node { id } } } }',
      {},
    ],
    [
      'updateAiManagedStates',
      'mutation ($id: ObjectID!) { updateAiManagedStates(updates: [{ walletId: $id, input: { riskScore: 1 } }]) { walletId } }',
      {},
    ],
  ])('%s is FORBIDDEN to a user and changes nothing', async (_name, query) => {
    const before = await snapshot();
    const result = await t.raw(query, { id: walletId }, alice.token);
    expect(result.errors!.map((e) => e.extensions?.code)).toEqual(['FORBIDDEN']);
    expect(await snapshot()).toBe(before);
  });
});
