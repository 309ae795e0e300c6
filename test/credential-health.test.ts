import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { expect } from '@jest/globals';
import { MongoClient, type CommandStartedEvent } from 'mongodb';
import mongoose, { Types, type mongo } from 'mongoose';
import {
  AiResumeWalletDocument,
  CreateCredentialDocument,
  CreateUserWalletDocument,
  CreateWalletDefinitionDocument,
  CredentialHealthDocument,
  CredentialsBalanceHistoryDocument,
  DeleteCredentialDocument,
  DeleteUserWalletDocument,
  ManagedWalletCredentialsDocument,
  PauseUserWalletDocument,
  ResumeUserWalletDocument,
  TestCredentialConnectionDocument,
  UpdateCredentialDocument,
  UserWalletDocument,
  UserWalletEventsDocument,
} from './generated/graphql';
import { isBackgroundComment } from '../src/shared/background';
import { codes, sameDatabaseEnv, startTestApp, type TestApp } from './helpers/app';
import {
  adminToken,
  agentToken,
  definitionInput,
  limits,
  registerUser,
  type TestUser,
  pausedWallet,
} from './helpers/factories';
import { startInstance, waitFor } from './helpers/processes';
import type { StoredWallet } from './helpers/stored';
import {
  startBinanceSimulator,
  type BinanceAccount,
  type BinanceSimulatorOptions,
  type Simulator,
} from './simulators/binance.simulator';

/**
 * The service tests the keys live wallets use by itself (CREDENTIAL_CHECK_INTERVAL), against the
 * exchange simulators, with an interval of seconds. Nothing here asserts a speed: "within the
 * interval" is a poll with a generous deadline.
 */

const INTERVAL_MS = 2_000;
const CONCURRENCY = 2;
/** A deadline for what should happen within an interval or two: generous, for a loaded machine. */
const SOON_MS = 20_000;
/** Balances no log line may carry. */
const BALANCES = [
  { asset: 'BTC', free: '0.12345678', locked: '0.00000000' },
  { asset: 'USDT', free: '4321.50000000', locked: '10.00000000' },
];

let t: TestApp;
let admin: string;
let agent: string;
let user: TestUser;
const simulators: Simulator[] = [];
const secrets: string[] = [];

const collection = <T extends mongo.Document = mongo.Document>(name: string) =>
  mongoose.connection.db!.collection<T>(name);
const oid = (id: string) => new Types.ObjectId(id);

beforeAll(async () => {
  t = await startTestApp({
    CREDENTIAL_CHECK_INTERVAL: `${INTERVAL_MS / 1000}s`,
    CREDENTIAL_CHECK_CONCURRENCY: String(CONCURRENCY),
    EXCHANGE_TIMEOUT_MS: '1000',
    MAX_CREDENTIALS_PER_USER: '100',
    MAX_WALLETS_PER_USER: '100',
  });
  admin = await adminToken(t);
  agent = await agentToken(t, 'health-agent');
  user = await registerUser(t);
});

afterAll(async () => {
  await t.close();
  await Promise.all(simulators.map((s) => s.close()));
});

function newAccount(): BinanceAccount {
  const account = {
    apiKey: randomBytes(24).toString('hex'),
    secret: randomBytes(32).toString('hex'),
    balances: BALANCES.map((b) => ({ ...b })),
  };
  secrets.push(account.apiKey, account.secret);
  return account;
}

/** A Binance simulator whose options (accounts, hang) the test changes as it goes. */
async function exchange(
  accounts: BinanceAccount[],
): Promise<{ simulator: Simulator; options: BinanceSimulatorOptions }> {
  const options: BinanceSimulatorOptions = { accounts };
  const simulator = await startBinanceSimulator(options);
  simulators.push(simulator);
  return { simulator, options };
}

/** A catalog entry tested as Binance, at `url`. */
async function binanceAt(url: string, rateLimit = 1200): Promise<string> {
  const slug = `bn-${randomBytes(3).toString('hex')}`;
  const result = await t.gql(
    CreateWalletDefinitionDocument,
    {
      input: definitionInput({
        name: `Binance ${slug}`,
        slug,
        ccxtId: 'binance',
        apiConfig: { baseUrl: url, testnetUrl: url, rateLimit },
      }),
    },
    admin,
  );
  if (!result.data)
    throw new Error(`createWalletDefinition failed: ${JSON.stringify(result.errors)}`);
  return result.data.createWalletDefinition.id;
}

async function credentialOf(
  definitionId: string,
  account: BinanceAccount,
  owner = user,
): Promise<string> {
  const result = await t.gql(
    CreateCredentialDocument,
    {
      input: {
        walletId: definitionId,
        name: 'Key',
        values: [
          { key: 'api_key', value: account.apiKey },
          { key: 'api_secret', value: account.secret },
        ],
      },
    },
    owner.token,
  );
  if (!result.data) throw new Error(`createCredential failed: ${JSON.stringify(result.errors)}`);
  return result.data.createCredential.id;
}

async function walletOn(credentialId: string, owner = user): Promise<string> {
  const result = await t.gql(
    CreateUserWalletDocument,
    { input: { credentialId, name: 'Trading', userLimits: limits() } },
    owner.token,
  );
  if (!result.data) throw new Error(`createUserWallet failed: ${JSON.stringify(result.errors)}`);
  return result.data.createUserWallet.id;
}

async function health(id: string, first?: number) {
  const result = await t.gql(CredentialHealthDocument, { id, first }, user.token);
  if (!result.data) throw new Error(`credential failed: ${JSON.stringify(result.errors)}`);
  return result.data.credential;
}

type Health = Awaited<ReturnType<typeof health>>;

/** Polls the credential until `ready` holds. */
function healthWhen(
  id: string,
  what: string,
  ready: (c: Health) => boolean,
  ms = SOON_MS,
): Promise<Health> {
  return waitFor(
    what,
    async () => {
      const current = await health(id);
      return ready(current) ? current : undefined;
    },
    ms,
    50,
  );
}

/** The signed balance requests a simulator got from one key, with when they arrived. */
function balanceRequests(simulator: Simulator, apiKey: string): number {
  return simulator.requests.filter(
    (r) => r.path.startsWith('/api/v3/account') && r.headers['x-mbx-apikey'] === apiKey,
  ).length;
}

const ms = (iso: string | null | undefined) => (iso ? new Date(iso).getTime() : NaN);

/**
 * The delay the last test set, within its ±10 % jitter: check_due_at is what nextCheckAt shows
 * between tests (while one runs, nextCheckAt is the end of its lease instead).
 */
async function expectDelay(credentialId: string, delayMs: number): Promise<void> {
  const doc = (await collection('credentials').findOne({ _id: oid(credentialId) }))!;
  const delay = (doc.check_due_at as Date).getTime() - (doc.last_checked_at as Date).getTime();
  expect(delay).toBeGreaterThanOrEqual(delayMs * 0.9 - 1);
  expect(delay).toBeLessThanOrEqual(delayMs * 1.1 + 1);
  expect(
    doc.next_check_at === null ||
      (doc.next_check_at as Date).getTime() >= (doc.check_due_at as Date).getTime(),
  ).toBe(true);
}

/** next - last on what the API answered, within the jitter. */
function expectShownDelay(
  c: { lastCheckedAt?: string | null; nextCheckAt?: string | null },
  delayMs: number,
): void {
  const delay = ms(c.nextCheckAt) - ms(c.lastCheckedAt);
  expect(delay).toBeGreaterThanOrEqual(delayMs * 0.9 - 1);
  expect(delay).toBeLessThanOrEqual(delayMs * 1.1 + 1);
}

async function statusEvents(walletId: string) {
  const result = await t.gql(UserWalletEventsDocument, { id: walletId, first: 100 }, user.token);
  return result.data!.userWallet.events.filter((e) => e.kind === 'STATUS_CHANGED');
}

async function pauseAll(walletIds: string[]): Promise<void> {
  for (const id of walletIds) await t.gql(PauseUserWalletDocument, { id }, user.token);
}

describe('connection states and the re-test schedule', () => {
  it("tests a live wallet's key by itself, every interval, and only while a live wallet uses it", async () => {
    const account = newAccount();
    const { simulator } = await exchange([account]);
    const credentialId = await credentialOf(await binanceAt(simulator.url), account);

    const fresh = await health(credentialId);
    expect(fresh).toMatchObject({
      connectionState: 'UNTESTED',
      isConnected: false,
      lastCheckedAt: null,
      lastVerifiedAt: null,
      nextCheckAt: null,
    });

    // A live wallet on a key never tested: due at once. The scheduler polls every 250 ms here, so on
    // a loaded machine it may claim the key before this read: then the key shows the claim's lease
    // (two test timeouts and 30 s), which only a key due at once can have by now.
    const before = Date.now();
    const walletId = await walletOn(credentialId);
    const queued = await health(credentialId);
    if (ms(queued.nextCheckAt) > Date.now())
      expect(ms(queued.nextCheckAt)).toBeGreaterThanOrEqual(before + 30_000);
    else expect(ms(queued.nextCheckAt)).toBeGreaterThanOrEqual(before - 1000);

    const tested = await healthWhen(
      credentialId,
      'the service to test the key',
      (c) => c.lastCheckedAt !== null,
    );
    expect(tested).toMatchObject({
      connectionState: 'CONNECTED',
      isConnected: true,
      connectionError: null,
    });
    expect(tested.lastVerifiedAt).toBe(tested.lastCheckedAt);
    expect(tested.nextCheckAt).not.toBeNull();
    await expectDelay(credentialId, INTERVAL_MS);
    expect(tested.balanceHistory).toEqual([
      {
        at: tested.lastCheckedAt,
        balances: [
          { asset: 'BTC', free: 0.12345678, used: 0, total: 0.12345678 },
          { asset: 'USDT', free: 4321.5, used: 10, total: 4331.5 },
        ],
      },
    ]);
    expect(
      t.logs.some(
        (line) =>
          line.includes(credentialId) &&
          line.includes('"by":"service"') &&
          line.includes('connection tested'),
      ),
    ).toBe(true);

    // Again after about an interval, and then again.
    const again = await healthWhen(
      credentialId,
      'a second test',
      (c) => ms(c.lastCheckedAt) > ms(tested.lastCheckedAt),
    );
    expect(ms(again.lastCheckedAt) - ms(tested.lastCheckedAt)).toBeGreaterThanOrEqual(
      INTERVAL_MS * 0.9,
    );
    expect(again.balanceHistory).toHaveLength(2);
    expect(ms(again.balanceHistory[0].at)).toBeGreaterThan(ms(again.balanceHistory[1].at));

    // Paused by its user: out of the queue, and not tested.
    await t.gql(PauseUserWalletDocument, { id: walletId }, user.token);
    expect((await health(credentialId)).nextCheckAt).toBeNull();
    // A test already under way finishes within EXCHANGE_TIMEOUT_MS; none starts after it.
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    const paused = await health(credentialId);
    expect(paused.nextCheckAt).toBeNull();
    const requests = balanceRequests(simulator, account.apiKey);
    await new Promise((resolve) => setTimeout(resolve, 2 * INTERVAL_MS));
    expect(balanceRequests(simulator, account.apiKey)).toBe(requests);
    expect((await health(credentialId)).lastCheckedAt).toBe(paused.lastCheckedAt);

    // Resumed: back in the queue, due when the last test said (or at once, being overdue).
    await t.gql(ResumeUserWalletDocument, { id: walletId }, user.token);
    // (Or already claimed by the scheduler, whose lease then shows.)
    expect((await health(credentialId)).nextCheckAt).not.toBeNull();
    await healthWhen(
      credentialId,
      'a test after the resume',
      (c) => ms(c.lastCheckedAt) > ms(paused.lastCheckedAt),
    );

    // Deleted: no live wallet uses it.
    await t.gql(DeleteUserWalletDocument, { id: walletId }, user.token);
    expect((await health(credentialId)).nextCheckAt).toBeNull();
  });

  it('counts a test the user starts the same: it moves nextCheckAt', async () => {
    const account = newAccount();
    const { simulator } = await exchange([account]);
    const credentialId = await credentialOf(await binanceAt(simulator.url), account);
    // Not live: the user's test records its outcome, and leaves nextCheckAt null.
    const alone = await t.gql(TestCredentialConnectionDocument, { id: credentialId }, user.token);
    expect(alone.data!.testCredentialConnection.credential).toMatchObject({
      connectionState: 'CONNECTED',
      nextCheckAt: null,
    });
    expect(alone.data!.testCredentialConnection.credential.lastCheckedAt).toBe(
      alone.data!.testCredentialConnection.testedAt,
    );

    // Live: the first test is due when the user's said, not at once.
    const walletId = await walletOn(credentialId);
    const queued = await health(credentialId);
    expect(ms(queued.nextCheckAt)).toBeGreaterThan(Date.now() - 100);
    expectShownDelay(queued, INTERVAL_MS);

    await collection('credentials').updateOne(
      { _id: oid(credentialId) },
      { $set: { last_test_at: null } },
    );
    const byUser = await t.gql(TestCredentialConnectionDocument, { id: credentialId }, user.token);
    const credential = byUser.data!.testCredentialConnection.credential;
    expect(credential.lastCheckedAt).toBe(byUser.data!.testCredentialConnection.testedAt);
    expectShownDelay(credential, INTERVAL_MS);
    expect((await health(credentialId)).nextCheckAt).toBe(credential.nextCheckAt);
    // The user's limit stays: one test per credential per 10 s.
    expect(
      codes(await t.gql(TestCredentialConnectionDocument, { id: credentialId }, user.token)),
    ).toEqual(['RATE_LIMITED']);
    await t.gql(DeleteUserWalletDocument, { id: walletId }, user.token);
  });

  it('makes new values UNTESTED and due at once', async () => {
    const account = newAccount();
    const { simulator } = await exchange([account]);
    const credentialId = await credentialOf(await binanceAt(simulator.url), account);
    const walletId = await walletOn(credentialId);
    const tested = await healthWhen(
      credentialId,
      'a first test',
      (c) => c.connectionState === 'CONNECTED',
    );

    const before = Date.now();
    const updated = await t.gql(
      UpdateCredentialDocument,
      {
        id: credentialId,
        input: {
          values: [
            { key: 'api_key', value: account.apiKey },
            { key: 'api_secret', value: account.secret },
          ],
        },
      },
      user.token,
    );
    expect(updated.data!.updateCredential).toMatchObject({
      connectionState: 'UNTESTED',
      isConnected: false,
      lastCheckedAt: null,
      lastVerifiedAt: null,
    });
    expect(ms(updated.data!.updateCredential.nextCheckAt)).toBeGreaterThanOrEqual(before - 1000);
    expect(ms(updated.data!.updateCredential.nextCheckAt)).toBeLessThanOrEqual(Date.now());
    const retested = await healthWhen(
      credentialId,
      'the new values tested',
      (c) => c.connectionState === 'CONNECTED',
    );
    expect(ms(retested.lastCheckedAt)).toBeGreaterThan(ms(tested.lastCheckedAt));
    await t.gql(DeleteUserWalletDocument, { id: walletId }, user.token);
  });
});

describe('background work', () => {
  it('tags every database command of its own tests and pauses as background work', async () => {
    const account = newAccount();
    const { simulator, options } = await exchange([account]);
    const credentialId = await credentialOf(await binanceAt(simulator.url), account);
    const walletId = await walletOn(credentialId);
    await healthWhen(
      credentialId,
      'a first passing test',
      (c) => c.connectionState === 'CONNECTED',
    );

    // Watched through a client of its own, so the watching adds nothing to what the service's
    // sends.
    const watcher = await MongoClient.connect(t.config.mongodbUri!);
    const untagged: string[] = [];
    const listener = (event: CommandStartedEvent) => {
      if (
        !['hello', 'isMaster', 'ping', 'endSessions'].includes(event.commandName) &&
        !isBackgroundComment(event.command.comment)
      ) {
        untagged.push(`${event.commandName} ${String(event.command[event.commandName])}`);
      }
    };
    const client = mongoose.connection.getClient();
    client.on('commandStarted', listener);
    try {
      options.accounts = [];
      await waitFor(
        'the wallet paused by the service',
        async () => {
          const wallet = await watcher
            .db()
            .collection<StoredWallet>('user_wallets')
            .findOne({ _id: oid(walletId) });
          return wallet?.status === 'ai_paused' && (wallet.pending_events ?? []).length === 0
            ? true
            : undefined;
        },
        SOON_MS,
        50,
      );
      // And another round of tests while it is paused.
      await new Promise((resolve) => setTimeout(resolve, INTERVAL_MS + 500));
    } finally {
      client.off('commandStarted', listener);
      await watcher.close();
    }
    expect(untagged).toEqual([]);
    await t.gql(DeleteUserWalletDocument, { id: walletId }, user.token);
  });
});

describe('a key the exchange refuses', () => {
  it('is found REJECTED by the service, its live wallet paused with the reason and one event, resume refused until a passing test', async () => {
    const account = newAccount();
    const { simulator, options } = await exchange([account]);
    const credentialId = await credentialOf(await binanceAt(simulator.url), account);
    const walletId = await walletOn(credentialId);
    await healthWhen(
      credentialId,
      'a first passing test',
      (c) => c.connectionState === 'CONNECTED',
    );

    // Revoked at the exchange.
    options.accounts = [];
    const refused = await healthWhen(
      credentialId,
      'the service to find the key refused',
      (c) => c.connectionState === 'REJECTED',
    );
    expect(refused).toMatchObject({
      isConnected: false,
      connectionError: expect.stringMatching(/rejected|refused/),
    });
    expect(refused.lastVerifiedAt).not.toBe(refused.lastCheckedAt);
    await expectDelay(credentialId, INTERVAL_MS);

    const wallet = await pausedWallet(t, user, walletId, SOON_MS);
    expect(wallet).toMatchObject({
      status: 'AI_PAUSED',
      pauseReason: `the exchange refused this wallet's credential: ${refused.connectionError}`,
    });
    const events = await statusEvents(walletId);
    expect(events).toEqual([
      expect.objectContaining({
        actor: 'wallet-service',
        actorRole: 'SYSTEM',
        before: { status: 'ACTIVE', pauseReason: null },
        after: { status: 'AI_PAUSED', pauseReason: wallet.pauseReason },
      }),
    ]);

    // Agents see it in their change feed: they did not pause it themselves.
    const changed = await t.raw<{ userWallet: { userChangedAt: string } }>(
      'query ($id: ObjectID!) { userWallet(id: $id) { userChangedAt } }',
      { id: walletId },
      user.token,
    );
    expect(ms(changed.data!.userWallet.userChangedAt)).toBeGreaterThanOrEqual(
      ms(refused.lastCheckedAt),
    );

    // Still refused at the next test: nothing more to pause, no second event.
    await healthWhen(
      credentialId,
      'another test',
      (c) => ms(c.lastCheckedAt) > ms(refused.lastCheckedAt),
    );
    expect(await statusEvents(walletId)).toHaveLength(1);

    // Neither its user nor an agent may resume it while the key is refused.
    for (const result of [
      await t.gql(ResumeUserWalletDocument, { id: walletId }, user.token),
      await t.gql(AiResumeWalletDocument, { walletId }, agent),
    ]) {
      expect(codes(result)).toEqual(['CONFLICT']);
      expect(result.errors![0].message).toMatch(/test the credential again first/);
    }
    // Nor a new wallet start on it.
    await t.gql(PauseUserWalletDocument, { id: walletId }, user.token);
    const another = await t.gql(
      CreateUserWalletDocument,
      { input: { credentialId, name: 'Another', userLimits: limits() } },
      user.token,
    );
    expect(codes(another)).toEqual(['CONFLICT']);
    expect(another.errors![0].message).toMatch(/test the credential again first/);

    // The key works again and the user's test passes: CONNECTED, the wallet stays paused until
    // resumed.
    options.accounts = [account];
    await collection('credentials').updateOne(
      { _id: oid(credentialId) },
      { $set: { last_test_at: null } },
    );
    const passed = await t.gql(TestCredentialConnectionDocument, { id: credentialId }, user.token);
    expect(passed.data!.testCredentialConnection).toMatchObject({
      ok: true,
      credential: { connectionState: 'CONNECTED' },
    });
    expect(
      (await t.gql(UserWalletDocument, { id: walletId }, user.token)).data!.userWallet.status,
    ).toBe('USER_PAUSED');
    const resumed = await t.gql(ResumeUserWalletDocument, { id: walletId }, user.token);
    expect(resumed.data!.resumeUserWallet).toMatchObject({ status: 'ACTIVE', pauseReason: null });

    // The user's own test finding it refused pauses it the same way.
    options.accounts = [];
    await collection('credentials').updateOne(
      { _id: oid(credentialId) },
      { $set: { last_test_at: null } },
    );
    const failed = await t.gql(TestCredentialConnectionDocument, { id: credentialId }, user.token);
    expect(failed.data!.testCredentialConnection).toMatchObject({
      ok: false,
      credential: { connectionState: 'REJECTED' },
    });
    const pausedAgain = (await t.gql(UserWalletDocument, { id: walletId }, user.token)).data!
      .userWallet;
    expect(pausedAgain.status).toBe('AI_PAUSED');
    expect((await statusEvents(walletId))[0]).toMatchObject({
      actor: 'wallet-service',
      actorRole: 'SYSTEM',
      after: { status: 'AI_PAUSED' },
    });
    await t.gql(DeleteUserWalletDocument, { id: walletId }, user.token);
  });

  it('makes a key whose withdrawals get switched on REJECTED, and pauses its wallet', async () => {
    const account = newAccount();
    const { simulator } = await exchange([account]);
    const credentialId = await credentialOf(await binanceAt(simulator.url), account);
    const walletId = await walletOn(credentialId);
    await healthWhen(
      credentialId,
      'a first passing test',
      (c) => c.connectionState === 'CONNECTED',
    );

    account.enableWithdrawals = true;
    const refused = await healthWhen(
      credentialId,
      'the service to find the key can withdraw',
      (c) => c.connectionState === 'REJECTED',
    );
    expect(refused.connectionError).toMatch(/can withdraw funds/);
    const wallet = await pausedWallet(t, user, walletId, SOON_MS);
    expect(wallet).toMatchObject({
      status: 'AI_PAUSED',
      pauseReason: `the exchange refused this wallet's credential: ${refused.connectionError}`,
    });
    expect(await statusEvents(walletId)).toEqual([
      expect.objectContaining({ actor: 'wallet-service', actorRole: 'SYSTEM' }),
    ]);
    await t.gql(DeleteUserWalletDocument, { id: walletId }, user.token);
  });
});

describe('an exchange that stops answering', () => {
  it('makes the credential UNREACHABLE and backs off (a tenth of the interval, doubling up to it) without pausing anything', async () => {
    const account = newAccount();
    const { simulator, options } = await exchange([account]);
    const credentialId = await credentialOf(await binanceAt(simulator.url), account);
    const walletId = await walletOn(credentialId);
    await healthWhen(
      credentialId,
      'a first passing test',
      (c) => c.connectionState === 'CONNECTED',
    );

    options.hang = true;
    // Each failure's delay as the service wrote it (check_failures counts them; next_check_at is a
    // lease while a test runs).
    const delays = new Map<number, number>();
    await waitFor(
      'five failures in a row',
      async () => {
        const doc = await collection('credentials').findOne({ _id: oid(credentialId) });
        if (doc?.connection_state === 'unreachable')
          delays.set(
            doc.check_failures as number,
            (doc.check_due_at as Date).getTime() - (doc.last_checked_at as Date).getTime(),
          );
        return delays.has(5) ? true : undefined;
      },
      60_000,
      20,
    );
    expect([...delays.keys()].sort()).toEqual([1, 2, 3, 4, 5]);
    for (const [failures, delay] of delays) {
      const expected = Math.min(INTERVAL_MS, (INTERVAL_MS / 10) * 2 ** (failures - 1));
      expect(delay).toBeGreaterThanOrEqual(expected * 0.9 - 1);
      expect(delay).toBeLessThanOrEqual(expected * 1.1 + 1);
    }
    const unreachable = await health(credentialId);
    expect(unreachable).toMatchObject({
      connectionState: 'UNREACHABLE',
      isConnected: false,
      connectionError: 'the exchange did not answer within 1 s',
    });
    expect(
      (await t.gql(UserWalletDocument, { id: walletId }, user.token)).data!.userWallet,
    ).toMatchObject({ status: 'ACTIVE', pauseReason: null });
    expect(await statusEvents(walletId)).toEqual([]);

    // Answering again: CONNECTED, back to the whole interval.
    options.hang = false;
    await healthWhen(
      credentialId,
      'a passing test again',
      (c) => c.connectionState === 'CONNECTED',
    );
    await expectDelay(credentialId, INTERVAL_MS);
    expect(
      (await collection('credentials').findOne({ _id: oid(credentialId) }))!.check_failures,
    ).toBe(0);
    await t.gql(DeleteUserWalletDocument, { id: walletId }, user.token);
  });
});

describe('how many tests at once', () => {
  let hanging: Server;
  let open = 0;
  let most = 0;
  let url: string;

  beforeAll(async () => {
    // An exchange that takes requests and never answers, counting those open at once.
    hanging = createServer((req) => {
      open += 1;
      most = Math.max(most, open);
      req.socket.once('close', () => (open -= 1));
    });
    await new Promise<void>((resolve) => hanging.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(hanging.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    hanging.closeAllConnections();
    await new Promise((resolve) => hanging.close(resolve));
  });

  it(`has at most CREDENTIAL_CHECK_CONCURRENCY (${CONCURRENCY}) tests in flight in one instance`, async () => {
    const definitionId = await binanceAt(url);
    const wallets: string[] = [];
    for (let i = 0; i < CONCURRENCY + 3; i++)
      wallets.push(await walletOn(await credentialOf(definitionId, newAccount())));
    await waitFor('tests in flight', () => (most >= CONCURRENCY ? true : undefined), SOON_MS);
    // Several rounds of timed-out tests later, never more at once.
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    expect(most).toBe(CONCURRENCY);
    await pauseAll(wallets);
  });

  it("re-tests with at most half of an exchange's rateLimit, leaves the rest to users' tests, and keeps the ones held back due", async () => {
    const accounts = Array.from({ length: 5 }, () => newAccount());
    const { simulator } = await exchange(accounts);
    // 4 requests a minute: re-tests get 2, one test of a mainnet key (its balance, then its
    // restrictions), or two tests' first requests when they start together (the service learns a
    // test's number of requests from the last one).
    const definitionId = await binanceAt(simulator.url, 4);
    const credentials: string[] = [];
    const wallets: string[] = [];
    for (const account of accounts.slice(0, 3)) {
      credentials.push(await credentialOf(definitionId, account));
      wallets.push(await walletOn(credentials.at(-1)!));
    }
    await waitFor(
      'a first test',
      () => (simulator.requests.length > 0 ? true : undefined),
      SOON_MS,
    );
    await new Promise((resolve) => setTimeout(resolve, 3 * INTERVAL_MS));
    expect(simulator.requests).toHaveLength(2);
    // Held back, not dropped: each is due, or due again when the exchange has room, within the
    // minute.
    const now = Date.now();
    for (const c of await Promise.all(credentials.map((id) => health(id))))
      expect(ms(c.nextCheckAt)).toBeLessThan(now + 65_000);

    // A user's test has the other half.
    const own = await credentialOf(definitionId, accounts[3]);
    const passed = await t.gql(TestCredentialConnectionDocument, { id: own }, user.token);
    expect(passed.data?.testCredentialConnection.ok).toBe(true);
    expect(simulator.requests).toHaveLength(4);
    // Then none is left: refused after waiting at most 2 s, nothing sent, nothing recorded.
    const last = await credentialOf(definitionId, accounts[4]);
    const started = Date.now();
    const refused = await t.gql(TestCredentialConnectionDocument, { id: last }, user.token);
    expect(Date.now() - started).toBeLessThan(2_000 + 1_000);
    expect(codes(refused)).toEqual(['RATE_LIMITED']);
    const retryAfter = (refused.errors![0].extensions as { retryAfterSeconds: number })
      .retryAfterSeconds;
    expect(retryAfter).toBeGreaterThan(2);
    expect(retryAfter).toBeLessThanOrEqual(64);
    expect(simulator.requests).toHaveLength(4);
    expect((await health(last)).lastCheckedAt).toBeNull();
    await pauseAll(wallets);
  });
});

describe('balance history', () => {
  it('shows the snapshots newest first to the owner and to agents, in one query for a list, and deletes them with the credential', async () => {
    const owner = await registerUser(t);
    const account = newAccount();
    const { simulator } = await exchange([account]);
    const definitionId = await binanceAt(simulator.url);
    const credentialIds: string[] = [];
    for (let i = 0; i < 3; i++)
      credentialIds.push(await credentialOf(definitionId, account, owner));
    const walletId = await walletOn(credentialIds[0], owner);
    const owned = (id: string, first?: number) =>
      t.gql(CredentialHealthDocument, { id, first }, owner.token);
    await waitFor(
      'three snapshots',
      async () =>
        (await owned(credentialIds[0], 500)).data!.credential.balanceHistory.length >= 3
          ? true
          : undefined,
      SOON_MS,
    );
    for (const id of credentialIds.slice(1)) {
      await t.gql(TestCredentialConnectionDocument, { id }, owner.token);
    }

    const history = (await owned(credentialIds[0], 2)).data!.credential.balanceHistory;
    expect(history).toHaveLength(2);
    expect(ms(history[0].at)).toBeGreaterThan(ms(history[1].at));
    expect(codes(await owned(credentialIds[0], 0))).toEqual(['BAD_USER_INPUT']);
    expect(codes(await owned(credentialIds[0], 501))).toEqual(['BAD_USER_INPUT']);
    expect((await owned(credentialIds[0], 501)).errors![0].extensions!.field).toBe('first');
    // Another user sees none of it.
    expect(
      codes(await t.gql(CredentialHealthDocument, { id: credentialIds[0] }, user.token)),
    ).toEqual(['FORBIDDEN']);

    // Agents, through the wallets they manage.
    const managed = (
      await t.gql(ManagedWalletCredentialsDocument, {}, agent)
    ).data!.managedWallets.edges.find((e) => e.node.id === walletId)!;
    expect(managed.node.credential.balanceHistory[0].balances).toEqual([
      { asset: 'BTC', total: 0.12345678 },
      { asset: 'USDT', total: 4331.5 },
    ]);

    // A list of credentials with their histories: one aggregation, however many credentials.
    const seen: string[] = [];
    const listener = (event: CommandStartedEvent) => {
      if (event.command.comment === undefined && event.commandName === 'aggregate')
        seen.push(String(event.command.aggregate));
    };
    mongoose.connection.getClient().on('commandStarted', listener);
    try {
      const listed = await t.gql(CredentialsBalanceHistoryDocument, { first: 10 }, owner.token);
      expect(listed.data!.credentials.map((c) => c.balanceHistory.length > 0)).toEqual([
        true,
        true,
        true,
      ]);
    } finally {
      mongoose.connection.getClient().off('commandStarted', listener);
    }
    expect(seen).toEqual(['credential_balances']);

    await t.gql(DeleteUserWalletDocument, { id: walletId }, owner.token);
    // A test in flight when the wallet went may still land: wait for the queue to be left.
    await waitFor('no test in flight', async () =>
      (await owned(credentialIds[0])).data!.credential.nextCheckAt === null ? true : undefined,
    );
    for (const id of credentialIds)
      expect(
        (await t.gql(DeleteCredentialDocument, { id }, owner.token)).data!.deleteCredential.deleted,
      ).toBe(true);
    expect(
      await collection('credential_balances').countDocuments({
        credential_id: { $in: credentialIds.map(oid) },
      }),
    ).toBe(0);
  });
});

describe('two instances on one database', () => {
  it('test each due credential exactly once per interval between them', async () => {
    const accounts = [newAccount(), newAccount(), newAccount(), newAccount()];
    const { simulator } = await exchange(accounts);
    const definitionId = await binanceAt(simulator.url);
    const other = await startInstance({
      ...sameDatabaseEnv(t),
      CREDENTIAL_CHECK_INTERVAL: `${INTERVAL_MS / 1000}s`,
      CREDENTIAL_CHECK_CONCURRENCY: String(CONCURRENCY),
      EXCHANGE_TIMEOUT_MS: '1000',
    });
    let exit: number | null;
    const wallets: string[] = [];
    const credentials: string[] = [];
    try {
      for (const account of accounts) {
        credentials.push(await credentialOf(definitionId, account));
        wallets.push(await walletOn(credentials.at(-1)!));
      }
      // Long enough for several intervals.
      await new Promise((resolve) => setTimeout(resolve, 5 * INTERVAL_MS));
      await pauseAll(wallets);
      // A test under way when the wallets were paused still finishes.
      await new Promise((resolve) => setTimeout(resolve, 1_500));
    } finally {
      await other.stop();
      exit = other.running.child.exitCode;
    }
    // SIGTERM stops it cleanly, its own tests included.
    expect(exit).toBe(0);

    const tested = (line: string, id: string) =>
      line.includes('connection tested') && line.includes(id) && line.includes('"by":"service"');
    for (const [i, account] of accounts.entries()) {
      const times = simulator.requests
        .filter(
          (r) =>
            r.path.startsWith('/api/v3/account') && r.headers['x-mbx-apikey'] === account.apiKey,
        )
        .map((r) => Number(new URL(r.path, 'http://simulator').searchParams.get('timestamp')));
      expect(times.length).toBeGreaterThanOrEqual(3);
      // Never twice within an interval (less its jitter), whichever instance tested.
      for (let k = 1; k < times.length; k++)
        expect(times[k] - times[k - 1]).toBeGreaterThanOrEqual(INTERVAL_MS * 0.9 - 50);
      // Every test the simulator saw is one an instance logged: none done twice, none unaccounted.
      const logged =
        t.logs.filter((line) => tested(line, credentials[i])).length +
        other.running.stdout.filter((line) => tested(line, credentials[i])).length;
      expect(logged).toBe(times.length);
    }
  });
});

describe('secrets and balances', () => {
  it('never appear in the log output of this suite', () => {
    const logs = t.logs.join('\n');
    for (const secret of secrets) expect(logs).not.toContain(secret);
    expect(logs).not.toContain('0.12345678');
    expect(logs).not.toContain('4321.5');
  });
});
