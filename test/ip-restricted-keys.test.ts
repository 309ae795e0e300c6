import { randomBytes } from 'node:crypto';
import { expect } from '@jest/globals';
import {
  CreateCredentialDocument,
  CreateUserWalletDocument,
  CredentialHealthDocument,
  DeleteUserWalletDocument,
  EgressAddressesDocument,
  TestCredentialConnectionDocument,
  type CredentialValueInput,
} from './generated/graphql';
import {
  gqlAt,
  sameDatabaseEnv,
  startTestApp,
  TEST_ENCRYPTION_KEY,
  type TestApp,
} from './helpers/app';
import {
  adminToken,
  limits,
  registerUser,
  simulatedDefinition,
  type TestUser,
  pausedWallet,
} from './helpers/factories';
import { startInstance, waitFor } from './helpers/processes';
import {
  startBinanceSimulator,
  type BinanceAccount,
  type BinanceSimulator,
} from './simulators/binance.simulator';
import {
  startHyperliquidSimulator,
  type HyperliquidSimulator,
} from './simulators/hyperliquid.simulator';
import { startOkxSimulator } from './simulators/okx.simulator';
import type { Simulator } from './simulators/recording-server';

/**
 * EGRESS_IPS and REQUIRE_IP_RESTRICTED_KEYS through the API, against the exchange simulators: this
 * file's app requires keys bound to IPs and names two addresses; a second instance on the same
 * database names them without the requirement, a third is configured with neither.
 */

const EGRESS_IPS = '203.0.113.10, 2001:DB8::10';
const WHITELIST = 'whitelist 203.0.113.10, 2001:db8::10 on the key';
const NOT_RESTRICTED = 'this API key is not restricted to trusted IP addresses';
const REFUSED = `this API key can trade and is not restricted to trusted IP addresses, which this service requires: ${WHITELIST}`;
const INTERVAL_MS = 2_000;
/** A deadline for what should happen within an interval or two: generous, for a loaded machine. */
const SOON_MS = 20_000;

// The well-known test key of the Ethereum docs (an approved agent of HL_ACCOUNT below).
const HL_AGENT_KEY = '0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318';
const HL_AGENT_ADDRESS = '0x2c7536E3605D9C16a7a3D7b1898e529396a65c23';
const HL_ACCOUNT = `0x${'ab'.repeat(20)}`;
const OKX_DEMO = {
  apiKey: randomBytes(18).toString('hex'),
  secret: randomBytes(16).toString('hex'),
  passphrase: `demo ${randomBytes(8).toString('hex')}`,
};

/** Every secret the file uses: none may come back in an answer or a log line. */
const secrets: string[] = [HL_AGENT_KEY, OKX_DEMO.apiKey, OKX_DEMO.secret, OKX_DEMO.passphrase];

let t: TestApp;
let admin: string;
let user: TestUser;
let binance: BinanceSimulator;
let binanceId: string;
let hyperliquid: HyperliquidSimulator;
let hyperliquidId: string;
let okx: Simulator;
let okxId: string;
/** EGRESS_IPS without REQUIRE_IP_RESTRICTED_KEYS. */
let namingOnly: Awaited<ReturnType<typeof startInstance>>;
/** Neither setting. */
let unconfigured: Awaited<ReturnType<typeof startInstance>>;
const accounts: BinanceAccount[] = [];

function account(ipRestrict: boolean): BinanceAccount {
  const made = {
    apiKey: randomBytes(24).toString('hex'),
    secret: randomBytes(32).toString('hex'),
    ipRestrict,
  };
  secrets.push(made.apiKey, made.secret);
  accounts.push(made);
  return made;
}

const OPEN = account(false);
const BOUND = account(true);

beforeAll(async () => {
  // The simulator reads its accounts as they are at each request: a test may change one.
  binance = await startBinanceSimulator({ accounts });
  hyperliquid = await startHyperliquidSimulator({
    accounts: [{ address: HL_ACCOUNT, agents: [HL_AGENT_ADDRESS] }],
  });
  okx = await startOkxSimulator({ accounts: [{ ...OKX_DEMO, demo: true }] });
  t = await startTestApp({
    EGRESS_IPS,
    REQUIRE_IP_RESTRICTED_KEYS: 'true',
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
  okxId = await definition('okx', okx.url, [
    { key: 'api_key', label: 'API Key', type: 'STRING', required: true, encrypted: false },
    { key: 'api_secret', label: 'Secret', type: 'PASSWORD', required: true, encrypted: true },
    { key: 'passphrase', label: 'Passphrase', type: 'PASSWORD', required: true, encrypted: true },
  ]);
  [namingOnly, unconfigured] = await Promise.all([
    startInstance({ ...sameDatabaseEnv(t), EGRESS_IPS }),
    startInstance(sameDatabaseEnv(t)),
  ]);
});

afterAll(async () => {
  await Promise.all([namingOnly?.stop(), unconfigured?.stop()]);
  await t.close();
  await Promise.all([binance.close(), hyperliquid.close(), okx.close()]);
});

const definition = (
  ccxtId: string,
  url: string,
  authFields?: Parameters<typeof simulatedDefinition>[4],
) => simulatedDefinition(t, admin, ccxtId, url, authFields);

async function credential(
  walletId: string,
  values: CredentialValueInput[],
  environment: 'MAINNET' | 'TESTNET' = 'MAINNET',
): Promise<string> {
  const result = await t.gql(
    CreateCredentialDocument,
    { input: { walletId, name: 'Key', environment, values } },
    user.token,
  );
  if (!result.data) throw new Error(`createCredential failed: ${JSON.stringify(result.errors)}`);
  return result.data.createCredential.id;
}

const binanceValues = (key: BinanceAccount): CredentialValueInput[] => [
  { key: 'api_key', value: key.apiKey },
  { key: 'api_secret', value: key.secret },
];

function expectNoSecret(answer: unknown): void {
  const text = JSON.stringify(answer);
  for (const secret of secrets) expect(text).not.toContain(secret);
}

describe('egressAddresses', () => {
  it('is public: the configured addresses, canonical, in their order', async () => {
    const anonymous = await t.gql(EgressAddressesDocument, {});
    expect(anonymous.errors).toBeUndefined();
    expect(anonymous.data).toEqual({ egressAddresses: ['203.0.113.10', '2001:db8::10'] });
    expect((await t.gql(EgressAddressesDocument, {}, user.token)).data).toEqual(anonymous.data);
  });

  it('is empty when EGRESS_IPS is not configured', async () => {
    const answer = await gqlAt(unconfigured.url, EgressAddressesDocument, {});
    expect(answer.errors).toBeUndefined();
    expect(answer.data).toEqual({ egressAddresses: [] });
  });
});

describe('the warning for a key bound to no IP', () => {
  it('names the addresses to whitelist when EGRESS_IPS is configured, and is as before when not', async () => {
    for (const [instance, warning] of [
      [namingOnly, `${NOT_RESTRICTED}: ${WHITELIST}`],
      [unconfigured, NOT_RESTRICTED],
    ] as const) {
      const id = await credential(binanceId, binanceValues(OPEN));
      const answer = await gqlAt(
        instance.url,
        TestCredentialConnectionDocument,
        { id },
        user.token,
      );
      expect(answer.errors).toBeUndefined();
      expect(answer.data!.testCredentialConnection).toMatchObject({
        ok: true,
        error: null,
        warnings: [warning],
        permissions: { trade: true, ipRestricted: false },
        credential: { connectionState: 'CONNECTED' },
      });
      expectNoSecret(answer);
    }
  });
});

describe('REQUIRE_IP_RESTRICTED_KEYS', () => {
  it('refuses a mainnet key that can trade and is bound to no IP: REJECTED with the reason, nothing of the key in the answer', async () => {
    const id = await credential(binanceId, binanceValues(OPEN));
    const answer = await t.gql(TestCredentialConnectionDocument, { id }, user.token);
    expect(answer.errors).toBeUndefined();
    expect(answer.data!.testCredentialConnection).toMatchObject({
      ok: false,
      error: REFUSED,
      warnings: [],
      balances: [],
      permissions: { trade: true, ipRestricted: false },
      credential: {
        isConnected: false,
        connectionState: 'REJECTED',
        connectionError: REFUSED,
      },
    });
    expectNoSecret(answer);
  });

  it('passes a key bound to IPs', async () => {
    const id = await credential(binanceId, binanceValues(BOUND));
    expect(
      (await t.gql(TestCredentialConnectionDocument, { id }, user.token)).data!
        .testCredentialConnection,
    ).toMatchObject({
      ok: true,
      warnings: [],
      permissions: { trade: true, ipRestricted: true },
      credential: { connectionState: 'CONNECTED' },
    });
  });

  it("passes a key whose exchange does not tell (a Hyperliquid API wallet's), with a warning that it could not be checked", async () => {
    const id = await credential(hyperliquidId, [
      { key: 'private_key', value: HL_AGENT_KEY },
      { key: 'wallet_address', value: HL_ACCOUNT },
    ]);
    const answer = await t.gql(TestCredentialConnectionDocument, { id }, user.token);
    expect(answer.data!.testCredentialConnection).toMatchObject({
      ok: true,
      warnings: [
        'this exchange does not say whether the key is restricted to trusted IP addresses: IP binding could not be checked',
      ],
      permissions: { trade: true, ipRestricted: null },
      credential: { connectionState: 'CONNECTED' },
    });
    expectNoSecret(answer);
  });

  it('does not refuse a testnet key bound to no IP', async () => {
    const id = await credential(
      okxId,
      [
        { key: 'api_key', value: OKX_DEMO.apiKey },
        { key: 'api_secret', value: OKX_DEMO.secret },
        { key: 'passphrase', value: OKX_DEMO.passphrase },
      ],
      'TESTNET',
    );
    const answer = await t.gql(TestCredentialConnectionDocument, { id }, user.token);
    expect(answer.data!.testCredentialConnection).toMatchObject({
      ok: true,
      warnings: [],
      permissions: { trade: true, ipRestricted: false },
      credential: { connectionState: 'CONNECTED', environment: 'TESTNET' },
    });
    expectNoSecret(answer);
  });

  it("makes a live wallet's key REJECTED at the service's own re-test once it is bound to no IP, and pauses the wallet with the reason", async () => {
    const key = account(true);
    const id = await credential(binanceId, binanceValues(key));
    const created = await t.gql(
      CreateUserWalletDocument,
      { input: { credentialId: id, name: 'Trading', userLimits: limits() } },
      user.token,
    );
    const walletId = created.data!.createUserWallet.id;
    const health = async () =>
      (await t.gql(CredentialHealthDocument, { id }, user.token)).data!.credential;
    await waitFor(
      'a first passing test',
      async () => ((await health()).connectionState === 'CONNECTED' ? true : undefined),
      SOON_MS,
      50,
    );

    key.ipRestrict = false;
    const refused = await waitFor(
      'the service to find the key bound to no IP',
      async () => {
        const current = await health();
        return current.connectionState === 'REJECTED' ? current : undefined;
      },
      SOON_MS,
      50,
    );
    expect(refused.connectionError).toBe(REFUSED);
    const wallet = await pausedWallet(t, user, walletId, SOON_MS);
    expect(wallet).toMatchObject({
      status: 'AI_PAUSED',
      pauseReason: `the exchange refused this wallet's credential: ${REFUSED}`,
    });
    await t.gql(DeleteUserWalletDocument, { id: walletId }, user.token);
  });

  it('is off by default: the same key passes on an instance without it', async () => {
    const id = await credential(binanceId, binanceValues(OPEN));
    const answer = await gqlAt(
      unconfigured.url,
      TestCredentialConnectionDocument,
      { id },
      user.token,
    );
    expect(answer.data!.testCredentialConnection).toMatchObject({
      ok: true,
      warnings: [NOT_RESTRICTED],
    });
  });
});

describe('secrets', () => {
  it('never appear in the log output of the instances', () => {
    const logs = [
      ...t.logs,
      ...namingOnly.running.stdout,
      ...namingOnly.running.stderr,
      ...unconfigured.running.stdout,
      ...unconfigured.running.stderr,
    ].join('\n');
    expect(logs).toMatch(/connection tested/);
    for (const secret of secrets) expect(logs).not.toContain(secret);
    expect(logs).not.toContain(TEST_ENCRYPTION_KEY);
  });
});
