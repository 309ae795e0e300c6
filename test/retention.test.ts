import mongoose, { Types, type mongo } from 'mongoose';
import { systemCtx } from '../src/core/context';
import { createLogger } from '../src/core/logger';
import { deleteExpired, EXPIRY_JOB } from '../src/db/retention';
import { startTestApp, testDatabaseUri, type TestApp } from './helpers/app';
import { binanceCredential, registerUser, userWallet } from './helpers/factories';
import type { StoredWallet } from './helpers/stored';

/**
 * What the service keeps, and for how long: the TTL indexes and its own deletion of what expired.
 */

const DAY_MS = 86_400_000;
const uri = testDatabaseUri();
let t: TestApp | undefined;

const collection = <T extends mongo.Document = mongo.Document>(name: string) =>
  mongoose.connection.db!.collection<T>(name);
const ttlOf = async (name: string, field: string) =>
  (await collection(name).indexes())
    .filter((index) => JSON.stringify(index.key) === JSON.stringify({ [field]: 1 }))
    .map((index) => index.expireAfterSeconds);

afterAll(async () => {
  await t?.close();
});

describe('retention', () => {
  it('gives the audit trail, the balance history and the rate-limit counters TTL indexes with the configured retention', async () => {
    t = await startTestApp({ MONGODB_URI: uri });
    expect(t.config.retention).toEqual({ balanceHistoryDays: 30, auditDays: 400 });
    expect(await ttlOf('user_wallet_events', 'at')).toEqual([400 * 86_400]);
    expect(await ttlOf('credential_balances', 'at')).toEqual([30 * 86_400]);
    expect(await ttlOf('rate_limits', 'expires_at')).toEqual([0]);
    await t.app.stop();
    t = undefined;
  });

  it('changes the indexes of an existing database when the settings change', async () => {
    t = await startTestApp({
      MONGODB_URI: uri,
      BALANCE_HISTORY_DAYS: '7',
      AUDIT_RETENTION_DAYS: '90',
    });
    expect(await ttlOf('user_wallet_events', 'at')).toEqual([90 * 86_400]);
    expect(await ttlOf('credential_balances', 'at')).toEqual([7 * 86_400]);
    expect(await ttlOf('rate_limits', 'expires_at')).toEqual([0]);
    await t.app.stop();
    // Unchanged settings leave the indexes as they are.
    t = await startTestApp({
      MONGODB_URI: uri,
      BALANCE_HISTORY_DAYS: '7',
      AUDIT_RETENTION_DAYS: '90',
    });
    expect(t.logs.some((line) => line.includes('retention changed'))).toBe(false);
    expect(await ttlOf('user_wallet_events', 'at')).toEqual([90 * 86_400]);
    expect(await ttlOf('credential_balances', 'at')).toEqual([7 * 86_400]);
  });

  it("deletes what expired by itself (for engines that don't), and leaves events still in a wallet's outbox", async () => {
    const app = t!;
    const user = await registerUser(app);
    const wallet = await userWallet(app, user, await binanceCredential(app, user));
    const walletId = new Types.ObjectId(wallet.id);
    const now = Date.now();
    const old = new Date(now - 91 * DAY_MS);
    const event = (at: Date) => ({
      _id: new Types.ObjectId(),
      wallet_id: walletId,
      kind: 'status_changed',
      actor: 'x',
      actor_id: new Types.ObjectId(),
      actor_role: 'user',
      before: null,
      after: null,
      version: 1,
      at,
    });
    const [oldEvent, recentEvent, pendingOld] = [
      event(old),
      event(new Date(now - 89 * DAY_MS)),
      event(old),
    ];
    await collection('user_wallet_events').insertMany([oldEvent, recentEvent]);
    await collection('user_wallets').updateOne({ _id: walletId }, {
      $push: { pending_events: pendingOld },
    } as never);
    const credentialId = new Types.ObjectId();
    await collection('credential_balances').insertMany([
      { credential_id: credentialId, at: new Date(now - 8 * DAY_MS), balances: [] },
      { credential_id: credentialId, at: new Date(now - 6 * DAY_MS), balances: [] },
    ]);
    await collection('rate_limits').insertMany([
      {
        _id: 'test:closed' as unknown as Types.ObjectId,
        count: 3,
        expires_at: new Date(now - 1000),
      },
      {
        _id: 'test:open' as unknown as Types.ObjectId,
        count: 3,
        expires_at: new Date(now + 60_000),
      },
    ]);

    const deleted = await deleteExpired(
      systemCtx(createLogger({ logLevel: 'silent' }), EXPIRY_JOB),
      app.config.retention,
      new Date(now),
    );
    expect(deleted).toMatchObject({
      user_wallet_events: 1,
      credential_balances: 1,
      rate_limits: 1,
    });
    expect(
      await collection('user_wallet_events').countDocuments({
        _id: { $in: [oldEvent._id, recentEvent._id] },
      }),
    ).toBe(1);
    expect(await collection('user_wallet_events').countDocuments({ _id: recentEvent._id })).toBe(1);
    expect(
      await collection('credential_balances').countDocuments({ credential_id: credentialId }),
    ).toBe(1);
    expect(
      await collection('rate_limits').countDocuments({
        _id: { $in: ['test:closed', 'test:open'] },
      } as never),
    ).toBe(1);
    // Not yet in the trail: untouched, and still shown.
    const stored = await collection<StoredWallet>('user_wallets').findOne({ _id: walletId });
    expect(
      stored!.pending_events.map((e: { _id: Types.ObjectId }) => e._id.toHexString()),
    ).toContain(pendingOld._id.toHexString());
  });
});
