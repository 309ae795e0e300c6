import { expect } from '@jest/globals';
import mongoose, { Types } from 'mongoose';
import { UpdateAiManagedStateDocument, UpdateAiManagedStatesDocument } from './generated/graphql';
import { startTestApp, type TestApp } from './helpers/app';
import { agentToken, binanceCredential, registerUser, userWallet } from './helpers/factories';
import type { StoredWallet } from './helpers/stored';

/**
 * A stale expectedVersion is CONFLICT with the wallet's version now, in the message and in
 * extensions.currentVersion; the version the client sent is never repeated.
 */

const SENT = [2147483647, 987654321, -1];

let t: TestApp;
let agent: string;
let walletId: string;

const stored = async () =>
  (await mongoose.connection
    .db!.collection<StoredWallet>('user_wallets')
    .findOne({ _id: new Types.ObjectId(walletId) }))!;

beforeAll(async () => {
  t = await startTestApp();
  agent = await agentToken(t);
  const user = await registerUser(t);
  walletId = (await userWallet(t, user, await binanceCredential(t, user))).id;
  // Version 1.
  await t.gql(UpdateAiManagedStateDocument, { walletId, input: { riskScore: 10 } }, agent);
});
afterAll(() => t.close());

it.each(SENT)(
  'answers expectedVersion %d with the version now, without repeating it',
  async (sent) => {
    const single = await t.gql(
      UpdateAiManagedStateDocument,
      { walletId, input: { riskScore: 90 }, expectedVersion: sent },
      agent,
    );
    const [outcome] = (
      await t.gql(
        UpdateAiManagedStatesDocument,
        { updates: [{ walletId, expectedVersion: sent, input: { riskScore: 90 } }] },
        agent,
      )
    ).data!.updateAiManagedStates;

    expect(single.errors![0].extensions).toEqual({ code: 'CONFLICT', currentVersion: 1 });
    expect(outcome.error).toMatchObject({ code: 'CONFLICT', currentVersion: 1 });
    for (const message of [single.errors![0].message, outcome.error!.message]) {
      expect(message).toBe('expectedVersion is stale: the wallet is at version 1');
      expect(message).not.toContain(String(sent));
    }
    expect(await stored()).toMatchObject({
      version: 1,
      ai_managed_state: expect.objectContaining({ risk_score: 10 }),
    });
  },
);
