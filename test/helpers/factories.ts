import { randomBytes } from 'node:crypto';
import {
  CreateCredentialDocument,
  CreateUserWalletDocument,
  IssueAgentTokenDocument,
  CreateWalletDefinitionDocument,
  WalletDefinitionDocument,
  type UserLimitsInput,
  LoginDocument,
  RegisterDocument,
  type CreateWalletDefinitionInput,
  UserWalletDocument,
} from '../generated/graphql';
import { ADMIN_EMAIL, ADMIN_PASSWORD, type TestApp } from './app';
import { waitFor } from './processes';

export interface TestUser {
  id: string;
  email: string;
  password: string;
  token: string;
}

export function uniqueEmail(prefix = 'user'): string {
  return `${prefix}-${randomBytes(4).toString('hex')}@example.com`;
}

export async function registerUser(
  t: TestApp,
  overrides: { email?: string; password?: string; name?: string } = {},
): Promise<TestUser> {
  const email = overrides.email ?? uniqueEmail();
  const password = overrides.password ?? 'correct horse battery staple';
  const result = await t.gql(RegisterDocument, {
    input: { email, password, name: overrides.name ?? 'Test User' },
  });
  if (!result.data) throw new Error(`register failed: ${JSON.stringify(result.errors)}`);
  return { id: result.data.register.user.id, email, password, token: result.data.register.token };
}

export async function adminToken(t: TestApp): Promise<string> {
  const result = await t.gql(LoginDocument, { email: ADMIN_EMAIL, password: ADMIN_PASSWORD });
  if (!result.data) throw new Error(`admin login failed: ${JSON.stringify(result.errors)}`);
  return result.data.login.token;
}

export async function agentToken(t: TestApp, name = 'risk-agent'): Promise<string> {
  const result = await t.gql(IssueAgentTokenDocument, { name }, await adminToken(t));
  if (!result.data) throw new Error(`issueAgentToken failed: ${JSON.stringify(result.errors)}`);
  return result.data.issueAgentToken.token;
}

export function definitionInput(
  overrides: Partial<CreateWalletDefinitionInput> = {},
): CreateWalletDefinitionInput {
  return {
    name: 'Kraken',
    slug: `kraken-${randomBytes(3).toString('hex')}`,
    type: 'CEX',
    description: 'A test exchange',
    authFields: [
      {
        key: 'api_key',
        label: 'API Key',
        type: 'STRING',
        required: true,
        encrypted: false,
        placeholder: 'key',
        helpText: null,
      },
      { key: 'api_secret', label: 'API Secret', type: 'PASSWORD', required: true, encrypted: true },
    ],
    features: {
      spot: true,
      futures: false,
      perpetuals: false,
      leverage: { min: 1, max: 5 },
      supportedAssets: ['BTC', 'ETH'],
    },
    apiConfig: {
      baseUrl: 'https://api.kraken.example',
      testnetUrl: 'https://testnet.kraken.example',
      websocketUrl: 'wss://ws.kraken.example',
      rateLimit: 600,
    },
    ...overrides,
  };
}

/**
 * A catalog entry (the admin's) tested as `ccxtId`, at `url` on both environments: an exchange
 * simulator; `rateLimit` requests a minute.
 */
export async function simulatedDefinition(
  t: TestApp,
  admin: string,
  ccxtId: string,
  url: string,
  authFields?: CreateWalletDefinitionInput['authFields'],
  rateLimit = 1200,
): Promise<string> {
  const slug = `${ccxtId}-${randomBytes(3).toString('hex')}`;
  const result = await t.gql(
    CreateWalletDefinitionDocument,
    {
      input: definitionInput({
        name: `${ccxtId} ${slug}`,
        slug,
        ccxtId,
        apiConfig: { baseUrl: url, testnetUrl: url, rateLimit },
        ...(authFields ? { authFields } : {}),
      }),
    },
    admin,
  );
  if (!result.data)
    throw new Error(`createWalletDefinition failed: ${JSON.stringify(result.errors)}`);
  return result.data.createWalletDefinition.id;
}

/** A Binance credential of `user` (values that only need to pass validation). */
export async function binanceCredential(
  t: TestApp,
  user: TestUser,
  name = 'Binance main',
): Promise<string> {
  const binance = await t.gql(WalletDefinitionDocument, { slug: 'binance' });
  const result = await t.gql(
    CreateCredentialDocument,
    {
      input: {
        walletId: binance.data!.walletDefinition.id,
        name,
        values: [
          { key: 'api_key', value: `key-${randomBytes(12).toString('hex')}` },
          { key: 'api_secret', value: `secret-${randomBytes(16).toString('hex')}` },
        ],
      },
    },
    user.token,
  );
  if (!result.data) throw new Error(`createCredential failed: ${JSON.stringify(result.errors)}`);
  return result.data.createCredential.id;
}

export function limits(overrides: Partial<UserLimitsInput> = {}): UserLimitsInput {
  return { maxTotalRisk: 1000, allowedSymbols: null, tradingMode: 'MODERATE', ...overrides };
}

export async function userWallet(
  t: TestApp,
  user: TestUser,
  credentialId: string,
  overrides: Partial<UserLimitsInput> = {},
): Promise<{ id: string; version: number }> {
  const result = await t.gql(
    CreateUserWalletDocument,
    { input: { credentialId, name: 'Trading', userLimits: limits(overrides) } },
    user.token,
  );
  if (!result.data) throw new Error(`createUserWallet failed: ${JSON.stringify(result.errors)}`);
  return { id: result.data.createUserWallet.id, version: result.data.createUserWallet.version };
}

/**
 * The user's wallet once it is no longer ACTIVE: a re-test records the key's outcome, then pauses
 * the key's live wallets, a moment later on a loaded machine. A service that never pauses it fails.
 */
export function pausedWallet(t: TestApp, user: TestUser, walletId: string, ms = 20_000) {
  return waitFor(
    'the live wallet paused',
    async () => {
      const read = (await t.gql(UserWalletDocument, { id: walletId }, user.token)).data!.userWallet;
      return read.status === 'ACTIVE' ? undefined : read;
    },
    ms,
  );
}
