import { randomBytes } from 'node:crypto';
import { expect } from '@jest/globals';
import {
  CreateCredentialDocument,
  CredentialHealthDocument,
  PauseUserWalletDocument,
  TestCredentialConnectionDocument,
} from './generated/graphql';
import { commandsFor } from './helpers/commands';
import {
  codes,
  gqlAt,
  sameDatabaseEnv,
  startTestApp,
  type GqlResult,
  type TestApp,
} from './helpers/app';
import {
  adminToken,
  registerUser,
  simulatedDefinition,
  userWallet,
  type TestUser,
} from './helpers/factories';
import { startInstance, waitFor } from './helpers/processes';
import {
  startBinanceSimulator,
  type BinanceAccount,
  type BinanceSimulator,
} from './simulators/binance.simulator';
import type { RecordedRequest } from './simulators/recording-server';

/**
 * The catalog's rate limit, held across instances: three instances on one database (this file's
 * app and two processes) test keys on one exchange simulator, users' tests and the service's
 * re-tests together, for longer than a minute; the simulator records when each request arrived.
 * Every connection test of a mainnet Binance key sends two requests (its balance, its
 * restrictions); for some keys the exchange takes 3 or 5 s over the balance, so the second request goes
 * later than the test's slots were first held for.
 */

const WINDOW_MS = 60_000;
const INTERVAL = '2s';
/** Keys whose balance the exchange takes this long to answer: their second request goes late. */
const SLOW_MS = 3_000;
const slowKeys = new Map<string, number>();

let t: TestApp;
let admin: string;
let binance: BinanceSimulator;
const accounts: BinanceAccount[] = [];
const others: Array<Awaited<ReturnType<typeof startInstance>>> = [];
/** The three instances' URLs, this file's app first. */
let urls: string[];

function account(slowMs = 0): BinanceAccount {
  const made = { apiKey: randomBytes(24).toString('hex'), secret: randomBytes(32).toString('hex') };
  accounts.push(made);
  if (slowMs > 0) slowKeys.set(made.apiKey, slowMs);
  return made;
}

beforeAll(async () => {
  binance = await startBinanceSimulator({
    accounts,
    delayMs: (request) =>
      request.path.startsWith('/api/v3/account')
        ? (slowKeys.get(keyOf(request) as string) ?? 0)
        : 0,
  });
  t = await startTestApp({
    CREDENTIAL_CHECK_INTERVAL: INTERVAL,
    MAX_CREDENTIALS_PER_USER: '100',
    MAX_WALLETS_PER_USER: '100',
  });
  admin = await adminToken(t);
  others.push(
    ...(await Promise.all([
      startInstance({ ...sameDatabaseEnv(t), CREDENTIAL_CHECK_INTERVAL: INTERVAL }),
      startInstance({ ...sameDatabaseEnv(t), CREDENTIAL_CHECK_INTERVAL: INTERVAL }),
    ])),
  );
  urls = [t.url, ...others.map((o) => o.url)];
});

afterAll(async () => {
  await Promise.all(others.map((o) => o.stop()));
  await t.close();
  await binance.close();
});

const exchangeWithLimit = (rateLimit: number) =>
  simulatedDefinition(t, admin, 'binance', binance.url, undefined, rateLimit);

async function credentialOf(user: TestUser, definitionId: string, key: BinanceAccount) {
  const result = await t.gql(
    CreateCredentialDocument,
    {
      input: {
        walletId: definitionId,
        name: 'Key',
        environment: 'MAINNET',
        values: [
          { key: 'api_key', value: key.apiKey },
          { key: 'api_secret', value: key.secret },
        ],
      },
    },
    user.token,
  );
  if (!result.data) throw new Error(`createCredential failed: ${JSON.stringify(result.errors)}`);
  return result.data.createCredential.id;
}

/** A key of `user`'s and a live wallet on it: the service re-tests it. */
async function liveOn(user: TestUser, definitionId: string, key: BinanceAccount) {
  const credentialId = await credentialOf(user, definitionId, key);
  return { credentialId, walletId: (await userWallet(t, user, credentialId)).id };
}

const keyOf = (request: RecordedRequest) => request.headers['x-mbx-apikey'];

/** The most requests any 60 s window holds (closed at both ends). */
function busiestWindow(times: number[]): number {
  const sorted = [...times].sort((a, b) => a - b);
  let most = 0;
  for (let i = 0, j = 0; j < sorted.length; j++) {
    while (sorted[j] - sorted[i] > WINDOW_MS) i++;
    most = Math.max(most, j - i + 1);
  }
  return most;
}

type Answer = GqlResult<{ testCredentialConnection: { ok: boolean } }>;

describe("the catalog's rate limit across three instances", () => {
  it('never lets a 60 s window hold more than the limit, re-tests at most half of it, users the rest', async () => {
    const LIMIT = 12;
    const definitionId = await exchangeWithLimit(LIMIT);
    const owner = await registerUser(t);
    const user = await registerUser(t);

    // Four live wallets, re-tested every 2 s by whichever instance claims them first; one of them
    // answered slowly.
    const retested = [account(SLOW_MS), account(), account(), account()];
    for (const key of retested) await liveOn(owner, definitionId, key);

    // Users' tests through all three instances, in rounds across more than a minute and across the
    // point where a fixed window would open again.
    const answers: Array<{ answer: Answer; tookMs: number }> = [];
    const started = Date.now();
    for (const at of [0, 20_000, 45_000, 59_000, 62_000, 75_000]) {
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, started + at - Date.now())));
      const round = await Promise.all(
        urls.flatMap((url) =>
          [0, SLOW_MS].map(async (slowMs) => {
            const id = await credentialOf(user, definitionId, account(slowMs));
            const sent = Date.now();
            const answer = await gqlAt(url, TestCredentialConnectionDocument, { id }, user.token);
            return { answer: answer, tookMs: Date.now() - sent };
          }),
        ),
      );
      answers.push(...round);
    }

    const requests = binance.requests.filter((r) => accounts.some((a) => a.apiKey === keyOf(r)));
    const retestKeys = new Set(retested.map((k) => k.apiKey));
    const retests = requests.filter((r) => retestKeys.has(keyOf(r) as string));
    expect(busiestWindow(requests.map((r) => r.at))).toBeLessThanOrEqual(LIMIT);
    expect(busiestWindow(retests.map((r) => r.at))).toBeLessThanOrEqual(LIMIT / 2);
    // The budget was used across more than one window: more requests than one window allows.
    expect(requests.length).toBeGreaterThan(LIMIT);
    expect(retests.length).toBeGreaterThan(0);

    // Users' tests passed while there was room, and were refused quickly, with when to come back.
    const passed = answers.filter((a) => a.answer.data?.testCredentialConnection.ok === true);
    const refused = answers.filter(
      (a) => a.answer.errors?.[0]?.extensions?.code === 'RATE_LIMITED',
    );
    expect(passed.length).toBeGreaterThan(0);
    expect(refused.length).toBeGreaterThan(0);
    expect(passed.length + refused.length).toBe(answers.length);
    for (const { answer, tookMs } of refused) {
      const retryAfter = (answer.errors![0].extensions as { retryAfterSeconds?: number })
        .retryAfterSeconds;
      expect(retryAfter).toBeGreaterThanOrEqual(1);
      expect(retryAfter).toBeLessThanOrEqual(64);
      // The 2 s wait, and a slow key's balance when its restrictions were held back, with room for
      // a loaded machine: a refusal that waited for a slot to free would take up to a minute.
      expect(tookMs).toBeLessThan(2_000 + SLOW_MS + 10_000);
    }
  }, 150_000);

  it("holds a slot anew when its request goes later than the test's wait (a slow answer before it)", async () => {
    const definitionId = await exchangeWithLimit(4);
    const user = await registerUser(t);
    const test = async (key: BinanceAccount) => {
      const id = await credentialOf(user, definitionId, key);
      return t.gql(TestCredentialConnectionDocument, { id }, user.token);
    };
    const keys = [account(), account(5_000), account(), account()];
    const started = Date.now();
    // Two slots; the instance learns that a test sends two requests.
    expect((await test(keys[0])).data?.testCredentialConnection.ok).toBe(true);
    // The other two, taken before the test starts; its second request goes 5 s later.
    expect((await test(keys[1])).data?.testCredentialConnection.ok).toBe(true);
    // As the first three slots free: held only from the test's start, the slow test's second slot
    // would carry another request 58 s after its own, and two tests now would put four requests in
    // that minute. Held anew, it is not free yet: one test at most goes.
    await new Promise((resolve) => setTimeout(resolve, started + 62_500 - Date.now()));
    const later = await Promise.all([test(keys[2]), test(keys[3])]);
    expect(
      later.filter((answer) => answer.data?.testCredentialConnection.ok).length,
    ).toBeLessThanOrEqual(1);
    expect(later.filter((answer) => codes(answer)[0] === 'RATE_LIMITED').length).toBeGreaterThan(0);

    const mine = new Set(keys.map((k) => k.apiKey));
    const requests = binance.requests.filter((r) => mine.has(keyOf(r) as string));
    expect(busiestWindow(requests.map((r) => r.at))).toBeLessThanOrEqual(4);
  }, 120_000);

  it('tests a re-test held back for want of budget once the exchange has room: none is dropped', async () => {
    // 4 a minute: re-tests get 2, one test of a mainnet key.
    const definitionId = await exchangeWithLimit(4);
    const owner = await registerUser(t);
    const keys = [account(), account()];
    const lastChecked = async (id: string) =>
      (await t.gql(CredentialHealthDocument, { id }, owner.token)).data!.credential.lastCheckedAt;
    const tested = (id: string, within: number) =>
      waitFor(
        'the key tested',
        async () => {
          const at = await lastChecked(id);
          return at === null ? undefined : Date.parse(at);
        },
        within,
        500,
      );
    // The first key's test takes the re-tests' half, and its wallet is paused (out of the queue,
    // so it doesn't compete again); the second, due at once, is held back (it sends nothing), due
    // again when the half frees: a minute after the first.
    const one = await liveOn(owner, definitionId, keys[0]);
    const first = await tested(one.credentialId, 20_000);
    expect(
      (await t.gql(PauseUserWalletDocument, { id: one.walletId }, owner.token)).errors,
    ).toBeUndefined();
    const second = await tested((await liveOn(owner, definitionId, keys[1])).credentialId, 80_000);
    expect(second - first).toBeGreaterThanOrEqual(WINDOW_MS - 2_000);
    const mine = new Set(keys.map((k) => k.apiKey));
    const requests = binance.requests.filter((r) => mine.has(keyOf(r) as string));
    expect(requests).toHaveLength(4);
    expect(busiestWindow(requests.map((r) => r.at))).toBeLessThanOrEqual(2);
  }, 120_000);

  it('costs one database command per request to the exchange', async () => {
    const definitionId = await exchangeWithLimit(600);
    const user = await registerUser(t);
    // The first test of an exchange makes its slots, and tells the instance a test's requests.
    const first = await credentialOf(user, definitionId, account());
    expect(
      (await t.gql(TestCredentialConnectionDocument, { id: first }, user.token)).data
        ?.testCredentialConnection.ok,
    ).toBe(true);

    const id = await credentialOf(user, definitionId, account());
    const before = binance.requests.length;
    const commands = await commandsFor(async () => {
      const answer = await t.gql(TestCredentialConnectionDocument, { id }, user.token);
      expect(answer.data?.testCredentialConnection.ok).toBe(true);
    });
    const sent = binance.requests.length - before;
    expect(sent).toBe(2);
    expect(commands.filter((c) => c.endsWith(' exchange_budget_slots'))).toEqual([
      'findAndModify exchange_budget_slots',
      'findAndModify exchange_budget_slots',
    ]);
  });
});
