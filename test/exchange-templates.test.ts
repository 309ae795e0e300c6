import { createHash } from 'node:crypto';
import { expect } from '@jest/globals';
import mongoose from 'mongoose';
import {
  CreateCredentialDocument,
  CreateWalletDefinitionDocument,
  ExchangeTemplateDocument,
  ExchangeTemplatesDocument,
  TestCredentialConnectionDocument,
  type CreateWalletDefinitionInput,
  type TemplateFieldsFragment,
} from './generated/graphql';
import { codes, startTestApp, type TestApp } from './helpers/app';
import { adminToken, registerUser, type TestUser } from './helpers/factories';
import { startBybitSimulator } from './simulators/bybit.simulator';
import { startKrakenSimulator } from './simulators/kraken.simulator';
import { startOkxSimulator } from './simulators/okx.simulator';
import type { Simulator } from './simulators/recording-server';

const fake = (label: string, length = 32) =>
  createHash('sha256').update(label).digest('hex').slice(0, length);
const SECRETS = {
  okxKey: fake('okx key', 36),
  okxSecret: fake('okx secret').toUpperCase(),
  okxPassphrase: 'a passphrase of my own',
  krakenKey: Buffer.from(fake('kraken key', 64), 'hex').toString('base64'),
  krakenSecret: Buffer.from(
    fake('kraken secret', 64) + fake('kraken secret 2', 64),
    'hex',
  ).toString('base64'),
  bybitKey: fake('bybit key', 18),
  bybitSecret: fake('bybit secret', 36),
};

let t: TestApp;
let admin: string;
let user: TestUser;
let okx: Simulator;
let kraken: Simulator;
let bybit: Simulator;

beforeAll(async () => {
  [okx, kraken, bybit] = await Promise.all([
    startOkxSimulator({
      accounts: [
        {
          apiKey: SECRETS.okxKey,
          secret: SECRETS.okxSecret,
          passphrase: SECRETS.okxPassphrase,
          ip: '203.0.113.7',
        },
      ],
    }),
    startKrakenSimulator({
      accounts: [
        {
          apiKey: SECRETS.krakenKey,
          secret: SECRETS.krakenSecret,
          permissions: ['query-funds', 'modify-trades'],
        },
      ],
    }),
    startBybitSimulator({ accounts: [{ apiKey: SECRETS.bybitKey, secret: SECRETS.bybitSecret }] }),
  ]);
  t = await startTestApp();
  admin = await adminToken(t);
  user = await registerUser(t);
});
afterAll(async () => {
  await t.close();
  await Promise.all([okx.close(), kraken.close(), bybit.close()]);
});

const wallets = () => mongoose.connection.db!.collection('wallets');

/** What an admin sends: the draft as it is, pointed at `baseUrl` when given. */
function fromDraft(
  template: TemplateFieldsFragment,
  baseUrl?: string,
): CreateWalletDefinitionInput {
  const { draft } = template;
  return {
    name: draft.name,
    slug: draft.slug,
    type: draft.type,
    description: draft.description,
    logo: draft.logo,
    ccxtId: draft.ccxtId,
    authFields: draft.authFields.map((f) => ({
      key: f.key,
      label: f.label,
      type: f.type,
      required: f.required,
      encrypted: f.encrypted,
      placeholder: f.placeholder,
      helpText: f.helpText,
      ccxtCredential: f.ccxtCredential,
    })),
    features: { ...draft.features, leverage: { ...draft.features.leverage } },
    apiConfig: { ...draft.apiConfig, ...(baseUrl === undefined ? {} : { baseUrl }) },
  };
}

async function template(ccxtId: string): Promise<TemplateFieldsFragment> {
  const result = await t.gql(ExchangeTemplateDocument, { ccxtId }, admin);
  if (!result.data) throw new Error(JSON.stringify(result.errors));
  return result.data.exchangeTemplate;
}

describe('exchangeTemplates and exchangeTemplate', () => {
  it('are for admins only', async () => {
    expect(codes(await t.gql(ExchangeTemplatesDocument, { search: 'okx' }, user.token))).toEqual([
      'FORBIDDEN',
    ]);
    expect(codes(await t.gql(ExchangeTemplateDocument, { ccxtId: 'okx' }))).toEqual([
      'UNAUTHENTICATED',
    ]);
  });

  it("draft OKX from ccxt's metadata: its credentials, testnet, signed proof, type, features, URLs and rate limit", async () => {
    expect(await template('okx')).toEqual({
      ccxtId: 'okx',
      name: 'OKX',
      requiredCredentials: ['API_KEY', 'SECRET', 'PASSWORD'],
      hasTestnet: true,
      signedProof: true,
      draft: {
        name: 'OKX',
        slug: 'okx',
        type: 'CEX',
        description: 'OKX, through ccxt\'s "okx" exchange (https://www.okx.com)',
        logo: expect.stringMatching(/^https:\/\//),
        ccxtId: 'okx',
        authFields: [
          expect.objectContaining({
            key: 'api_key',
            label: 'API Key',
            type: 'STRING',
            required: true,
            encrypted: false,
            ccxtCredential: 'API_KEY',
          }),
          expect.objectContaining({
            key: 'api_secret',
            label: 'API Secret',
            type: 'PASSWORD',
            required: true,
            encrypted: true,
            ccxtCredential: 'SECRET',
          }),
          expect.objectContaining({
            key: 'passphrase',
            label: 'API Passphrase',
            type: 'PASSWORD',
            required: true,
            encrypted: true,
            ccxtCredential: 'PASSWORD',
          }),
        ],
        features: {
          spot: true,
          futures: true,
          perpetuals: true,
          leverage: { min: 1, max: 1 },
          supportedAssets: [],
        },
        // ccxt waits 110 ms between OKX requests: 545 a minute.
        apiConfig: {
          baseUrl: 'https://www.okx.com',
          testnetUrl: 'https://www.okx.com',
          websocketUrl: null,
          rateLimit: 545,
        },
      },
    });
  });

  it('say where a key cannot be proven, which credential may be derived, and which is a PEM file', async () => {
    const hyperliquid = await template('hyperliquid');
    expect(hyperliquid).toMatchObject({
      signedProof: true,
      requiredCredentials: ['PRIVATE_KEY', 'WALLET_ADDRESS'],
      draft: { type: 'DEX', features: { leverage: { max: 50 } } },
    });
    expect(hyperliquid.draft.authFields.map((f) => [f.key, f.required])).toEqual([
      ['private_key', true],
      ['wallet_address', false],
    ]);
    expect(await template('dydx')).toMatchObject({
      signedProof: false,
      requiredCredentials: [],
      draft: { authFields: [{ key: 'wallet_address', required: true }] },
    });
    expect(
      (await template('coinbase')).draft.authFields.find((f) => f.ccxtCredential === 'SECRET'),
    ).toMatchObject({ type: 'FILE', encrypted: true });
    expect((await template('binanceusdm')).draft.type).toBe('PERPETUALS');
    expect((await template('kraken')).hasTestnet).toBe(false);
  });

  it('answer NOT_FOUND for an id ccxt does not know', async () => {
    const result = await t.gql(ExchangeTemplateDocument, { ccxtId: 'nosuchexchange' }, admin);
    expect(result.errors![0]).toMatchObject({
      message: 'ccxt has no exchange "nosuchexchange"',
      extensions: { code: 'NOT_FOUND' },
    });
  });

  it('search ids and names, case-insensitively, and list them by id', async () => {
    const ids = async (search: string) =>
      (await t.gql(ExchangeTemplatesDocument, { search }, admin)).data!.exchangeTemplates.map(
        (x) => x.ccxtId,
      );
    expect(await ids('BYBIT')).toEqual(['bybit', 'bybiteu', 'bybitid']);
    expect(await ids('Coinbase Adv')).toEqual(['coinbase']);
    expect(await ids('no exchange is called this')).toEqual([]);
  });
});

describe('a template', () => {
  const credential = async (definitionId: string, values: Record<string, string>) => {
    const created = await t.gql(
      CreateCredentialDocument,
      {
        input: {
          walletId: definitionId,
          name: 'From a template',
          values: Object.entries(values).map(([key, value]) => ({ key, value })),
        },
      },
      user.token,
    );
    if (!created.data) throw new Error(JSON.stringify(created.errors));
    const tested = await t.gql(
      TestCredentialConnectionDocument,
      { id: created.data.createCredential.id },
      user.token,
    );
    if (!tested.data) throw new Error(JSON.stringify(tested.errors));
    return tested.data.testCredentialConnection;
  };

  it.each([
    [
      'okx',
      () => okx.url,
      { api_key: SECRETS.okxKey, api_secret: SECRETS.okxSecret, passphrase: SECRETS.okxPassphrase },
      'USDT',
    ],
    [
      'kraken',
      () => kraken.url,
      { api_key: SECRETS.krakenKey, api_secret: SECRETS.krakenSecret },
      'USD',
    ],
    [
      'bybit',
      () => bybit.url,
      { api_key: SECRETS.bybitKey, api_secret: SECRETS.bybitSecret },
      'USDT',
    ],
  ])(
    'of %s becomes a working definition in one createWalletDefinition, whose keys are proven',
    async (ccxtId, url, values, asset) => {
      await wallets().deleteOne({ slug: ccxtId });
      const created = await t.gql(
        CreateWalletDefinitionDocument,
        { input: fromDraft(await template(ccxtId), url()) },
        admin,
      );
      expect(created.errors).toBeUndefined();
      expect(created.data!.createWalletDefinition).toMatchObject({
        slug: ccxtId,
        ccxtId,
        connectionTestable: true,
      });
      const outcome = await credential(created.data!.createWalletDefinition.id, values);
      expect(outcome).toMatchObject({
        ok: true,
        error: null,
        permissions: { withdraw: false },
        credential: { isConnected: true, permissions: { withdraw: false } },
      });
      expect(outcome.balances.map((b) => b.asset)).toContain(asset);
      expect(outcome.credential.balances).toEqual(outcome.balances);
      expect(JSON.stringify(outcome)).not.toContain(values.api_secret);
    },
  );

  it('of OKX says which part of a key is wrong', async () => {
    const id = (await wallets().findOne({ slug: 'okx' }))!._id.toHexString();
    expect(
      (
        await credential(id, {
          api_key: SECRETS.okxKey,
          api_secret: SECRETS.okxSecret,
          passphrase: 'not my passphrase',
        })
      ).error,
    ).toBe('the exchange rejected the passphrase');
    expect(
      (
        await credential(id, {
          api_key: fake('nobody', 36),
          api_secret: SECRETS.okxSecret,
          passphrase: SECRETS.okxPassphrase,
        })
      ).error,
    ).toBe('the exchange does not know this key');
  });

  it.each([
    ['kraken', "kraken needs a field for ccxt's secret (the API secret)"],
    ['bybit', "bybit needs a field for ccxt's secret (the API secret)"],
    ['okx', "okx needs a field for ccxt's secret (the API secret)"],
  ])('of %s without a required credential is refused', async (ccxtId, message) => {
    const input = fromDraft(await template(ccxtId));
    const result = await t.gql(
      CreateWalletDefinitionDocument,
      {
        input: {
          ...input,
          slug: `${ccxtId}-partial`,
          authFields: input.authFields.filter((f) => f.ccxtCredential !== 'SECRET'),
        },
      },
      admin,
    );
    expect(result.errors![0]).toMatchObject({
      message,
      extensions: { code: 'BAD_USER_INPUT', field: 'authFields' },
    });
    expect(await wallets().countDocuments({ slug: `${ccxtId}-partial` })).toBe(0);
  });

  it("of every exchange ccxt supports passes createWalletDefinition's validation as it is", async () => {
    const templates = (await t.gql(ExchangeTemplatesDocument, {}, admin)).data!.exchangeTemplates;
    expect(templates.length).toBeGreaterThan(100);
    expect(templates.map((x) => x.ccxtId)).toEqual([...templates.map((x) => x.ccxtId)].sort());
    await wallets().deleteMany({});
    const refused: Array<{ ccxtId: string; errors: unknown }> = [];
    for (const each of templates) {
      const result = await t.gql(CreateWalletDefinitionDocument, { input: fromDraft(each) }, admin);
      if (result.errors) refused.push({ ccxtId: each.ccxtId, errors: result.errors });
      else
        expect(result.data!.createWalletDefinition).toMatchObject({
          slug: each.ccxtId,
          ccxtId: each.ccxtId,
          connectionTestable: each.signedProof,
        });
    }
    expect(refused).toEqual([]);
    expect(await wallets().countDocuments({})).toBe(templates.length);
  });
});

describe('secrets', () => {
  it('never appear in the log output of this suite', () => {
    const logs = t.logs.join('\n');
    for (const secret of Object.values(SECRETS)) expect(logs).not.toContain(secret);
  });
});
