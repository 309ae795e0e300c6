import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import mongoose, { Types, type mongo } from 'mongoose';
import { Fernet } from '../src/crypto/fernet';
import {
  CreateCredentialDocument,
  CreateWalletDefinitionDocument,
  CredentialDocument,
  CredentialsDocument,
  DeleteCredentialDocument,
  TestCredentialConnectionDocument,
  UpdateCredentialDocument,
  UpdateWalletDefinitionDocument,
  type CredentialValueInput,
} from './generated/graphql';
import { codes, startTestApp, TEST_ENCRYPTION_KEY, type TestApp } from './helpers/app';
import {
  adminToken,
  agentToken,
  definitionInput,
  registerUser,
  userWallet,
  type TestUser,
} from './helpers/factories';
import type { StoredCredential } from './helpers/stored';
import { startBinanceSimulator, type BinanceSimulator } from './simulators/binance.simulator';
import {
  startHyperliquidSimulator,
  type HyperliquidSimulator,
} from './simulators/hyperliquid.simulator';

/** Every secret a test uses: none may ever come back in a response or a log line. */
const SECRETS = {
  binanceKey: 'vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A',
  binanceSecret: 'NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j',
  otherBinanceKey: 'Lq0Ij4qJ5rHnW8pX2vT6yB9mC3eF7gK1sD4aZ8xN0uR5tY2wQ6pO9iU3hJ7kM1lV',
  otherBinanceSecret: 'wT5rY8uI1oP4aS7dF0gH3jK6lZ9xC2vB5nM8qW1eR4tY7uI0oP3aS6dF9gH2jK5l',
  wrongSecret: 'zX9cV6bN3mQ0wE7rT4yU1iO8pA5sD2fG9hJ6kL3zX0cV7bN4mQ1wE8rT5yU2iO9p',
  hexSecret: 'abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789',
  // The well-known test key of the Ethereum docs; its address is
  // 0x2c7536E3605D9C16a7a3D7b1898e529396a65c23.
  hyperliquidKey: '0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318',
  // A Hyperliquid account's own key; its address is 0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf.
  hyperliquidOwnKey: `0x${'0'.repeat(63)}1`,
};
const HL_ADDRESS = '0x2c7536E3605D9C16a7a3D7b1898e529396a65c23';
/** The Hyperliquid account whose approved agent (API wallet) the test key is. */
const HL_ACCOUNT = `0x${'ab'.repeat(20)}`;

let t: TestApp;
let admin: string;
let alice: TestUser;
let bob: TestUser;
let binanceId: string;
let hyperliquidId: string;
let mainnet: BinanceSimulator;
let testnet: BinanceSimulator;
let hyperliquid: HyperliquidSimulator;

const collection = <T extends mongo.Document = mongo.Document>(name: string) =>
  mongoose.connection.db!.collection<T>(name);
const binanceValues = (
  key = SECRETS.binanceKey,
  secret = SECRETS.binanceSecret,
): CredentialValueInput[] => [
  { key: 'api_key', value: key },
  { key: 'api_secret', value: secret },
];
const createBinance = (
  user: TestUser,
  values = binanceValues(),
  extra: { name?: string; environment?: 'MAINNET' | 'TESTNET' } = {},
) =>
  t.gql(
    CreateCredentialDocument,
    {
      input: {
        walletId: binanceId,
        name: extra.name ?? 'My Binance',
        environment: extra.environment,
        values,
      },
    },
    user.token,
  );

async function closedPort(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}`;
}

/**
 * The connection tests allow one per credential per 10 s: tests that test twice reset the clock.
 */
const allowAnotherTest = (id: string) =>
  collection('credentials').updateOne(
    { _id: new Types.ObjectId(id) },
    { $set: { last_test_at: null } },
  );

beforeAll(async () => {
  mainnet = await startBinanceSimulator({
    accounts: [
      {
        apiKey: SECRETS.binanceKey,
        secret: SECRETS.binanceSecret,
        enableWithdrawals: false,
        ipRestrict: true,
      },
      {
        apiKey: SECRETS.otherBinanceKey,
        secret: SECRETS.otherBinanceSecret,
        enableWithdrawals: true,
        ipRestrict: false,
      },
    ],
  });
  testnet = await startBinanceSimulator({
    accounts: [{ apiKey: SECRETS.binanceKey, secret: SECRETS.binanceSecret }],
  });
  hyperliquid = await startHyperliquidSimulator({
    accounts: [
      { address: HL_ACCOUNT, agents: [HL_ADDRESS] },
      { address: '0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf' },
    ],
  });
  t = await startTestApp({ EXCHANGE_TIMEOUT_MS: '2000' });
  admin = await adminToken(t);
  alice = await registerUser(t);
  bob = await registerUser(t);
  const binance = await t.gql(
    UpdateWalletDefinitionDocument,
    {
      slug: 'binance',
      input: { apiConfig: { baseUrl: mainnet.url, testnetUrl: testnet.url, rateLimit: 1200 } },
    },
    admin,
  );
  binanceId = binance.data!.updateWalletDefinition.id;
  const hl = await t.gql(
    UpdateWalletDefinitionDocument,
    { slug: 'hyperliquid', input: { apiConfig: { baseUrl: hyperliquid.url, rateLimit: 300 } } },
    admin,
  );
  hyperliquidId = hl.data!.updateWalletDefinition.id;
});

afterAll(async () => {
  await t.close();
  await Promise.all([mainnet.close(), testnet.close(), hyperliquid.close()]);
});

describe('createCredential', () => {
  it('creates a credential and shows it masked', async () => {
    const result = await createBinance(alice);
    expect(result.errors).toBeUndefined();
    const credential = result.data!.createCredential;
    expect(credential).toMatchObject({
      name: 'My Binance',
      environment: 'MAINNET',
      isConnected: false,
      lastVerifiedAt: null,
      connectionError: null,
      isActive: true,
      definition: { slug: 'binance', name: 'Binance' },
    });
    expect(credential.fields).toEqual([
      {
        key: 'api_key',
        label: 'API Key',
        encrypted: false,
        isSet: true,
        hint: `****${SECRETS.binanceKey.slice(-4)}`,
      },
      { key: 'api_secret', label: 'API Secret', encrypted: true, isSet: true, hint: null },
    ]);
    expect(JSON.stringify(result)).not.toContain(SECRETS.binanceSecret);
    expect(JSON.stringify(result)).not.toContain(SECRETS.binanceKey);
  });

  it("stores encrypted fields as Fernet tokens of ENCRYPTION_KEY, under the spec's names", async () => {
    const id = (await createBinance(alice)).data!.createCredential.id;
    const raw = await collection<StoredCredential>('credentials').findOne({
      _id: new Types.ObjectId(id),
    });
    expect(raw).toMatchObject({
      user_id: new Types.ObjectId(alice.id),
      wallet_id: new Types.ObjectId(binanceId),
      name: 'My Binance',
      environment: 'mainnet',
      is_connected: false,
      is_active: true,
    });
    expect(raw!.credentials.api_key).toBe(SECRETS.binanceKey);
    expect(new Fernet(TEST_ENCRYPTION_KEY).decrypt(raw!.credentials.api_secret).toString()).toBe(
      SECRETS.binanceSecret,
    );
    expect(JSON.stringify(raw)).not.toContain(SECRETS.binanceSecret);
    const indexes = await collection('credentials').indexes();
    expect(indexes).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ key: { user_id: 1, wallet_id: 1 } }),
        expect.objectContaining({ key: { user_id: 1, is_active: 1 } }),
      ]),
    );
  });

  it('trims values, and takes an optional field left empty as not set', async () => {
    const result = await t.gql(
      CreateCredentialDocument,
      {
        input: {
          walletId: hyperliquidId,
          name: 'HL',
          values: [
            { key: 'private_key', value: `  ${SECRETS.hyperliquidKey}\n` },
            { key: 'wallet_address', value: '  ' },
          ],
        },
      },
      alice.token,
    );
    expect(result.data!.createCredential.fields.map((f) => [f.key, f.isSet])).toEqual([
      ['private_key', true],
      ['wallet_address', false],
    ]);
    const raw = await collection<StoredCredential>('credentials').findOne({
      _id: new Types.ObjectId(result.data!.createCredential.id),
    });
    expect(new Fernet(TEST_ENCRYPTION_KEY).decrypt(raw!.credentials.private_key).toString()).toBe(
      SECRETS.hyperliquidKey,
    );
    expect(Object.keys(raw!.credentials)).toEqual(['private_key']);
  });

  const invalid: Array<[string, () => CredentialValueInput[], string, RegExp]> = [
    [
      'a missing required key',
      () => [{ key: 'api_key', value: SECRETS.binanceKey }],
      'values',
      /"api_secret" is required/,
    ],
    [
      'a required value that is blank',
      () => binanceValues(SECRETS.binanceKey, '   '),
      'values[1].value',
      /"api_secret" is required/,
    ],
    [
      'an unknown key',
      () => [...binanceValues(), { key: 'passphrase', value: SECRETS.wrongSecret }],
      'values[2].key',
      /not an auth field of Binance \(expected: api_key, api_secret\)/,
    ],
    [
      'a key given twice',
      () => [...binanceValues(), { key: 'api_secret', value: SECRETS.wrongSecret }],
      'values[2].key',
      /more than once/,
    ],
    [
      'a value over 8 KiB',
      () => binanceValues(SECRETS.binanceKey, 'x'.repeat(8 * 1024 + 1)),
      'values[1].value',
      /over 8 KiB/,
    ],
    [
      'a control character in a one-line value',
      () => binanceValues(SECRETS.binanceKey, `${SECRETS.wrongSecret}\u0000`),
      'values[1].value',
      /control characters/,
    ],
    [
      'a key that is no auth field key',
      () => [...binanceValues(), { key: 'Api Secret', value: SECRETS.wrongSecret }],
      'values[2].key',
      /snake_case/,
    ],
    // Key and value swapped: the secret sits in the key's slot and must not come back.
    [
      'a secret in the key slot',
      () => [
        { key: 'api_key', value: SECRETS.binanceKey },
        { key: SECRETS.hexSecret, value: 'api_secret' },
      ],
      'values[1].key',
      /not an auth field/,
    ],
  ];

  it.each(invalid)(
    'rejects %s, naming the key and never the value, and stores nothing',
    async (_what, values, field, message) => {
      const before = await collection('credentials').countDocuments();
      const result = await createBinance(alice, values());
      expect(result.errors![0].extensions).toEqual({ code: 'BAD_USER_INPUT', field });
      expect(result.errors![0].message).toMatch(message);
      for (const secret of [SECRETS.wrongSecret, SECRETS.binanceSecret, SECRETS.hexSecret])
        expect(JSON.stringify(result)).not.toContain(secret);
      expect(await collection('credentials').countDocuments()).toBe(before);
    },
  );

  it('needs an existing, active exchange', async () => {
    const missing = await t.gql(
      CreateCredentialDocument,
      {
        input: { walletId: new Types.ObjectId().toHexString(), name: 'x', values: binanceValues() },
      },
      alice.token,
    );
    expect(codes(missing)).toEqual(['NOT_FOUND']);
    const retired = await t.gql(
      CreateWalletDefinitionDocument,
      { input: definitionInput({ isActive: false }) },
      admin,
    );
    const inactive = await t.gql(
      CreateCredentialDocument,
      {
        input: {
          walletId: retired.data!.createWalletDefinition.id,
          name: 'x',
          values: binanceValues(),
        },
      },
      alice.token,
    );
    expect(inactive.errors![0].extensions).toEqual({ code: 'BAD_USER_INPUT', field: 'walletId' });
    const malformed = await t.gql(
      CreateCredentialDocument,
      { input: { walletId: 'not-an-id', name: 'x', values: binanceValues() } },
      alice.token,
    );
    expect(codes(malformed)).toEqual(['BAD_USER_INPUT']);
  });

  it('takes a FILE field as text, lines and all', async () => {
    const pem =
      '-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIH1oTn3GZ0bRRmjZ5pLCXGPRJh4h3FZUxpcUxpOnBAhZ\n-----END PRIVATE KEY-----';
    const definition = await t.gql(
      CreateWalletDefinitionDocument,
      {
        input: definitionInput({
          authFields: [
            { key: 'api_key', label: 'API Key', type: 'STRING', required: true, encrypted: false },
            {
              key: 'private_key_pem',
              label: 'Ed25519 key',
              type: 'FILE',
              required: true,
              encrypted: true,
            },
          ],
        }),
      },
      admin,
    );
    const result = await t.gql(
      CreateCredentialDocument,
      {
        input: {
          walletId: definition.data!.createWalletDefinition.id,
          name: 'PEM',
          values: [
            { key: 'api_key', value: SECRETS.otherBinanceKey },
            { key: 'private_key_pem', value: pem },
          ],
        },
      },
      alice.token,
    );
    expect(result.errors).toBeUndefined();
    const raw = await collection<StoredCredential>('credentials').findOne({
      _id: new Types.ObjectId(result.data!.createCredential.id),
    });
    expect(
      new Fernet(TEST_ENCRYPTION_KEY).decrypt(raw!.credentials.private_key_pem).toString(),
    ).toBe(pem);
  });

  it('is for signed-in users: UNAUTHENTICATED without a token, FORBIDDEN for an agent', async () => {
    expect(
      codes(
        await t.gql(CreateCredentialDocument, {
          input: { walletId: binanceId, name: 'x', values: binanceValues() },
        }),
      ),
    ).toEqual(['UNAUTHENTICATED']);
    const agent = await agentToken(t);
    expect(
      codes(
        await t.gql(
          CreateCredentialDocument,
          { input: { walletId: binanceId, name: 'x', values: binanceValues() } },
          agent,
        ),
      ),
    ).toEqual(['FORBIDDEN']);
    expect(codes(await t.gql(CredentialsDocument, {}, agent))).toEqual(['FORBIDDEN']);
  });
});

describe('credentials and credential', () => {
  it("lists only the caller's credentials, without any secret", async () => {
    await createBinance(bob, binanceValues(SECRETS.otherBinanceKey, SECRETS.otherBinanceSecret), {
      name: "Bob's",
    });
    const list = await t.gql(CredentialsDocument, {}, alice.token);
    expect(list.data!.credentials.length).toBeGreaterThan(0);
    expect(list.data!.credentials.map((c) => c.name)).not.toContain("Bob's");
    expect(JSON.stringify(list)).not.toContain(SECRETS.binanceSecret);
    expect(JSON.stringify(list)).not.toContain(SECRETS.binanceKey);
    const bobs = await t.gql(CredentialsDocument, {}, bob.token);
    expect(bobs.data!.credentials.map((c) => c.name)).toEqual(["Bob's"]);
  });

  it('filters by exchange and by isActive', async () => {
    const byExchange = await t.gql(
      CredentialsDocument,
      { filter: { walletId: hyperliquidId } },
      alice.token,
    );
    expect(byExchange.data!.credentials.every((c) => c.definition.slug === 'hyperliquid')).toBe(
      true,
    );
    expect(byExchange.data!.credentials.length).toBeGreaterThan(0);
    const id = (await createBinance(alice, binanceValues(), { name: 'Parked' })).data!
      .createCredential.id;
    await t.gql(UpdateCredentialDocument, { id, input: { isActive: false } }, alice.token);
    const inactive = await t.gql(CredentialsDocument, { filter: { isActive: false } }, alice.token);
    expect(inactive.data!.credentials.map((c) => c.id)).toEqual([id]);
  });

  it("gets one by id; another user's is FORBIDDEN, an unknown id NOT_FOUND", async () => {
    const id = (await createBinance(alice)).data!.createCredential.id;
    const own = await t.gql(CredentialDocument, { id }, alice.token);
    expect(own.data!.credential.id).toBe(id);
    expect(codes(await t.gql(CredentialDocument, { id }, bob.token))).toEqual(['FORBIDDEN']);
    expect(
      codes(
        await t.gql(CredentialDocument, { id: new Types.ObjectId().toHexString() }, alice.token),
      ),
    ).toEqual(['NOT_FOUND']);
    expect(codes(await t.gql(CredentialDocument, { id }))).toEqual(['UNAUTHENTICATED']);
  });

  it('has no field that could return a stored value', async () => {
    const id = (await createBinance(alice)).data!.createCredential.id;
    for (const field of ['credentials', 'values', 'apiSecret', 'value', 'secret']) {
      const result = await t.raw(
        `query ($id: ObjectID!) { credential(id: $id) { ${field} } }`,
        { id },
        alice.token,
      );
      expect(codes(result)).toEqual(['BAD_USER_INPUT']);
    }
  });
});

describe('updateCredential', () => {
  it('re-encrypts new values and resets the connection state', async () => {
    const id = (await createBinance(alice)).data!.createCredential.id;
    const tested = await t.gql(TestCredentialConnectionDocument, { id }, alice.token);
    expect(tested.data!.testCredentialConnection.credential.isConnected).toBe(true);
    const before = await collection<StoredCredential>('credentials').findOne({
      _id: new Types.ObjectId(id),
    });

    const result = await t.gql(
      UpdateCredentialDocument,
      { id, input: { values: binanceValues(SECRETS.otherBinanceKey, SECRETS.otherBinanceSecret) } },
      alice.token,
    );
    expect(result.data!.updateCredential).toMatchObject({
      isConnected: false,
      lastVerifiedAt: null,
      connectionError: null,
    });
    const after = await collection<StoredCredential>('credentials').findOne({
      _id: new Types.ObjectId(id),
    });
    expect(after!.credentials.api_secret).not.toBe(before!.credentials.api_secret);
    expect(new Fernet(TEST_ENCRYPTION_KEY).decrypt(after!.credentials.api_secret).toString()).toBe(
      SECRETS.otherBinanceSecret,
    );
    expect(after!.credentials.api_key).toBe(SECRETS.otherBinanceKey);
    expect(JSON.stringify(result)).not.toContain(SECRETS.otherBinanceSecret);
  });

  it('resets the connection state on a new environment, and keeps it on a new name', async () => {
    const id = (await createBinance(alice)).data!.createCredential.id;
    await t.gql(TestCredentialConnectionDocument, { id }, alice.token);
    const renamed = await t.gql(
      UpdateCredentialDocument,
      { id, input: { name: 'Renamed', environment: 'MAINNET' } },
      alice.token,
    );
    expect(renamed.data!.updateCredential).toMatchObject({ name: 'Renamed', isConnected: true });
    const moved = await t.gql(
      UpdateCredentialDocument,
      { id, input: { environment: 'TESTNET' } },
      alice.token,
    );
    expect(moved.data!.updateCredential).toMatchObject({
      environment: 'TESTNET',
      isConnected: false,
      lastVerifiedAt: null,
    });
  });

  it('validates new values like create and changes nothing when they fail', async () => {
    const id = (await createBinance(alice)).data!.createCredential.id;
    const before = await collection<StoredCredential>('credentials').findOne({
      _id: new Types.ObjectId(id),
    });
    const result = await t.gql(
      UpdateCredentialDocument,
      {
        id,
        input: { name: 'Changed', values: [{ key: 'api_key', value: SECRETS.otherBinanceKey }] },
      },
      alice.token,
    );
    expect(result.errors![0].extensions).toEqual({ code: 'BAD_USER_INPUT', field: 'values' });
    expect(
      await collection<StoredCredential>('credentials').findOne({ _id: new Types.ObjectId(id) }),
    ).toEqual(before);
  });

  it("is FORBIDDEN on another user's credential, and changes nothing", async () => {
    const id = (await createBinance(alice)).data!.createCredential.id;
    const result = await t.gql(
      UpdateCredentialDocument,
      { id, input: { name: 'Mine now' } },
      bob.token,
    );
    expect(codes(result)).toEqual(['FORBIDDEN']);
    expect(
      (await collection<StoredCredential>('credentials').findOne({ _id: new Types.ObjectId(id) }))!
        .name,
    ).toBe('My Binance');
  });
});

describe('deleteCredential', () => {
  it('removes the document and its secrets', async () => {
    const id = (await createBinance(alice)).data!.createCredential.id;
    const result = await t.gql(DeleteCredentialDocument, { id }, alice.token);
    expect(result.data!.deleteCredential).toEqual({ id, deleted: true });
    expect(
      await collection<StoredCredential>('credentials').findOne({ _id: new Types.ObjectId(id) }),
    ).toBeNull();
    expect(codes(await t.gql(DeleteCredentialDocument, { id }, alice.token))).toEqual([
      'NOT_FOUND',
    ]);
  });

  it("is FORBIDDEN on another user's credential", async () => {
    const id = (await createBinance(alice)).data!.createCredential.id;
    expect(codes(await t.gql(DeleteCredentialDocument, { id }, bob.token))).toEqual(['FORBIDDEN']);
    expect(await collection('credentials').countDocuments({ _id: new Types.ObjectId(id) })).toBe(1);
  });

  it('is a CONFLICT while a user wallet uses the credential', async () => {
    const id = (await createBinance(alice)).data!.createCredential.id;
    await collection('user_wallets').insertOne({
      user_id: new Types.ObjectId(alice.id),
      credential_id: new Types.ObjectId(id),
      name: 'uses it',
    });
    expect(codes(await t.gql(DeleteCredentialDocument, { id }, alice.token))).toEqual(['CONFLICT']);
    expect(await collection('credentials').countDocuments({ _id: new Types.ObjectId(id) })).toBe(1);
    await collection('user_wallets').deleteMany({ credential_id: new Types.ObjectId(id) });
    expect(
      (await t.gql(DeleteCredentialDocument, { id }, alice.token)).data!.deleteCredential.deleted,
    ).toBe(true);
  });
});

describe('testCredentialConnection', () => {
  it('succeeds with valid Binance credentials and records it', async () => {
    const id = (await createBinance(alice)).data!.createCredential.id;
    const started = Date.now();
    const result = await t.gql(TestCredentialConnectionDocument, { id }, alice.token);
    expect(result.errors).toBeUndefined();
    const outcome = result.data!.testCredentialConnection;
    expect(outcome).toMatchObject({ ok: true, error: null, warnings: [] });
    expect(outcome.latencyMs).toBeGreaterThanOrEqual(0);
    expect(outcome.credential).toMatchObject({ isConnected: true, connectionError: null });
    expect(new Date(outcome.credential.lastVerifiedAt!).getTime()).toBeGreaterThanOrEqual(
      started - 1000,
    );
    expect(
      mainnet.requests.some(
        (r) =>
          r.path.startsWith('/api/v3/account') && r.headers['x-mbx-apikey'] === SECRETS.binanceKey,
      ),
    ).toBe(true);
  });

  it('fails with a wrong secret, records the error, and echoes no secret', async () => {
    const id = (await createBinance(alice, binanceValues(SECRETS.binanceKey, SECRETS.wrongSecret)))
      .data!.createCredential.id;
    const result = await t.gql(TestCredentialConnectionDocument, { id }, alice.token);
    const outcome = result.data!.testCredentialConnection;
    expect(outcome.ok).toBe(false);
    expect(outcome.error).toMatch(/rejected the credentials/);
    expect(outcome.credential).toMatchObject({
      isConnected: false,
      connectionError: outcome.error,
    });
    expect(JSON.stringify(result)).not.toContain(SECRETS.wrongSecret);
  });

  it('fails a key that can withdraw funds', async () => {
    const id = (
      await createBinance(alice, binanceValues(SECRETS.otherBinanceKey, SECRETS.otherBinanceSecret))
    ).data!.createCredential.id;
    const outcome = (await t.gql(TestCredentialConnectionDocument, { id }, alice.token)).data!
      .testCredentialConnection;
    expect(outcome.ok).toBe(false);
    expect(outcome.error).toMatch(/withdraw/i);
  });

  it('tests a TESTNET credential against the testnet URL', async () => {
    const id = (await createBinance(alice, binanceValues(), { environment: 'TESTNET' })).data!
      .createCredential.id;
    const seen = testnet.requests.length;
    const outcome = (await t.gql(TestCredentialConnectionDocument, { id }, alice.token)).data!
      .testCredentialConnection;
    expect(outcome.ok).toBe(true);
    expect(testnet.requests.length).toBeGreaterThan(seen);
  });

  it("succeeds with an API wallet's Hyperliquid key, proven by the noop it signs", async () => {
    const values = [
      { key: 'private_key', value: SECRETS.hyperliquidKey },
      { key: 'wallet_address', value: HL_ACCOUNT },
    ];
    const created = await t.gql(
      CreateCredentialDocument,
      { input: { walletId: hyperliquidId, name: 'HL', values } },
      alice.token,
    );
    const outcome = (
      await t.gql(
        TestCredentialConnectionDocument,
        { id: created.data!.createCredential.id },
        alice.token,
      )
    ).data!.testCredentialConnection;
    expect(outcome).toMatchObject({
      ok: true,
      error: null,
      permissions: { withdraw: false },
      balances: [{ asset: 'USDC', total: 1000 }],
    });
    expect(hyperliquid.signers.at(-1)).toBe(HL_ADDRESS.toLowerCase());
  });

  it("fails the account's own Hyperliquid key: it can withdraw (the platform's policy)", async () => {
    const created = await t.gql(
      CreateCredentialDocument,
      {
        input: {
          walletId: hyperliquidId,
          name: 'HL own',
          values: [{ key: 'private_key', value: SECRETS.hyperliquidOwnKey }],
        },
      },
      alice.token,
    );
    const outcome = (
      await t.gql(
        TestCredentialConnectionDocument,
        { id: created.data!.createCredential.id },
        alice.token,
      )
    ).data!.testCredentialConnection;
    expect(outcome).toMatchObject({
      ok: false,
      balances: [],
      permissions: { withdraw: true },
      credential: { isConnected: false, permissions: null, balances: null },
    });
    expect(outcome.error).toMatch(/can withdraw funds/);
  });

  it('keeps what the last passing test found (permissions, balances), through a failing one, and drops it with new values', async () => {
    const id = (await createBinance(alice)).data!.createCredential.id;
    const passed = (await t.gql(TestCredentialConnectionDocument, { id }, alice.token)).data!
      .testCredentialConnection;
    const found = {
      permissions: { read: true, trade: true, withdraw: false, ipRestricted: true },
      balances: [
        { asset: 'BTC', free: 0.5, used: 0, total: 0.5 },
        { asset: 'USDT', free: 1000, used: 25, total: 1025 },
      ],
    };
    expect(passed).toMatchObject({
      ok: true,
      ...found,
      credential: { ...found, balancesAt: passed.testedAt },
    });
    const raw = await collection<StoredCredential>('credentials').findOne({
      _id: new Types.ObjectId(id),
    });
    expect(raw).toMatchObject({
      permissions: { read: true, trade: true, withdraw: false, ip_restricted: true },
      balances: found.balances,
      balances_at: new Date(passed.testedAt),
    });

    // The exchange goes away: the test fails, what the last one found stays, dated.
    await collection('wallets').updateOne(
      { slug: 'binance' },
      { $set: { 'api_config.base_url': await closedPort() } },
    );
    try {
      await allowAnotherTest(id);
      const unreachable = (await t.gql(TestCredentialConnectionDocument, { id }, alice.token)).data!
        .testCredentialConnection;
      expect(unreachable).toMatchObject({
        ok: false,
        error: 'the exchange could not be reached',
        balances: [],
        permissions: null,
      });
      expect(unreachable.credential).toMatchObject({
        isConnected: false,
        ...found,
        balancesAt: passed.testedAt,
      });
    } finally {
      await collection('wallets').updateOne(
        { slug: 'binance' },
        { $set: { 'api_config.base_url': mainnet.url } },
      );
    }

    const updated = await t.gql(
      UpdateCredentialDocument,
      { id, input: { values: binanceValues(SECRETS.otherBinanceKey, SECRETS.otherBinanceSecret) } },
      alice.token,
    );
    expect(updated.data!.updateCredential).toMatchObject({
      isConnected: false,
      permissions: null,
      balances: null,
      balancesAt: null,
    });
  });

  it('shows the balances to agents through managedWallets { credential }, and never to another user', async () => {
    const id = (await createBinance(alice, binanceValues(), { name: 'Managed' })).data!
      .createCredential.id;
    await t.gql(TestCredentialConnectionDocument, { id }, alice.token);
    await userWallet(t, alice, id);
    const agent = await agentToken(t);
    const managed = await t.raw<{
      managedWallets: {
        edges: Array<{
          node: {
            credential: {
              id: string;
              balances: Array<{ asset: string }> | null;
              permissions: { withdraw: boolean | null } | null;
            };
          };
        }>;
      };
    }>(
      '{ managedWallets(first: 500) { edges { node { credential { id balances { asset } permissions { withdraw } } } } } }',
      {},
      agent,
    );
    const credential = managed
      .data!.managedWallets.edges.map((e) => e.node.credential)
      .find((c) => c.id === id);
    expect(credential).toEqual({
      id,
      balances: [{ asset: 'BTC' }, { asset: 'USDT' }],
      permissions: { withdraw: false },
    });
    expect(codes(await t.gql(CredentialDocument, { id }, bob.token))).toEqual(['FORBIDDEN']);
  });

  it('says when the stored values cannot be decrypted', async () => {
    const id = (await createBinance(alice)).data!.createCredential.id;
    const foreign = new Fernet(Fernet.generateKey()).encrypt(SECRETS.binanceSecret);
    await collection('credentials').updateOne(
      { _id: new Types.ObjectId(id) },
      { $set: { 'credentials.api_secret': foreign } },
    );
    const outcome = (await t.gql(TestCredentialConnectionDocument, { id }, alice.token)).data!
      .testCredentialConnection;
    expect(outcome).toMatchObject({
      ok: false,
      latencyMs: null,
      error: "stored credentials can't be decrypted; enter them again",
    });
    expect(outcome.credential.connectionError).toBe(
      "stored credentials can't be decrypted; enter them again",
    );
  });

  it('allows one test per credential per 10 s', async () => {
    const id = (await createBinance(alice)).data!.createCredential.id;
    expect(
      (await t.gql(TestCredentialConnectionDocument, { id }, alice.token)).data!
        .testCredentialConnection.ok,
    ).toBe(true);
    const again = await t.gql(TestCredentialConnectionDocument, { id }, alice.token);
    expect(codes(again)).toEqual(['RATE_LIMITED']);
    await allowAnotherTest(id);
    expect(
      (await t.gql(TestCredentialConnectionDocument, { id }, alice.token)).data!
        .testCredentialConnection.ok,
    ).toBe(true);
  });

  it('allows 20 tests per user per minute', async () => {
    const carol = await registerUser(t);
    const ids: string[] = [];
    for (let i = 0; i < 21; i++) ids.push((await createBinance(carol)).data!.createCredential.id);
    // The budget is per calendar minute: start well inside one so all 21 land in it.
    const intoMinute = Date.now() % 60_000;
    if (intoMinute > 40_000)
      await new Promise((resolve) => setTimeout(resolve, 60_500 - intoMinute));
    const results = [];
    for (const id of ids)
      results.push(await t.gql(TestCredentialConnectionDocument, { id }, carol.token));
    expect(results.slice(0, 20).every((r) => r.data?.testCredentialConnection.ok)).toBe(true);
    expect(codes(results[20])).toEqual(['RATE_LIMITED']);
    expect(results[20].errors![0].message).toMatch(/at most 20 per 60 s/);
  });

  it("is FORBIDDEN on another user's credential, and calls no exchange", async () => {
    const id = (await createBinance(alice)).data!.createCredential.id;
    const seen = mainnet.requests.length;
    expect(codes(await t.gql(TestCredentialConnectionDocument, { id }, bob.token))).toEqual([
      'FORBIDDEN',
    ]);
    expect(mainnet.requests.length).toBe(seen);
  });
});

describe('secrets', () => {
  it('never appear in the log output of this whole suite', () => {
    const logs = t.logs.join('\n');
    expect(logs.length).toBeGreaterThan(0);
    for (const secret of Object.values(SECRETS)) expect(logs).not.toContain(secret);
    expect(logs).not.toContain(TEST_ENCRYPTION_KEY);
  });
});
