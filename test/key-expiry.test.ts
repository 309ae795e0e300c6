import { randomBytes } from 'node:crypto';
import { expect } from '@jest/globals';
import mongoose, { Types } from 'mongoose';
import {
  CreateCredentialDocument,
  CreateUserWalletDocument,
  DeleteUserWalletDocument,
  KeyExpiryDocument,
  TestKeyExpiryDocument,
  type CredentialValueInput,
} from './generated/graphql';
import { checkDueAt } from '../src/modules/credentials/credential-link';
import { startTestApp, TEST_ENCRYPTION_KEY, type TestApp } from './helpers/app';
import {
  adminToken,
  limits,
  registerUser,
  simulatedDefinition,
  type TestUser,
  pausedWallet,
} from './helpers/factories';
import { waitFor } from './helpers/processes';
import {
  startBinanceSimulator,
  type BinanceAccount,
  type BinanceSimulator,
} from './simulators/binance.simulator';
import {
  startHyperliquidSimulator,
  type HyperliquidAccount,
  type HyperliquidSimulator,
} from './simulators/hyperliquid.simulator';

/**
 * The end of a key's trading rights, as the exchange tells it (Binance's
 * tradingAuthorityExpirationTime, a Hyperliquid API wallet's validUntil in its account's
 * extraAgents), through the API against the exchange simulators. This file's app warns 10 days
 * ahead (KEY_EXPIRY_WARNING_DAYS=10, not the default 14) and re-tests every 30 s.
 */

const DAY_MS = 86_400_000;
const WARNING_DAYS = 10;
const INTERVAL_MS = 30_000;
/** A deadline for what should happen within a poll or two: generous, for a loaded machine. */
const SOON_MS = 20_000;

// The well-known test key of the Ethereum docs (an approved agent of HL_ACCOUNT below).
const HL_AGENT_KEY = '0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318';
const HL_AGENT_ADDRESS = '0x2c7536E3605D9C16a7a3D7b1898e529396a65c23';
const HL_ACCOUNT = `0x${'cd'.repeat(20)}`;

const warning = (at: number) =>
  `this key's trading rights end at ${new Date(at).toISOString()}: replace it before then, or trading on it stops`;
const expired = (at: number) =>
  `key expired: the exchange ended its trading rights at ${new Date(at).toISOString()}; create a new key`;

/** Every secret the file uses: none may come back in an answer or a log line. */
const secrets: string[] = [HL_AGENT_KEY];

let t: TestApp;
let admin: string;
let user: TestUser;
let binance: BinanceSimulator;
let binanceId: string;
let hyperliquid: HyperliquidSimulator;
let hyperliquidId: string;
const accounts: BinanceAccount[] = [];
const hlAccount: HyperliquidAccount = { address: HL_ACCOUNT, agents: [HL_AGENT_ADDRESS] };

/** A Binance key; the simulator reads it at each request, so a test may change its expiry. */
function binanceKey(tradingAuthorityExpirationTime?: number): BinanceAccount {
  const made = {
    apiKey: randomBytes(24).toString('hex'),
    secret: randomBytes(32).toString('hex'),
    tradingAuthorityExpirationTime,
  };
  secrets.push(made.apiKey, made.secret);
  accounts.push(made);
  return made;
}

beforeAll(async () => {
  binance = await startBinanceSimulator({ accounts });
  hyperliquid = await startHyperliquidSimulator({ accounts: [hlAccount] });
  t = await startTestApp({
    KEY_EXPIRY_WARNING_DAYS: String(WARNING_DAYS),
    CREDENTIAL_CHECK_INTERVAL: `${INTERVAL_MS / 1000}s`,
    EXCHANGE_TIMEOUT_MS: '2000',
  });
  admin = await adminToken(t);
  user = await registerUser(t);
  binanceId = await definition('binance', binance.url);
  hyperliquidId = await definition('hyperliquid', hyperliquid.url, [
    { key: 'private_key', label: 'Private key', type: 'PASSWORD', required: true, encrypted: true },
    { key: 'wallet_address', label: 'Wallet', type: 'STRING', required: true, encrypted: false },
  ]);
});

afterAll(async () => {
  await t.close();
  await Promise.all([binance.close(), hyperliquid.close()]);
});

const definition = (
  ccxtId: string,
  url: string,
  authFields?: Parameters<typeof simulatedDefinition>[4],
) => simulatedDefinition(t, admin, ccxtId, url, authFields);

async function credential(walletId: string, values: CredentialValueInput[]): Promise<string> {
  const result = await t.gql(
    CreateCredentialDocument,
    { input: { walletId, name: 'Key', environment: 'MAINNET', values } },
    user.token,
  );
  if (!result.data) throw new Error(`createCredential failed: ${JSON.stringify(result.errors)}`);
  return result.data.createCredential.id;
}

const binanceCredential = (key: BinanceAccount) =>
  credential(binanceId, [
    { key: 'api_key', value: key.apiKey },
    { key: 'api_secret', value: key.secret },
  ]);

const hyperliquidCredential = () =>
  credential(hyperliquidId, [
    { key: 'private_key', value: HL_AGENT_KEY },
    { key: 'wallet_address', value: HL_ACCOUNT },
  ]);

async function testConnection(id: string) {
  const answer = await t.gql(TestKeyExpiryDocument, { id }, user.token);
  expect(answer.errors).toBeUndefined();
  expectNoSecret(answer);
  return answer.data!.testCredentialConnection;
}

async function stored(id: string) {
  const answer = await t.gql(KeyExpiryDocument, { id }, user.token);
  expect(answer.errors).toBeUndefined();
  return answer.data!.credential;
}

function expectNoSecret(answer: unknown): void {
  const text = JSON.stringify(answer);
  for (const secret of secrets) expect(text).not.toContain(secret);
}

/**
 * The connection tests allow one per credential per 10 s: tests that test twice reset the clock.
 */
const allowAnotherTest = (id: string) =>
  mongoose.connection
    .db!.collection('credentials')
    .updateOne({ _id: new Types.ObjectId(id) }, { $set: { last_test_at: null } });

const iso = (at: number) => new Date(at).toISOString();

/** The gauge as GET /metrics shows it (the test app is scraped from loopback). */
async function expiringSoon(): Promise<number> {
  const text = await (await fetch(`${t.url}/metrics`)).text();
  const line = /^wallet_credentials_expiring_soon\{environment="mainnet"\} (\d+)$/m.exec(text);
  if (!line) throw new Error('wallet_credentials_expiring_soon is not in /metrics');
  return Number(line[1]);
}

describe("Binance's tradingAuthorityExpirationTime", () => {
  it('shows a far expiry in the permissions and as keyExpiresAt, with no warning', async () => {
    const at = Date.now() + 100 * DAY_MS;
    const id = await binanceCredential(binanceKey(at));
    expect(await testConnection(id)).toEqual({
      ok: true,
      error: null,
      warnings: [],
      permissions: { trade: true, withdraw: false, tradingExpiresAt: iso(at) },
      credential: {
        id,
        connectionState: 'CONNECTED',
        connectionError: null,
        keyExpiresAt: iso(at),
        permissions: { tradingExpiresAt: iso(at) },
      },
    });
  });

  it('passes a key ending within KEY_EXPIRY_WARNING_DAYS with a warning naming the date, and not one ending just after', async () => {
    const soon = Date.now() + 3 * DAY_MS;
    const soonId = await binanceCredential(binanceKey(soon));
    expect(await testConnection(soonId)).toMatchObject({
      ok: true,
      warnings: [warning(soon)],
      credential: { connectionState: 'CONNECTED', keyExpiresAt: iso(soon) },
    });
    // 12 days: inside the default 14, outside this app's 10.
    const later = Date.now() + (WARNING_DAYS + 2) * DAY_MS;
    const laterId = await binanceCredential(binanceKey(later));
    expect(await testConnection(laterId)).toMatchObject({
      ok: true,
      warnings: [],
      credential: { keyExpiresAt: iso(later) },
    });
  });

  it('refuses a key whose trading rights have ended: REJECTED with "key expired", the date still shown', async () => {
    const at = Date.now() - 60_000;
    const id = await binanceCredential(binanceKey(at));
    expect(await testConnection(id)).toEqual({
      ok: false,
      error: expired(at),
      warnings: [],
      permissions: { trade: true, withdraw: false, tradingExpiresAt: iso(at) },
      credential: {
        id,
        connectionState: 'REJECTED',
        connectionError: expired(at),
        keyExpiresAt: iso(at),
        // What the last passing test found: none passed.
        permissions: null,
      },
    });
  });

  it('clears keyExpiresAt when a later test reports no end', async () => {
    const key = binanceKey(Date.now() + 5 * DAY_MS);
    const id = await binanceCredential(key);
    expect((await testConnection(id)).credential.keyExpiresAt).toBe(
      iso(key.tradingAuthorityExpirationTime!),
    );
    key.tradingAuthorityExpirationTime = undefined;
    await allowAnotherTest(id);
    expect(await testConnection(id)).toMatchObject({
      ok: true,
      warnings: [],
      permissions: { tradingExpiresAt: null },
      credential: { keyExpiresAt: null, permissions: { tradingExpiresAt: null } },
    });
    expect((await stored(id)).keyExpiresAt).toBeNull();
  });
});

describe("a Hyperliquid API wallet's validUntil", () => {
  const validUntil = (at: number) => {
    hlAccount.agentsValidUntil = { [HL_AGENT_ADDRESS]: at };
  };

  it('is read from the extraAgents of the account it signs for: far away, shown with no warning', async () => {
    const at = Date.now() + 80 * DAY_MS;
    validUntil(at);
    const id = await hyperliquidCredential();
    const seen = hyperliquid.requests.length;
    expect(await testConnection(id)).toMatchObject({
      ok: true,
      warnings: [],
      permissions: { trade: true, withdraw: false, tradingExpiresAt: iso(at) },
      credential: { connectionState: 'CONNECTED', keyExpiresAt: iso(at) },
    });
    expect(hyperliquid.requests.slice(seen).map((r) => r.body)).toContainEqual({
      type: 'extraAgents',
      user: HL_ACCOUNT,
    });
  });

  it('warns within KEY_EXPIRY_WARNING_DAYS, naming the date', async () => {
    const at = Date.now() + 2 * DAY_MS;
    validUntil(at);
    expect(await testConnection(await hyperliquidCredential())).toMatchObject({
      ok: true,
      warnings: [warning(at)],
      credential: { keyExpiresAt: iso(at) },
    });
  });

  it('refuses an expired API wallet as REJECTED "key expired", without signing anything with it', async () => {
    const at = Date.now() - 1_000;
    validUntil(at);
    const id = await hyperliquidCredential();
    const signers = hyperliquid.signers.length;
    expect(await testConnection(id)).toMatchObject({
      ok: false,
      error: expired(at),
      permissions: { tradingExpiresAt: iso(at) },
      credential: { connectionState: 'REJECTED', keyExpiresAt: iso(at) },
    });
    expect(hyperliquid.signers.length).toBe(signers);
  });
});

describe('the re-test schedule', () => {
  it("re-tests a live wallet's key when it expires, well before the interval, and pauses the wallet with the reason", async () => {
    // Ahead by more than a poll (a tenth of the interval) and the first test, far less than the
    // interval.
    const at = Date.now() + 8_000;
    const id = await binanceCredential(binanceKey(at));
    const created = await t.gql(
      CreateUserWalletDocument,
      { input: { credentialId: id, name: 'Expiring', userLimits: limits() } },
      user.token,
    );
    const walletId = created.data!.createUserWallet.id;
    const first = await waitFor(
      'a first passing test',
      async () => {
        const current = await stored(id);
        return current.connectionState === 'CONNECTED' ? current : undefined;
      },
      SOON_MS,
      50,
    );
    expect(first.keyExpiresAt).toBe(iso(at));
    // At the expiry; at once if the key ended while that test ran (a slow machine).
    const firstAt = Date.parse(first.lastCheckedAt!);
    expect(first.nextCheckAt).toBe(iso(Math.max(at, firstAt)));

    const refused = await waitFor(
      'the service to find the key expired',
      async () => {
        const current = await stored(id);
        return current.connectionState === 'REJECTED' ? current : undefined;
      },
      SOON_MS,
      50,
    );
    expect(refused.connectionError).toBe(expired(at));
    // The interval's own test would have come 27 s or more after the first.
    expect(Date.parse(refused.lastCheckedAt!)).toBeLessThan(firstAt + INTERVAL_MS * 0.9);
    const wallet = await pausedWallet(t, user, walletId, SOON_MS);
    expect(wallet).toMatchObject({
      status: 'AI_PAUSED',
      pauseReason: `the exchange refused this wallet's credential: ${expired(at)}`,
    });
    await t.gql(DeleteUserWalletDocument, { id: walletId }, user.token);
  });

  it('leaves a credential with no live wallet out of the queue: its date is shown, and its next test rejects it', async () => {
    const at = Date.now() + 1_500;
    const id = await binanceCredential(binanceKey(at));
    expect(await testConnection(id)).toMatchObject({
      ok: true,
      credential: { connectionState: 'CONNECTED', keyExpiresAt: iso(at) },
    });
    await new Promise((resolve) => setTimeout(resolve, at - Date.now() + 100));
    expect(await stored(id)).toMatchObject({
      connectionState: 'CONNECTED',
      nextCheckAt: null,
      keyExpiresAt: iso(at),
    });
    await allowAnotherTest(id);
    expect(await testConnection(id)).toMatchObject({
      ok: false,
      error: expired(at),
      credential: { connectionState: 'REJECTED', keyExpiresAt: iso(at) },
    });
  });
});

describe('checkDueAt', () => {
  const testedAt = new Date('2026-12-06T12:00:00.000Z');
  const after = (ms: number) => new Date(testedAt.getTime() + ms);

  it('is the interval after the test, or the expiry when that comes first', () => {
    expect(checkDueAt(testedAt, INTERVAL_MS, null, true)).toEqual(after(INTERVAL_MS));
    expect(checkDueAt(testedAt, INTERVAL_MS, after(2 * INTERVAL_MS), true)).toEqual(
      after(INTERVAL_MS),
    );
    expect(checkDueAt(testedAt, INTERVAL_MS, after(5_000), true)).toEqual(after(5_000));
    expect(checkDueAt(testedAt, INTERVAL_MS, after(5_000), false)).toEqual(after(5_000));
  });

  it('is at once after a passing test during which the key ended, the interval after a refusal for it', () => {
    expect(checkDueAt(testedAt, INTERVAL_MS, after(-300), true)).toEqual(testedAt);
    expect(checkDueAt(testedAt, INTERVAL_MS, testedAt, true)).toEqual(testedAt);
    expect(checkDueAt(testedAt, INTERVAL_MS, after(-300), false)).toEqual(after(INTERVAL_MS));
  });
});

describe('wallet_credentials_expiring_soon', () => {
  it('counts the credentials whose keys end within KEY_EXPIRY_WARNING_DAYS, not the far or the ended ones', async () => {
    const before = await expiringSoon();
    await testConnection(await binanceCredential(binanceKey(Date.now() + 4 * DAY_MS)));
    await testConnection(await binanceCredential(binanceKey(Date.now() + 40 * DAY_MS)));
    await testConnection(await binanceCredential(binanceKey(Date.now() - DAY_MS)));
    expect(await expiringSoon()).toBe(before + 1);

    const key = binanceKey(Date.now() + DAY_MS);
    const id = await binanceCredential(key);
    await testConnection(id);
    expect(await expiringSoon()).toBe(before + 2);
    key.tradingAuthorityExpirationTime = undefined;
    await allowAnotherTest(id);
    await testConnection(id);
    expect(await expiringSoon()).toBe(before + 1);
  });
});

describe('secrets', () => {
  it('never appear in the log output', () => {
    const logs = t.logs.join('\n');
    expect(logs).toMatch(/connection tested/);
    for (const secret of secrets) expect(logs).not.toContain(secret);
    expect(logs).not.toContain(TEST_ENCRYPTION_KEY);
  });
});
