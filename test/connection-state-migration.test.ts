import mongoose, { Types, type mongo } from 'mongoose';
import { CredentialDocument } from './generated/graphql';
import { startTestApp, testDatabaseUri, type TestApp } from './helpers/app';
import { binanceCredential, registerUser, userWallet, type TestUser } from './helpers/factories';
import type { StoredCredential } from './helpers/stored';
import { systemCtx } from '../src/core/context';
import { createLogger } from '../src/core/logger';
import { dropRetiredIndexes } from '../src/migrations/004-drop-ai-write-index';

/**
 * Credentials stored before connection states existed: migrated at start-up, before the service
 * answers, and shown from what they were.
 */

const uri = testDatabaseUri();
const INTERVAL_MS = 3_600_000;
let t: TestApp;
let user: TestUser;
const collection = <T extends mongo.Document = mongo.Document>(name: string) =>
  mongoose.connection.db!.collection<T>(name);
const OLD_SHAPE = {
  connection_state: '',
  last_checked_at: '',
  next_check_at: '',
  check_due_at: '',
  check_failures: '',
};

beforeAll(async () => {
  t = await startTestApp({ MONGODB_URI: uri, CREDENTIAL_CHECK_INTERVAL: '1h' });
  user = await registerUser(t);
});
afterAll(() => t.close());

describe('credentials stored before connection states', () => {
  it('get one at start-up, and those of live wallets join the test queue within an interval', async () => {
    const live = await binanceCredential(t, user, 'live');
    await userWallet(t, user, live);
    const idle = await binanceCredential(t, user, 'idle');
    const passed = await binanceCredential(t, user, 'passed');
    const ids = [live, idle, passed].map((id) => new Types.ObjectId(id));
    await collection('credentials').updateMany({ _id: { $in: ids } }, { $unset: OLD_SHAPE });
    await collection('credentials').updateOne(
      { _id: ids[2] },
      { $set: { is_connected: true, last_verified_at: new Date() } },
    );

    // A database from before the migration runner: nothing recorded as run.
    await collection('migrations').deleteMany({});
    await t.app.stop();
    const started = Date.now();
    t = await startTestApp({ MONGODB_URI: uri, CREDENTIAL_CHECK_INTERVAL: '1h' });
    const [liveDoc, idleDoc, passedDoc] = await Promise.all(
      ids.map((_id) => collection<StoredCredential>('credentials').findOne({ _id })),
    );
    expect(liveDoc).toMatchObject({
      connection_state: 'untested',
      check_failures: 0,
      last_checked_at: null,
      check_due_at: null,
    });
    expect(liveDoc!.next_check_at!.getTime()).toBeGreaterThanOrEqual(started);
    expect(liveDoc!.next_check_at!.getTime()).toBeLessThanOrEqual(Date.now() + INTERVAL_MS);
    expect(idleDoc).toMatchObject({ connection_state: 'untested', next_check_at: null });
    expect(passedDoc).toMatchObject({ connection_state: 'connected', next_check_at: null });
    expect(t.logs.join('\n')).toMatch(/"migrated":3,"queued":1/);

    // The service answers once they are migrated: the state is isConnected's.
    const shown = async (id: string) =>
      (await t.gql(CredentialDocument, { id }, user.token)).data!.credential;
    expect(await shown(live)).toMatchObject({
      connectionState: 'UNTESTED',
      lastCheckedAt: null,
      nextCheckAt: liveDoc!.next_check_at!.toISOString(),
    });
    expect(await shown(idle)).toMatchObject({
      connectionState: 'UNTESTED',
      lastCheckedAt: null,
      nextCheckAt: null,
    });
    expect(await shown(passed)).toMatchObject({ connectionState: 'CONNECTED', isConnected: true });

    // Idempotent: a second run (its instance died before recording it, say) touches nothing.
    await collection<{ _id: string }>('migrations').deleteOne({ _id: '003-connection-states' });
    await t.app.stop();
    t = await startTestApp({ MONGODB_URI: uri, CREDENTIAL_CHECK_INTERVAL: '1h' });
    expect(t.logs.join('\n')).not.toMatch(/"migrated"/);
    expect((await collection('credentials').findOne({ _id: ids[0] }))!.next_check_at).toEqual(
      liveDoc!.next_check_at,
    );
  });
});

describe('indexes of earlier versions', () => {
  it('drops ai_write at start-up, once, and keeps every other index', async () => {
    const keys = {
      _id: 1,
      version: 1,
      'user_limits.max_total_risk': 1,
      'user_limits.trading_mode': 1,
      status: 1,
    } as const;
    await collection('user_wallets').createIndex(keys, { unique: true, name: 'ai_write' });
    const before = (await collection('user_wallets').indexes()).map((i) => i.name);
    expect(before).toContain('ai_write');
    // A database from before the migration runner: nothing recorded as run.
    await collection('migrations').deleteMany({});
    await t.app.stop();
    t = await startTestApp({ MONGODB_URI: uri, CREDENTIAL_CHECK_INTERVAL: '1h' });
    const after = (await collection('user_wallets').indexes()).map((i) => i.name);
    expect(after).toEqual(before.filter((name) => name !== 'ai_write'));
    expect(t.logs.join('\n')).toMatch(
      /"indexes":\["ai_write"\].*dropped indexes this version no longer uses/,
    );
    expect(
      await dropRetiredIndexes(systemCtx(createLogger({ logLevel: 'silent' }), 'migrations')),
    ).toEqual([]);
  });
});
