import { expect } from '@jest/globals';
import mongoose from 'mongoose';
import {
  CreateWalletDefinitionDocument,
  DeleteWalletDefinitionDocument,
  SeedWalletDefinitionsDocument,
  UpdateWalletDefinitionDocument,
  WalletDefinitionDocument,
  WalletDefinitionsDocument,
  WalletDefinitionsWithApiConfigDocument,
  type CreateWalletDefinitionInput,
} from './generated/graphql';
import { systemCtx } from '../src/core/context';
import { createLogger } from '../src/core/logger';
import { migrateToCcxt } from '../src/migrations/002-definition-ccxt-ids';
import { codes, startTestApp, type TestApp } from './helpers/app';
import { commandsFor } from './helpers/commands';
import { adminToken, agentToken, definitionInput, registerUser } from './helpers/factories';

let t: TestApp;
let admin: string;
let user: string;

beforeAll(async () => {
  t = await startTestApp();
  admin = await adminToken(t);
  user = (await registerUser(t)).token;
});
afterAll(() => t.close());

const wallets = () => mongoose.connection.db!.collection('wallets');
const create = (input: CreateWalletDefinitionInput, token = admin) =>
  t.gql(CreateWalletDefinitionDocument, { input }, token);

describe('the seeded catalog', () => {
  it('is there at start-up: Binance and Hyperliquid, in order', async () => {
    const list = await t.gql(WalletDefinitionsDocument, {});
    const seeded = list.data!.walletDefinitions.filter((d) =>
      ['binance', 'hyperliquid'].includes(d.slug),
    );
    expect(seeded.map((d) => d.slug)).toEqual(['binance', 'hyperliquid']);
    expect(seeded[0]).toMatchObject({
      name: 'Binance',
      type: 'CEX',
      isActive: true,
      order: 1,
      features: {
        spot: true,
        futures: true,
        perpetuals: true,
        leverage: { min: 1, max: 125 },
        supportedAssets: ['BTC', 'ETH', 'BNB', 'SOL', 'USDT'],
      },
    });
    expect(seeded[0].authFields.map((f) => [f.key, f.type, f.required, f.encrypted])).toEqual([
      ['api_key', 'STRING', true, false],
      ['api_secret', 'PASSWORD', true, true],
    ]);
  });

  it('gives Hyperliquid an optional, plain wallet_address next to the private key', async () => {
    const hl = await t.gql(WalletDefinitionDocument, { slug: 'hyperliquid' });
    expect(
      hl.data!.walletDefinition.authFields.map((f) => [f.key, f.required, f.encrypted]),
    ).toEqual([
      ['private_key', true, true],
      ['wallet_address', false, false],
    ]);
    expect(hl.data!.walletDefinition.type).toBe('PERPETUALS');
  });

  it("is stored under the spec's names, with the spec's indexes", async () => {
    const raw = await wallets().findOne({ slug: 'binance' });
    expect(raw).toMatchObject({
      type: 'cex',
      is_active: true,
      auth_fields: expect.arrayContaining([
        expect.objectContaining({
          key: 'api_secret',
          help_text: 'Keep this secret and never share it',
        }),
      ]),
      features: expect.objectContaining({ supported_assets: expect.any(Array) }),
      api_config: {
        base_url: 'https://api.binance.com',
        testnet_url: 'https://testnet.binance.vision',
        websocket_url: 'wss://stream.binance.com:9443',
        rate_limit: 1200,
      },
    });
    expect(raw!.created_at).toBeInstanceOf(Date);
    expect(raw!.updated_at).toBeInstanceOf(Date);
    const indexes = await wallets().indexes();
    expect(indexes).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ key: { slug: 1 }, unique: true }),
        expect.objectContaining({ key: { is_active: 1, order: 1 } }),
      ]),
    );
  });

  it("is re-seeded idempotently by an admin, keeping the admin's activation and order", async () => {
    await wallets().updateOne(
      { slug: 'binance' },
      { $set: { is_active: false, order: 7, name: 'Tampered', 'features.leverage.max': 3 } },
    );
    const first = await t.gql(SeedWalletDefinitionsDocument, {}, admin);
    const second = await t.gql(SeedWalletDefinitionsDocument, {}, admin);
    expect(second.data).toEqual(first.data);
    expect(await wallets().countDocuments({ slug: { $in: ['binance', 'hyperliquid'] } })).toBe(2);
    const binance = await wallets().findOne({ slug: 'binance' });
    expect(binance).toMatchObject({
      name: 'Binance',
      is_active: false,
      order: 7,
      features: expect.objectContaining({ leverage: { min: 1, max: 125 } }),
    });
    await wallets().updateOne({ slug: 'binance' }, { $set: { is_active: true, order: 1 } });
  });

  it('is seeded by admins only', async () => {
    expect(codes(await t.gql(SeedWalletDefinitionsDocument, {}, user))).toEqual(['FORBIDDEN']);
    expect(codes(await t.gql(SeedWalletDefinitionsDocument, {}))).toEqual(['UNAUTHENTICATED']);
  });
});

describe('createWalletDefinition', () => {
  it('creates a definition with valid data', async () => {
    const input = definitionInput({ slug: 'kraken', order: 5 });
    const result = await create(input);
    expect(result.errors).toBeUndefined();
    expect(result.data!.createWalletDefinition).toMatchObject({
      slug: 'kraken',
      name: 'Kraken',
      type: 'CEX',
      isActive: true,
      order: 5,
      apiConfig: { baseUrl: 'https://api.kraken.example', rateLimit: 600 },
    });
    expect(result.data!.createWalletDefinition.id).toMatch(/^[0-9a-f]{24}$/);
    const fetched = await t.gql(WalletDefinitionDocument, { slug: 'kraken' });
    expect(fetched.data!.walletDefinition.authFields).toHaveLength(2);
  });

  it('refuses a duplicate slug with CONFLICT', async () => {
    const input = definitionInput();
    expect((await create(input)).errors).toBeUndefined();
    const again = await create({ ...input, name: 'Another' });
    expect(codes(again)).toEqual(['CONFLICT']);
    expect(await wallets().countDocuments({ slug: input.slug })).toBe(1);
  });

  it('lets exactly one of concurrent creates of one slug win', async () => {
    const input = definitionInput();
    const results = await Promise.all(Array.from({ length: 8 }, () => create(input)));
    expect(results.filter((r) => !r.errors)).toHaveLength(1);
    expect(results.flatMap(codes).sort()).toEqual(Array(7).fill('CONFLICT'));
    expect(await wallets().countDocuments({ slug: input.slug })).toBe(1);
  });

  it('needs a token (UNAUTHENTICATED) and the ADMIN role (FORBIDDEN)', async () => {
    const input = definitionInput();
    expect(codes(await create(input, ''))).toEqual(['UNAUTHENTICATED']);
    expect(codes(await create(input, user))).toEqual(['FORBIDDEN']);
    expect(codes(await create(input, await agentToken(t)))).toEqual(['FORBIDDEN']);
    expect(await wallets().countDocuments({ slug: input.slug })).toBe(0);
  });

  it('places a definition without an order after the last one', async () => {
    const top = await wallets().find().sort({ order: -1 }).limit(1).next();
    const result = await create(definitionInput());
    expect(result.data!.createWalletDefinition.order).toBe(top!.order + 1);
  });

  const base = definitionInput();
  const invalid: Array<[string, Partial<CreateWalletDefinitionInput>, string]> = [
    ['an upper-case slug', { slug: 'Kraken' }, 'slug'],
    ['a slug starting with a dash', { slug: '-kraken' }, 'slug'],
    ['a one-character slug', { slug: 'k' }, 'slug'],
    ['a slug over 40 characters', { slug: 'k'.repeat(41) }, 'slug'],
    ['an empty name', { name: '' }, 'name'],
    ['no auth fields', { authFields: [] }, 'authFields'],
    [
      'duplicate auth field keys',
      { authFields: [base.authFields[0], { ...base.authFields[1], key: 'api_key' }] },
      'authFields',
    ],
    [
      'a camelCase auth field key',
      { authFields: [base.authFields[0], { ...base.authFields[1], key: 'apiSecret' }] },
      'authFields[1].key',
    ],
    [
      'leverage min of 0',
      { features: { ...base.features, leverage: { min: 0, max: 5 } } },
      'features.leverage.min',
    ],
    [
      'leverage min above max',
      { features: { ...base.features, leverage: { min: 10, max: 5 } } },
      'features.leverage.max',
    ],
    [
      'a rate limit of 0',
      { apiConfig: { ...base.apiConfig, rateLimit: 0 } },
      'apiConfig.rateLimit',
    ],
    [
      'a base URL that is not http(s)',
      { apiConfig: { ...base.apiConfig, baseUrl: 'ftp://api.example' } },
      'apiConfig.baseUrl',
    ],
    [
      'a testnet URL that is not a URL',
      { apiConfig: { ...base.apiConfig, testnetUrl: 'not a url' } },
      'apiConfig.testnetUrl',
    ],
    [
      'a websocket URL that is http',
      { apiConfig: { ...base.apiConfig, websocketUrl: 'https://ws.example' } },
      'apiConfig.websocketUrl',
    ],
    [
      'a lower-case asset',
      { features: { ...base.features, supportedAssets: ['BTC', 'eth'] } },
      'features.supportedAssets',
    ],
    [
      'a repeated asset',
      { features: { ...base.features, supportedAssets: ['BTC', 'BTC'] } },
      'features.supportedAssets',
    ],
  ];

  it.each(invalid)(
    'rejects %s with BAD_USER_INPUT naming the field, and stores nothing',
    async (_what, change, field) => {
      const input = definitionInput(change);
      const result = await create(input);
      expect(result.errors).toHaveLength(1);
      expect(result.errors![0].extensions).toEqual({ code: 'BAD_USER_INPUT', field });
      expect(result.errors![0].message.startsWith(`${field}: `)).toBe(true);
      expect(await wallets().countDocuments({ slug: input.slug })).toBe(0);
    },
  );

  it('rejects an unknown enum value before anything runs', async () => {
    const result = await t.raw(
      'mutation ($input: CreateWalletDefinitionInput!) { createWalletDefinition(input: $input) { slug } }',
      { input: { ...definitionInput(), type: 'BANK' } },
      admin,
    );
    expect(codes(result)).toEqual(['BAD_USER_INPUT']);
  });
});

describe('walletDefinitions and walletDefinition', () => {
  let dexSlug: string;
  let inactiveSlug: string;

  beforeAll(async () => {
    dexSlug = (await create(definitionInput({ name: 'Uniswap', type: 'DEX', order: 100 }))).data!
      .createWalletDefinition.slug;
    inactiveSlug = (await create(definitionInput({ name: 'Retired', isActive: false, order: 100 })))
      .data!.createWalletDefinition.slug;
  });

  it('lists active definitions to anyone, sorted by order then name', async () => {
    const list = (await t.gql(WalletDefinitionsDocument, {})).data!.walletDefinitions;
    expect(list.every((d) => d.isActive)).toBe(true);
    const keys = list.map((d) => [d.order, d.name] as const);
    const sorted = [...keys].sort(
      (a, b) => a[0] - b[0] || (a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0),
    );
    expect(keys).toEqual(sorted);
    expect(list.map((d) => d.slug)).not.toContain(inactiveSlug);
  });

  it('filters by type', async () => {
    const dex = (await t.gql(WalletDefinitionsDocument, { filter: { type: 'DEX' } })).data!
      .walletDefinitions;
    expect(dex.map((d) => d.slug)).toEqual([dexSlug]);
    const perps = (await t.gql(WalletDefinitionsDocument, { filter: { type: 'PERPETUALS' } })).data!
      .walletDefinitions;
    expect(perps.map((d) => d.slug)).toEqual(['hyperliquid']);
  });

  it('filters by isActive', async () => {
    const inactive = (await t.gql(WalletDefinitionsDocument, { filter: { isActive: false } })).data!
      .walletDefinitions;
    expect(inactive.map((d) => d.slug)).toContain(inactiveSlug);
    expect(inactive.every((d) => !d.isActive)).toBe(true);
  });

  it('gets one by slug, and NOT_FOUND for an unknown slug', async () => {
    const found = await t.gql(WalletDefinitionDocument, { slug: dexSlug });
    expect(found.data!.walletDefinition).toMatchObject({
      slug: dexSlug,
      name: 'Uniswap',
      type: 'DEX',
    });
    const missing = await t.gql(WalletDefinitionDocument, { slug: 'no-such-exchange' });
    expect(codes(missing)).toEqual(['NOT_FOUND']);
  });

  it('shows apiConfig to admins and FORBIDDEN to everyone else', async () => {
    const forAdmin = await t.gql(WalletDefinitionsWithApiConfigDocument, {}, admin);
    expect(forAdmin.errors).toBeUndefined();
    expect(
      forAdmin.data!.walletDefinitions.find((d) => d.slug === 'binance')!.apiConfig!.baseUrl,
    ).toBe('https://api.binance.com');

    for (const token of [user, undefined]) {
      const result = await t.gql(WalletDefinitionsWithApiConfigDocument, {}, token);
      expect(result.data!.walletDefinitions.every((d) => d.apiConfig === null)).toBe(true);
      expect(new Set(codes(result))).toEqual(new Set(['FORBIDDEN']));
      expect(JSON.stringify(result)).not.toContain('api.binance.com');
    }
  });
});

describe('updateWalletDefinition', () => {
  it('changes only the fields given', async () => {
    const input = definitionInput();
    const created = (await create(input)).data!.createWalletDefinition;
    const result = await t.gql(
      UpdateWalletDefinitionDocument,
      {
        slug: input.slug,
        input: { name: 'Kraken Pro', apiConfig: { ...input.apiConfig, rateLimit: 900 } },
      },
      admin,
    );
    expect(result.errors).toBeUndefined();
    const updated = result.data!.updateWalletDefinition;
    expect(updated).toMatchObject({
      name: 'Kraken Pro',
      slug: input.slug,
      type: 'CEX',
      description: 'A test exchange',
      apiConfig: { rateLimit: 900 },
    });
    expect(updated.authFields).toEqual(created.authFields);
    expect(new Date(updated.updatedAt).getTime()).toBeGreaterThanOrEqual(
      new Date(created.updatedAt).getTime(),
    );
  });

  it('clears an optional field given as null, and keeps required ones given as null', async () => {
    const input = definitionInput();
    await create(input);
    const result = await t.gql(
      UpdateWalletDefinitionDocument,
      { slug: input.slug, input: { description: null, name: null } },
      admin,
    );
    expect(result.data!.updateWalletDefinition).toMatchObject({
      description: null,
      name: 'Kraken',
    });
  });

  it('validates like create, and changes nothing when it fails', async () => {
    const input = definitionInput();
    await create(input);
    const result = await t.gql(
      UpdateWalletDefinitionDocument,
      {
        slug: input.slug,
        input: { name: 'Changed', features: { ...input.features, leverage: { min: 5, max: 2 } } },
      },
      admin,
    );
    expect(result.errors![0].extensions).toEqual({
      code: 'BAD_USER_INPUT',
      field: 'features.leverage.max',
    });
    expect(await wallets().findOne({ slug: input.slug })).toMatchObject({
      name: 'Kraken',
      features: expect.objectContaining({ leverage: { min: 1, max: 5 } }),
    });
  });

  it('never changes the slug: the input has no such field', async () => {
    const result = await t.raw(
      'mutation { updateWalletDefinition(slug: "binance", input: { slug: "binance-2" }) { slug } }',
      {},
      admin,
    );
    expect(codes(result)).toEqual(['BAD_USER_INPUT']);
    expect(await wallets().countDocuments({ slug: 'binance' })).toBe(1);
  });

  it('answers NOT_FOUND for an unknown slug', async () => {
    const result = await t.gql(
      UpdateWalletDefinitionDocument,
      { slug: 'no-such-exchange', input: { name: 'x' } },
      admin,
    );
    expect(codes(result)).toEqual(['NOT_FOUND']);
  });

  it('is for admins only', async () => {
    const result = await t.gql(
      UpdateWalletDefinitionDocument,
      { slug: 'binance', input: { name: 'Hacked' } },
      user,
    );
    expect(codes(result)).toEqual(['FORBIDDEN']);
    expect(await wallets().findOne({ slug: 'binance' })).toMatchObject({ name: 'Binance' });
  });
});

describe('deleteWalletDefinition', () => {
  it('soft-deletes: the definition stays, inactive, and leaves the default list', async () => {
    const input = definitionInput();
    await create(input);
    const result = await t.gql(DeleteWalletDefinitionDocument, { slug: input.slug }, admin);
    expect(result.data!.deleteWalletDefinition).toEqual({ slug: input.slug, isActive: false });
    expect(await wallets().findOne({ slug: input.slug })).toMatchObject({ is_active: false });
    const list = (await t.gql(WalletDefinitionsDocument, {})).data!.walletDefinitions;
    expect(list.map((d) => d.slug)).not.toContain(input.slug);
    const stillThere = await t.gql(WalletDefinitionDocument, { slug: input.slug });
    expect(stillThere.data!.walletDefinition.isActive).toBe(false);
  });

  it('can be undone by an update', async () => {
    const input = definitionInput();
    await create(input);
    await t.gql(DeleteWalletDefinitionDocument, { slug: input.slug }, admin);
    const back = await t.gql(
      UpdateWalletDefinitionDocument,
      { slug: input.slug, input: { isActive: true } },
      admin,
    );
    expect(back.data!.updateWalletDefinition.isActive).toBe(true);
  });

  it('is for admins only, and NOT_FOUND for an unknown slug', async () => {
    expect(codes(await t.gql(DeleteWalletDefinitionDocument, { slug: 'binance' }, user))).toEqual([
      'FORBIDDEN',
    ]);
    expect(codes(await t.gql(DeleteWalletDefinitionDocument, { slug: 'binance' }))).toEqual([
      'UNAUTHENTICATED',
    ]);
    expect(
      codes(await t.gql(DeleteWalletDefinitionDocument, { slug: 'no-such-exchange' }, admin)),
    ).toEqual(['NOT_FOUND']);
    expect(await wallets().findOne({ slug: 'binance' })).toMatchObject({ is_active: true });
  });
});

describe('the catalog cache', () => {
  it('serves a write through this instance on the very next read', async () => {
    const input = definitionInput({ name: 'Cached', type: 'DEX' });
    const before = (await t.gql(WalletDefinitionsDocument, { filter: { type: 'DEX' } })).data!
      .walletDefinitions;
    await create(input);
    const afterCreate = (await t.gql(WalletDefinitionsDocument, { filter: { type: 'DEX' } })).data!
      .walletDefinitions;
    expect(afterCreate.map((d) => d.slug)).toEqual([...before.map((d) => d.slug), input.slug]);
    await t.gql(
      UpdateWalletDefinitionDocument,
      { slug: input.slug, input: { name: 'Cached 2' } },
      admin,
    );
    expect(
      (
        await t.gql(WalletDefinitionsDocument, { filter: { type: 'DEX' } })
      ).data!.walletDefinitions.find((d) => d.slug === input.slug)!.name,
    ).toBe('Cached 2');
    await t.gql(DeleteWalletDefinitionDocument, { slug: input.slug }, admin);
    expect(
      (
        await t.gql(WalletDefinitionsDocument, { filter: { type: 'DEX' } })
      ).data!.walletDefinitions.map((d) => d.slug),
    ).not.toContain(input.slug);
  });

  it('answers repeated reads from memory, without a database command', async () => {
    await t.gql(WalletDefinitionsDocument, {});
    // The service's own work (the agent-token refresh every 2 s) is no request's.
    const commands = await commandsFor(async () => {
      for (let i = 0; i < 5; i++)
        expect((await t.gql(WalletDefinitionsDocument, {})).errors).toBeUndefined();
    });
    expect(commands).toEqual([]);
  });
});

describe('the ccxt mapping', () => {
  const okxFields = (withPassphrase = true): CreateWalletDefinitionInput['authFields'] => [
    { key: 'api_key', label: 'API Key', type: 'STRING', required: true, encrypted: false },
    { key: 'api_secret', label: 'API Secret', type: 'PASSWORD', required: true, encrypted: true },
    ...(withPassphrase
      ? [
          {
            key: 'passphrase',
            label: 'Passphrase',
            type: 'PASSWORD' as const,
            required: true,
            encrypted: true,
          },
        ]
      : []),
  ];

  it("names the seeded entries' ccxt ids and credentials, stored snake_case as ccxt spells them", async () => {
    const binance = (await t.gql(WalletDefinitionDocument, { slug: 'binance' })).data!
      .walletDefinition;
    expect(binance).toMatchObject({ ccxtId: 'binance', connectionTestable: true });
    expect(binance.authFields.map((f) => f.ccxtCredential)).toEqual(['API_KEY', 'SECRET']);
    const hl = (await t.gql(WalletDefinitionDocument, { slug: 'hyperliquid' })).data!
      .walletDefinition;
    expect(hl).toMatchObject({ ccxtId: 'hyperliquid', connectionTestable: true });
    expect(hl.authFields.map((f) => f.ccxtCredential)).toEqual(['PRIVATE_KEY', 'WALLET_ADDRESS']);
    expect(await wallets().findOne({ slug: 'hyperliquid' })).toMatchObject({
      ccxt_id: 'hyperliquid',
      auth_fields: [
        expect.objectContaining({ ccxt_credential: 'privateKey' }),
        expect.objectContaining({ ccxt_credential: 'walletAddress' }),
      ],
    });
  });

  it('takes the slug as ccxt id when ccxt has that exchange, and none otherwise', async () => {
    await wallets().deleteOne({ slug: 'bybit' });
    const bybit = await create(definitionInput({ slug: 'bybit', name: 'Bybit' }));
    expect(bybit.data!.createWalletDefinition).toMatchObject({
      ccxtId: 'bybit',
      connectionTestable: true,
    });
    const other = await create(definitionInput());
    expect(other.data!.createWalletDefinition).toMatchObject({
      ccxtId: null,
      connectionTestable: false,
    });
    const named = await create(definitionInput({ ccxtId: 'kraken' }));
    expect(named.data!.createWalletDefinition.ccxtId).toBe('kraken');
    const none = await create(
      definitionInput({ slug: 'bitget', ccxtId: null, authFields: definitionInput().authFields }),
    );
    expect(none.data!.createWalletDefinition.ccxtId).toBeNull();
    const dydx = await create(
      definitionInput({
        ccxtId: 'dydx',
        authFields: [
          {
            key: 'wallet_address',
            label: 'Address',
            type: 'STRING',
            required: true,
            encrypted: false,
          },
        ],
      }),
    );
    expect(dydx.data!.createWalletDefinition).toMatchObject({
      ccxtId: 'dydx',
      connectionTestable: false,
    });
  });

  it("takes each field's ccxt credential from its key unless given", async () => {
    const result = await create(
      definitionInput({
        ccxtId: 'okx',
        authFields: [
          ...okxFields(),
          { key: 'memo', label: 'Memo', type: 'STRING', required: false, encrypted: false },
          {
            key: 'trading_password',
            label: 'Trading password',
            type: 'PASSWORD',
            required: false,
            encrypted: true,
            ccxtCredential: 'TWOFA',
          },
        ],
      }),
    );
    expect(result.errors).toBeUndefined();
    expect(
      result.data!.createWalletDefinition.authFields.map((f) => [f.key, f.ccxtCredential]),
    ).toEqual([
      ['api_key', 'API_KEY'],
      ['api_secret', 'SECRET'],
      ['passphrase', 'PASSWORD'],
      ['memo', null],
      ['trading_password', 'TWOFA'],
    ]);
  });

  const refused: Array<[string, Partial<CreateWalletDefinitionInput>, string, string]> = [
    [
      'an id ccxt does not know',
      { ccxtId: 'nosuchexchange' },
      'ccxtId',
      'ccxt has no exchange "nosuchexchange"',
    ],
    [
      'an id that is no ccxt id',
      { ccxtId: 'Not An Id' },
      'ccxtId',
      'ccxtId: must be a ccxt exchange id (lower-case letters and digits, such as okx)',
    ],
    [
      'OKX without a field for the passphrase',
      { ccxtId: 'okx', authFields: okxFields(false) },
      'authFields',
      "okx needs a field for ccxt's password (the API passphrase)",
    ],
    [
      'a credential given by two fields',
      {
        ccxtId: 'okx',
        authFields: [
          ...okxFields(),
          {
            key: 'secret',
            label: 'Secret again',
            type: 'PASSWORD',
            required: false,
            encrypted: true,
          },
        ],
      },
      'authFields[3].ccxtCredential',
      "api_secret and secret are both ccxt's secret (the API secret): one field per credential",
    ],
    [
      'a required credential by an optional field',
      {
        ccxtId: 'okx',
        authFields: okxFields().map((f) =>
          f.key === 'passphrase' ? { ...f, required: false } : f,
        ),
      },
      'authFields[2].required',
      "okx needs ccxt's password (the API passphrase): the passphrase field must be required",
    ],
  ];

  it.each(refused)(
    'refuses %s with BAD_USER_INPUT naming it, and stores nothing',
    async (_what, change, field, message) => {
      const input = definitionInput(change);
      const result = await create(input);
      expect(result.errors![0].extensions).toEqual({ code: 'BAD_USER_INPUT', field });
      expect(result.errors![0].message).toBe(message);
      expect(await wallets().countDocuments({ slug: input.slug })).toBe(0);
    },
  );

  it("lets a credential the exchange's own check derives be optional (Hyperliquid's wallet address)", async () => {
    const result = await create(
      definitionInput({
        ccxtId: 'hyperliquid',
        authFields: [
          {
            key: 'private_key',
            label: 'Private Key',
            type: 'PASSWORD',
            required: true,
            encrypted: true,
          },
          {
            key: 'wallet_address',
            label: 'Wallet Address',
            type: 'STRING',
            required: false,
            encrypted: false,
          },
        ],
      }),
    );
    expect(result.errors).toBeUndefined();
    expect(
      codes(
        await create(
          definitionInput({
            ccxtId: 'hyperliquid',
            authFields: [
              {
                key: 'wallet_address',
                label: 'Address',
                type: 'STRING',
                required: false,
                encrypted: false,
              },
            ],
          }),
        ),
      ),
    ).toEqual(['BAD_USER_INPUT']);
  });

  it('checks an update against what is stored of the rest, and changes nothing when it fails', async () => {
    const input = definitionInput();
    await create(input);
    const toOkx = await t.gql(
      UpdateWalletDefinitionDocument,
      { slug: input.slug, input: { ccxtId: 'okx', name: 'Changed' } },
      admin,
    );
    expect(toOkx.errors![0]).toMatchObject({
      message: "okx needs a field for ccxt's password (the API passphrase)",
      extensions: { code: 'BAD_USER_INPUT', field: 'authFields' },
    });
    expect(await wallets().findOne({ slug: input.slug })).toMatchObject({
      ccxt_id: null,
      name: 'Kraken',
    });

    const both = await t.gql(
      UpdateWalletDefinitionDocument,
      { slug: input.slug, input: { ccxtId: 'okx', authFields: okxFields() } },
      admin,
    );
    expect(both.data!.updateWalletDefinition).toMatchObject({
      ccxtId: 'okx',
      connectionTestable: true,
    });
    const fewer = await t.gql(
      UpdateWalletDefinitionDocument,
      { slug: input.slug, input: { authFields: okxFields(false) } },
      admin,
    );
    expect(fewer.errors![0].extensions).toEqual({ code: 'BAD_USER_INPUT', field: 'authFields' });
    expect(
      codes(
        await t.gql(
          UpdateWalletDefinitionDocument,
          { slug: input.slug, input: { ccxtId: 'nosuchexchange' } },
          admin,
        ),
      ),
    ).toEqual(['BAD_USER_INPUT']);
    const cleared = await t.gql(
      UpdateWalletDefinitionDocument,
      { slug: input.slug, input: { ccxtId: null } },
      admin,
    );
    expect(cleared.data!.updateWalletDefinition).toMatchObject({
      ccxtId: null,
      connectionTestable: false,
    });
    expect(
      codes(
        await t.gql(
          UpdateWalletDefinitionDocument,
          { slug: 'no-such-exchange', input: { ccxtId: 'okx' } },
          admin,
        ),
      ),
    ).toEqual(['NOT_FOUND']);
  });

  it('gives definitions stored before it their defaults at start-up, once', async () => {
    const old = (slug: string) => ({
      name: slug,
      slug,
      type: 'cex',
      description: null,
      logo: null,
      auth_fields: [
        {
          key: 'api_key',
          label: 'API Key',
          type: 'string',
          required: true,
          encrypted: false,
          placeholder: null,
          help_text: null,
        },
        {
          key: 'api_secret',
          label: 'API Secret',
          type: 'password',
          required: true,
          encrypted: true,
          placeholder: null,
          help_text: null,
        },
        {
          key: 'memo',
          label: 'Memo',
          type: 'string',
          required: false,
          encrypted: false,
          placeholder: null,
          help_text: null,
        },
      ],
      features: {
        spot: true,
        futures: false,
        perpetuals: false,
        leverage: { min: 1, max: 1 },
        supported_assets: [],
      },
      api_config: {
        base_url: 'https://api.example.com',
        testnet_url: null,
        websocket_url: null,
        rate_limit: 60,
      },
      is_active: true,
      order: 50,
      created_at: new Date('2026-01-01'),
      updated_at: new Date('2026-01-01'),
    });
    await wallets().deleteMany({ slug: { $in: ['gate', 'legacy-exchange'] } });
    await wallets().insertMany([old('gate'), old('legacy-exchange')]);
    // Read as they are: no ccxt id, no credentials.
    const before = (await t.gql(WalletDefinitionDocument, { slug: 'gate' })).data!.walletDefinition;
    expect([before.ccxtId, ...before.authFields.map((f) => f.ccxtCredential)]).toEqual([
      null,
      null,
      null,
      null,
    ]);

    const ctx = systemCtx(createLogger({ logLevel: 'silent' }), 'migrations');
    expect(await migrateToCcxt(ctx)).toBe(2);
    expect(await wallets().findOne({ slug: 'gate' })).toMatchObject({
      ccxt_id: 'gate',
      updated_at: new Date('2026-01-01'),
      auth_fields: [
        expect.objectContaining({ ccxt_credential: 'apiKey' }),
        expect.objectContaining({ ccxt_credential: 'secret' }),
        expect.objectContaining({ ccxt_credential: null }),
      ],
    });
    expect(await wallets().findOne({ slug: 'legacy-exchange' })).toMatchObject({ ccxt_id: null });
    expect(await migrateToCcxt(ctx)).toBe(0);
  });
});
