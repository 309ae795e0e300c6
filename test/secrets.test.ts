import { Writable } from 'node:stream';
import { Fernet } from '../src/crypto/fernet';
import { Keyring } from '../src/crypto/keyring';
import { createLogger, logFormatFor } from '../src/core/logger';
import { systemCtx } from '../src/core/context';
import { ROTATION_JOB, rotateCredentialKeys } from '../src/modules/credentials/credential-rotation';
import {
  CreateCredentialDocument,
  CredentialDocument,
  CredentialsDocument,
  DeleteCredentialDocument,
  TestCredentialConnectionDocument,
  UpdateCredentialDocument,
  UpdateWalletDefinitionDocument,
} from './generated/graphql';
import { startTestApp, TEST_JWT_SECRET, type GqlResult, type TestApp } from './helpers/app';
import { adminToken, registerUser, type TestUser } from './helpers/factories';
import { startBinanceSimulator, type BinanceSimulator } from './simulators/binance.simulator';
import {
  startHyperliquidSimulator,
  type HyperliquidSimulator,
} from './simulators/hyperliquid.simulator';

/**
 * A whole credential life (create, list, test, fail, update, rotate, delete, and bad input with
 * secrets in the wrong places) with every response body, error and log line kept; then none may
 * hold a test secret or a key.
 */
const OLD_KEY = Fernet.generateKey();
const NEW_KEY = Fernet.generateKey();
const SECRETS = {
  apiKey: 'Kq7Zt1vWx3nB5mL8pR2sT4uY6oI9aE0dF1gH3jJ5kL7zX9cV2bN4mQ6wE8rT0yU2',
  apiSecret: 'Pz4Xo7Lk1Jh3Gf5Ds8Aq2Ww4Ee6Rr8Tt0Yy2Uu4Ii6Oo8Pp0Aa2Ss4Dd6Ff8Gg0Hh',
  wrongSecret: 'Wr0ngS3cr3tWr0ngS3cr3tWr0ngS3cr3tWr0ngS3cr3tWr0ngS3cr3tWr0ngS3cr3t',
  newSecret: 'N3wS3cr3tN3wS3cr3tN3wS3cr3tN3wS3cr3tN3wS3cr3tN3wS3cr3tN3wS3cr3tAB',
  privateKey: '0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318',
  password: 'the users password, never to be seen again',
};
const KEYS = { OLD_KEY, NEW_KEY, TEST_JWT_SECRET };
const HL_ACCOUNT = `0x${'ab'.repeat(20)}`;
/** Not secrets, but the owner's: in the owner's answers, never in a log line. */
const BALANCES = { btc: '0.73196451', usdc: '4321.98765' };

let t: TestApp;
let admin: string;
let user: TestUser;
let binance: BinanceSimulator;
let hyperliquid: HyperliquidSimulator;
const bodies: string[] = [];

/** Every answer of this suite goes through here. */
async function keep<T>(result: Promise<GqlResult<T>>): Promise<GqlResult<T>> {
  const answer = await result;
  bodies.push(JSON.stringify(answer));
  return answer;
}

beforeAll(async () => {
  binance = await startBinanceSimulator({
    accounts: [
      {
        apiKey: SECRETS.apiKey,
        secret: SECRETS.apiSecret,
        balances: [{ asset: 'BTC', free: BALANCES.btc, locked: '0.00000000' }],
      },
    ],
    echoSecretInErrors: true,
  });
  // The key is an approved agent (API wallet) of the account: the proof is its signed noop.
  hyperliquid = await startHyperliquidSimulator({
    accounts: [
      {
        address: HL_ACCOUNT,
        agents: ['0x2c7536E3605D9C16a7a3D7b1898e529396a65c23'],
        accountValue: BALANCES.usdc,
      },
    ],
  });
  t = await startTestApp({
    ENCRYPTION_KEY: undefined,
    ENCRYPTION_KEYS: `${NEW_KEY},${OLD_KEY}`,
    LOG_LEVEL: 'debug',
  });
  admin = await adminToken(t);
  user = await registerUser(t, { password: SECRETS.password });
  await keep(
    t.gql(
      UpdateWalletDefinitionDocument,
      { slug: 'binance', input: { apiConfig: { baseUrl: binance.url, rateLimit: 1200 } } },
      admin,
    ),
  );
  await keep(
    t.gql(
      UpdateWalletDefinitionDocument,
      { slug: 'hyperliquid', input: { apiConfig: { baseUrl: hyperliquid.url, rateLimit: 300 } } },
      admin,
    ),
  );
});

afterAll(async () => {
  await t.close();
  await Promise.all([binance.close(), hyperliquid.close()]);
});

describe('secrets', () => {
  it('appear in no response, error or log line of a whole credential life', async () => {
    const definitions = (
      await keep(
        t.raw<{ walletDefinitions: Array<{ id: string; slug: string }> }>(
          '{ walletDefinitions { id slug } }',
        ),
      )
    ).data!.walletDefinitions;
    const walletId = (slug: string) => definitions.find((d) => d.slug === slug)!.id;
    const values = (secret: string) => [
      { key: 'api_key', value: SECRETS.apiKey },
      { key: 'api_secret', value: secret },
    ];

    const good = (
      await keep(
        t.gql(
          CreateCredentialDocument,
          {
            input: {
              walletId: walletId('binance'),
              name: 'good',
              values: values(SECRETS.apiSecret),
            },
          },
          user.token,
        ),
      )
    ).data!.createCredential.id;
    const bad = (
      await keep(
        t.gql(
          CreateCredentialDocument,
          {
            input: {
              walletId: walletId('binance'),
              name: 'bad',
              values: values(SECRETS.wrongSecret),
            },
          },
          user.token,
        ),
      )
    ).data!.createCredential.id;
    const hl = (
      await keep(
        t.gql(
          CreateCredentialDocument,
          {
            input: {
              walletId: walletId('hyperliquid'),
              name: 'hl',
              values: [
                { key: 'private_key', value: SECRETS.privateKey },
                { key: 'wallet_address', value: HL_ACCOUNT },
              ],
            },
          },
          user.token,
        ),
      )
    ).data!.createCredential.id;

    await keep(t.gql(CredentialsDocument, {}, user.token));
    await keep(t.gql(CredentialDocument, { id: good }, user.token));
    const tested = (await keep(t.gql(TestCredentialConnectionDocument, { id: good }, user.token)))
      .data!.testCredentialConnection;
    expect(tested).toMatchObject({
      ok: true,
      balances: [{ asset: 'BTC', total: Number(BALANCES.btc) }],
    });
    // The simulator echoes the secret it expected in its error body.
    expect(
      (await keep(t.gql(TestCredentialConnectionDocument, { id: bad }, user.token))).data!
        .testCredentialConnection.ok,
    ).toBe(false);
    expect(
      (await keep(t.gql(TestCredentialConnectionDocument, { id: hl }, user.token))).data!
        .testCredentialConnection,
    ).toMatchObject({
      ok: true,
      balances: [{ asset: 'USDC', total: Number(BALANCES.usdc) }],
    });
    expect(
      (await keep(t.gql(CredentialDocument, { id: hl }, user.token))).data!.credential.balances,
    ).toEqual([
      { asset: 'USDC', free: Number(BALANCES.usdc), used: 0, total: Number(BALANCES.usdc) },
    ]);
    await keep(
      t.gql(
        UpdateCredentialDocument,
        { id: good, input: { values: values(SECRETS.newSecret) } },
        user.token,
      ),
    );

    // Secrets in the wrong places.
    const create = 'mutation ($i: CreateCredentialInput!) { createCredential(input: $i) { id } }';
    await keep(
      t.raw(
        create,
        {
          i: {
            walletId: walletId('binance'),
            name: 'x',
            values: [{ key: SECRETS.privateKey.slice(2), value: 'api_secret' }],
          },
        },
        user.token,
      ),
    );
    await keep(
      t.raw(
        create,
        {
          i: {
            walletId: walletId('binance'),
            name: 'x',
            values: [{ key: 'api_key', value: [SECRETS.apiSecret, ';', SECRETS.newSecret] }],
          },
        },
        user.token,
      ),
    );
    await keep(
      t.raw(
        create,
        {
          i: {
            walletId: walletId('binance'),
            name: 'x',
            values: [{ key: 'api_secret', value: { [SECRETS.wrongSecret]: 1 } }],
          },
        },
        user.token,
      ),
    );
    await keep(
      t.raw(create, { i: { walletId: SECRETS.apiSecret, name: 'x', values: [] } }, user.token),
    );
    await keep(
      t.raw(
        `mutation { createCredential(input: { walletId: "${walletId('binance')}", name: "x", values: [{ key: "api_secret", value: ${JSON.stringify(SECRETS.apiSecret + '\u0000')} }] }) { id } }`,
        {},
        user.token,
      ),
    );
    await keep(
      t.raw('mutation ($e: String!, $p: String!) { login(email: $e, password: $p) { token } }', {
        e: user.email,
        p: `${SECRETS.password}!`,
      }),
    );
    await keep(
      t.raw('mutation ($e: String!, $p: Int!) { login(email: $e, password: $p) { token } }', {
        e: user.email,
        p: SECRETS.password,
      }),
    );

    // Rotation, logged into the same sink as the service.
    const sink = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        t.logs.push(chunk.toString());
        callback();
      },
    });
    const report = await rotateCredentialKeys(
      systemCtx(createLogger({ logLevel: 'debug' }, sink), ROTATION_JOB),
      new Keyring([NEW_KEY, OLD_KEY]),
    );
    expect(report.unreadable).toBe(0);

    for (const id of [good, bad, hl])
      await keep(t.gql(DeleteCredentialDocument, { id }, user.token));

    const everything = [...bodies, ...t.logs].join('\n');
    expect(bodies.length).toBeGreaterThan(15);
    expect(t.logs.length).toBeGreaterThan(10);
    for (const [name, secret] of Object.entries({
      ...SECRETS,
      hexKey: SECRETS.privateKey.slice(2),
      ...KEYS,
    })) {
      expect({ name, found: everything.includes(secret) }).toEqual({ name, found: false });
    }
    const logs = t.logs.join('\n');
    for (const [name, amount] of Object.entries(BALANCES)) {
      expect({
        name,
        logged: logs.includes(amount) || logs.includes(String(Number(amount))),
      }).toEqual({ name, logged: false });
    }
  });

  it('of the configuration are scrubbed from log lines wherever they land', () => {
    const dbPassword = 'db-pa"ss\\word/üñí and more';
    const adminPassword = 'the admin pass phrase';
    const uri = `mongodb://wallet:${encodeURIComponent(dbPassword)}@127.0.0.1:1/wallets`;
    const lines: string[] = [];
    const sink = new Writable({
      write: (chunk: Buffer, _e, callback) => (
        lines.push(...chunk.toString().split('\n').filter(Boolean)),
        callback()
      ),
    });
    const logger = createLogger(
      {
        logLevel: 'info',
        mongodbUri: uri,
        encryptionKeys: [NEW_KEY, OLD_KEY],
        jwt: { secret: TEST_JWT_SECRET, issuer: 'i', audience: 'a', expiresInSeconds: 60 },
        admin: { email: 'a@b.c', password: adminPassword },
      },
      sink,
    );
    // Places no redaction path names: an error message quoting the URI, free text, nested arrays.
    logger.error({ err: new Error(`could not reach ${uri}`) }, 'start-up failed');
    logger.info({ detail: `the password was ${dbPassword}` }, 'decoded');
    logger.warn(`keys ${OLD_KEY} and ${NEW_KEY}, secret ${TEST_JWT_SECRET}`);
    logger.info({ nested: { deep: [adminPassword] } }, 'nested');

    expect(lines).toHaveLength(4);
    const everything = lines.join('\n');
    for (const secret of [
      dbPassword,
      encodeURIComponent(dbPassword),
      JSON.stringify(dbPassword).slice(1, -1),
      'db-pa',
      adminPassword,
      OLD_KEY,
      NEW_KEY,
      TEST_JWT_SECRET,
    ]) {
      expect({ secret, found: everything.includes(secret) }).toEqual({ secret, found: false });
    }
    // Still one JSON object per line, with the rest of each message intact.
    const parsed = lines.map(
      (line) => JSON.parse(line) as { msg: string; err?: { message: string } },
    );
    expect(parsed[0].err!.message).toBe(
      'could not reach mongodb://wallet:[redacted]@127.0.0.1:1/wallets',
    );
    expect(parsed[2].msg).toBe('keys [redacted] and [redacted], secret [redacted]');
  });

  it('are scrubbed and redacted on the pretty lines of a developer terminal too', () => {
    const adminPassword = 'the admin pass phrase';
    const chunks: string[] = [];
    const sink = new Writable({
      write: (chunk: Buffer, _e, callback) => (chunks.push(chunk.toString()), callback()),
    });
    const logger = createLogger(
      {
        logLevel: 'info',
        encryptionKeys: [NEW_KEY],
        jwt: { secret: TEST_JWT_SECRET, issuer: 'i', audience: 'a', expiresInSeconds: 60 },
        admin: { email: 'a@b.c', password: adminPassword },
      },
      sink,
      'pretty',
    );
    logger.warn(`key ${NEW_KEY}, secret ${TEST_JWT_SECRET}`);
    logger.info({ password: 'a typed password', detail: `admin ${adminPassword}` }, 'login');
    const text = chunks.join('');
    // Not JSON: a line a person reads, with the level and the message.
    expect(text).toMatch(/WARN.*key \[redacted\], secret \[redacted\]/);
    expect(text).toMatch(/INFO.*login/);
    expect((): unknown => JSON.parse(text.split('\n')[0])).toThrow();
    for (const secret of [NEW_KEY, TEST_JWT_SECRET, adminPassword, 'a typed password'])
      expect({ secret, found: text.includes(secret) }).toEqual({ secret, found: false });
  });

  it('go to pretty lines only for a developer watching a terminal', () => {
    expect(logFormatFor('development', true)).toBe('pretty');
    expect(logFormatFor('development', false)).toBe('json');
    expect(logFormatFor('production', true)).toBe('json');
    expect(logFormatFor('test', true)).toBe('json');
  });

  it('can be returned by no GraphQL field', async () => {
    const schema = await keep(
      t.raw<{
        __schema: { types: Array<{ name: string; fields: Array<{ name: string }> | null }> };
      }>('{ __schema { types { name fields { name } } } }'),
    );
    const fields = (type: string) =>
      schema
        .data!.__schema.types.find((x) => x.name === type)!
        .fields!.map((f) => f.name)
        .sort();
    expect(fields('Credential')).toEqual([
      'balanceHistory',
      'balances',
      'balancesAt',
      'connectionError',
      'connectionState',
      'createdAt',
      'definition',
      'environment',
      'fields',
      'id',
      'isActive',
      'isConnected',
      'isPaper',
      'keyExpiresAt',
      'lastCheckedAt',
      'lastVerifiedAt',
      'name',
      'nextCheckAt',
      'permissions',
      'updatedAt',
    ]);
    expect(fields('AssetBalance')).toEqual(['asset', 'free', 'total', 'used']);
    expect(fields('KeyPermissions')).toEqual([
      'ipRestricted',
      'read',
      'trade',
      'tradingExpiresAt',
      'withdraw',
    ]);
    expect(fields('CredentialField')).toEqual(['encrypted', 'hint', 'isSet', 'key', 'label']);
    expect(fields('User')).toEqual(['createdAt', 'email', 'id', 'name', 'role']);
    // Operations are named after what they return (Query.credentials is the list); every field of a
    // data type is checked.
    const dataTypes = schema.data!.__schema.types.filter(
      (x) => !['Query', 'Mutation'].includes(x.name) && !x.name.startsWith('__'),
    );
    const everyField = dataTypes.flatMap((x) => (x.fields ?? []).map((f) => f.name.toLowerCase()));
    for (const forbidden of [
      'password',
      'passwordhash',
      'secret',
      'apisecret',
      'privatekey',
      'credentials',
      'values',
      'encryptionkey',
    ]) {
      expect(everyField).not.toContain(forbidden);
    }
  });
});
