import { randomBytes } from 'node:crypto';
import { expect } from '@jest/globals';
import {
  CreateCredentialDocument,
  CreateWalletDefinitionDocument,
  CredentialDocument,
} from './generated/graphql';
import { startTestApp, type TestApp } from './helpers/app';
import { adminToken, definitionInput, registerUser, type TestUser } from './helpers/factories';

/**
 * The masked hint of a plain credential value: its last four characters, only when that leaves
 * most of it unseen.
 */

let t: TestApp;
let admin: string;
let user: TestUser;

beforeAll(async () => {
  t = await startTestApp({ MAX_CREDENTIALS_PER_USER: '100' });
  admin = await adminToken(t);
  user = await registerUser(t);
});

afterAll(() => t.close());

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
