import { randomBytes } from 'node:crypto';
import { expect } from '@jest/globals';
import {
  CreateCredentialDocument,
  CreateWalletDefinitionDocument,
  CredentialDocument,
  TestCredentialConnectionDocument,
} from './generated/graphql';
import { startTestApp, type TestApp } from './helpers/app';
import {
  adminToken,
  agentToken,
  definitionInput,
  registerUser,
  userWallet,
  type TestUser,
} from './helpers/factories';
import { startBinanceSimulator, type Simulator } from './simulators/binance.simulator';

/**
 * The masked hint of a plain credential value: its last four characters, only when that leaves
 * most of it unseen, and only to its owner. Agents see the credentials of the wallets they manage
 * (connection state, balances) without any hint.
 */

let t: TestApp;
let admin: string;
let agent: string;
let user: TestUser;
let simulator: Simulator;
const account = {
  apiKey: randomBytes(24).toString('hex'),
  secret: randomBytes(32).toString('hex'),
};

beforeAll(async () => {
  simulator = await startBinanceSimulator({ accounts: [account] });
  t = await startTestApp({ MAX_CREDENTIALS_PER_USER: '100' });
  admin = await adminToken(t);
  agent = await agentToken(t, 'hint-agent');
  user = await registerUser(t);
});

afterAll(async () => {
  await t.close();
  await simulator.close();
});

async function definition(overrides: Parameters<typeof definitionInput>[0] = {}): Promise<string> {
  const result = await t.gql(
    CreateWalletDefinitionDocument,
    {
      input: definitionInput({ slug: `hints-${randomBytes(3).toString('hex')}`, ...overrides }),
    },
    admin,
  );
  if (!result.data)
    throw new Error(`createWalletDefinition failed: ${JSON.stringify(result.errors)}`);
  return result.data.createWalletDefinition.id;
}

async function credential(definitionId: string, apiKey: string, secret: string): Promise<string> {
  const result = await t.gql(
    CreateCredentialDocument,
    {
      input: {
        walletId: definitionId,
        name: 'Key',
        values: [
          { key: 'api_key', value: apiKey },
          { key: 'api_secret', value: secret },
        ],
      },
    },
    user.token,
  );
  if (!result.data) throw new Error(`createCredential failed: ${JSON.stringify(result.errors)}`);
  return result.data.createCredential.id;
}

const hintOf = async (credentialId: string) =>
  (await t.gql(CredentialDocument, { id: credentialId }, user.token)).data!.credential.fields.find(
    (field) => field.key === 'api_key',
  )!.hint;

describe('the hint of a plain value', () => {
  it.each([
    ['wxyz', '****'],
    ['abcdefgh', '****'],
    ['abcdefghijk', '****'],
    ['abcdefghijkl', '****ijkl'],
    ['key-0123456789abcdef0123', '****0123'],
  ])('of %j is %j: the last four only from 12 characters on', async (value, hint) => {
    const definitionId = await definition();
    expect(await hintOf(await credential(definitionId, value, 'a secret value'))).toBe(hint);
  });
});

describe("an agent's view of a managed wallet's credential", () => {
  const query = `query ($id: ObjectID!) {
    managedWallet(id: $id) {
      credential {
        connectionState
        isConnected
        balances { asset total }
        fields { key isSet hint }
      }
    }
  }`;

  it('has the connection state and the balances, and no hint of any field', async () => {
    const definitionId = await definition({
      ccxtId: 'binance',
      apiConfig: { baseUrl: simulator.url, testnetUrl: simulator.url, rateLimit: 1200 },
    });
    const credentialId = await credential(definitionId, account.apiKey, account.secret);
    const tested = await t.gql(TestCredentialConnectionDocument, { id: credentialId }, user.token);
    expect(tested.data!.testCredentialConnection.ok).toBe(true);
    const { id } = await userWallet(t, user, credentialId);

    const seen = await t.raw<{
      managedWallet: {
        credential: {
          fields: Array<{ key: string; isSet: boolean; hint: string | null }>;
        };
      };
    }>(query, { id }, agent);
    expect(seen.errors).toBeUndefined();
    expect(seen.data!.managedWallet.credential).toEqual({
      connectionState: 'CONNECTED',
      isConnected: true,
      balances: [
        { asset: 'BTC', total: 0.5 },
        { asset: 'USDT', total: 1025 },
      ],
      fields: [
        { key: 'api_key', isSet: true, hint: null },
        { key: 'api_secret', isSet: true, hint: null },
      ],
    });

    // Its owner still sees the hint.
    expect(await hintOf(credentialId)).toBe(`****${account.apiKey.slice(-4)}`);
  });
});
