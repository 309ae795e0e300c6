import { expect } from '@jest/globals';
import fc from 'fast-check';
import mongoose from 'mongoose';
import { isSafeText } from '../src/shared/validators';
import { startTestApp, type TestApp } from './helpers/app';
import {
  adminToken,
  agentToken,
  binanceCredential,
  definitionInput,
  limits,
  registerUser,
  userWallet,
  type TestUser,
} from './helpers/factories';
import type {
  StoredCredential,
  StoredDefinition,
  StoredName,
  StoredUser,
  StoredWallet,
} from './helpers/stored';

/**
 * Random and hostile input through variables to every mutation: each answer is a success or a
 * coded error (never INTERNAL_SERVER_ERROR, never a 5xx), and every stored document still keeps
 * the service's rules.
 */

const ALLOWED = new Set([
  'UNAUTHENTICATED',
  'FORBIDDEN',
  'NOT_FOUND',
  'BAD_USER_INPUT',
  'CONFLICT',
  'RATE_LIMITED',
]);
const RUNS = 40;

let t: TestApp;
let admin: string;
let agent: string;
let user: TestUser;
let credentialId: string;
let spareCredentialId: string;
let walletId: string;
let binanceId: string;

const hostile = fc.oneof(
  // Numbers at and beyond every bound come first: most rules are about them.
  {
    arbitrary: fc.constantFrom(
      0,
      -0,
      -1,
      1,
      0.5,
      3,
      4,
      10,
      11,
      50,
      51,
      100,
      100.5,
      101,
      125,
      126,
      1000,
      1000.01,
      1001,
      2 ** 31,
      2 ** 53 + 1,
      1e308,
      -1e308,
      Number.MIN_VALUE,
    ),
    weight: 6,
  },
  fc.string({ maxLength: 50 }),
  fc.string({ unit: 'grapheme', maxLength: 30 }),
  fc.string({
    unit: fc.constantFrom(
      '\u0000',
      '\u0007',
      '\n',
      '\r',
      '\u202e',
      '\ufeff',
      '\ud800',
      '$',
      '.',
      '{',
      '"',
    ),
    maxLength: 20,
  }),
  fc.constantFrom(
    '',
    ' ',
    'x'.repeat(20_000),
    '0'.repeat(24),
    'zzzzzzzzzzzzzzzzzzzzzzzz',
    '$gt',
    'a.b',
    'null',
    'undefined',
    '__proto__',
    'constructor',
  ),
  fc.constantFrom(
    { $gt: '' },
    { $ne: null },
    { $where: 'sleep(1000)' },
    { $regex: '.*' },
    ['$gt'],
    { __proto__: { admin: true } },
  ),
  fc.double(),
  fc.integer(),
  fc.boolean(),
  fc.constant(null),
  fc.constantFrom(
    'ACTIVE',
    'AI_PAUSED',
    'BINANCE',
    'cex',
    'CEX',
    'MAINNET',
    'mainnet',
    'NEUTRAL',
    'BULLISH',
  ),
);

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** Every path to a leaf of a JSON value. */
function leaves(value: Json, path: Array<string | number> = []): Array<Array<string | number>> {
  if (value !== null && typeof value === 'object') {
    const entries = Array.isArray(value)
      ? value.map((v, i) => [i, v] as const)
      : Object.entries(value);
    const below = entries.flatMap(([k, v]) => leaves(v, [...path, k]));
    return below.length > 0 ? [path, ...below] : [path];
  }
  return [path];
}

function replaced(value: Json, path: Array<string | number>, by: unknown): Json {
  if (path.length === 0) return by as Json;
  const copy = (
    Array.isArray(value) ? [...value] : { ...(value as Record<string, Json>) }
  ) as Record<string | number, Json>;
  copy[path[0]] = replaced(copy[path[0]], path.slice(1), by);
  return copy;
}

/**
 * A valid set of variables with one to three of its parts (leaves or whole objects) made hostile.
 */
const spoiled = (valid: Record<string, Json>) =>
  fc.array(fc.tuple(fc.nat(), hostile), { minLength: 1, maxLength: 3 }).map((changes) => {
    let variables: Json = valid;
    for (const [n, value] of changes) {
      const paths = leaves(variables).filter((p) => p.length > 0);
      variables = replaced(variables, paths[n % paths.length], value);
    }
    return variables as Record<string, Json>;
  });

const EDGE_NUMBERS = [0, -0, -1, 0.5, 101, 1001, 2 ** 31, 1e308];
const EDGE_VALUES: unknown[] = ['', ' \t ', 'a\u0000b', { $gt: '' }, 'x'.repeat(20_000), null];

/** Deterministic cases first: every leaf in turn set to each edge value of its kind. */
function edgeCases(valid: Record<string, Json>): Array<[Record<string, Json>]> {
  return leaves(valid)
    .filter((p) => p.length > 0)
    .flatMap((path) => {
      const leaf = path.reduce<Json>((v, k) => (v as Record<string | number, Json>)[k], valid);
      const edges =
        typeof leaf === 'number' ? EDGE_NUMBERS : typeof leaf === 'string' ? EDGE_VALUES : [];
      return edges.map(
        (edge) => [replaced(valid, path, edge) as Record<string, Json>] as [Record<string, Json>],
      );
    });
}

async function send(query: string, variables: Record<string, Json>, token?: string) {
  const response = await fetch(`${t.url}/graphql`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: JSON.stringify({ query, variables }),
  });
  const text = await response.text();
  expect({ status: response.status, text: text.slice(0, 300) }).toEqual({
    status: expect.any(Number),
    text: expect.any(String),
  });
  expect(response.status).toBeLessThan(500);
  const body = JSON.parse(text) as {
    data?: unknown;
    errors?: Array<{ extensions?: { code?: string } }>;
  };
  for (const error of body.errors ?? []) {
    expect({ code: error.extensions?.code, in: ALLOWED.has(error.extensions?.code ?? '') }).toEqual(
      { code: error.extensions?.code, in: true },
    );
  }
  return body;
}

beforeAll(async () => {
  t = await startTestApp({
    RATE_LIMIT_USER_PER_MINUTE: '1000000',
    RATE_LIMIT_AGENT_PER_MINUTE: '1000000',
    RATE_LIMIT_LOGIN_FAILURES: '1000000',
  });
  admin = await adminToken(t);
  agent = await agentToken(t);
  user = await registerUser(t);
  credentialId = await binanceCredential(t, user);
  walletId = (await userWallet(t, user, credentialId)).id;
  spareCredentialId = await binanceCredential(t, user, 'spare');
  binanceId = (
    await t.raw<{ walletDefinition: { id: string } }>(
      '{ walletDefinition(slug: "binance") { id } }',
    )
  ).data!.walletDefinition.id;
});
afterAll(() => t.close());

const token = {
  admin: () => admin,
  agent: () => agent,
  user: () => user.token,
  none: () => undefined,
};

const operations: Array<[string, string, () => Record<string, Json>, keyof typeof token]> = [
  [
    'register',
    'mutation ($input: RegisterInput!) { register(input: $input) { token } }',
    () => ({ input: { email: 'fuzz@example.com', password: 'long enough password', name: 'F' } }),
    'none',
  ],
  [
    'login',
    'mutation ($email: String!, $password: String!) { login(email: $email, password: $password) { token } }',
    () => ({ email: user.email, password: 'nope' }),
    'none',
  ],
  [
    'changePassword',
    'mutation ($c: String!, $n: String!) { changePassword(currentPassword: $c, newPassword: $n) { token } }',
    () => ({ c: 'not the password', n: 'a new long password' }),
    'user',
  ],
  [
    'issueAgentToken',
    'mutation ($name: String!, $days: Int) { issueAgentToken(name: $name, expiresInDays: $days) { name } }',
    () => ({ name: 'fuzz', days: 3 }),
    'admin',
  ],
  [
    'revokeAgentToken',
    'mutation ($id: ObjectID!) { revokeAgentToken(id: $id) { id } }',
    () => ({ id: '0123456789abcdef01234567' }),
    'admin',
  ],
  [
    'createWalletDefinition',
    'mutation ($input: CreateWalletDefinitionInput!) { createWalletDefinition(input: $input) { slug } }',
    () => ({ input: definitionInput() }),
    'admin',
  ],
  [
    'updateWalletDefinition',
    'mutation ($slug: String!, $input: UpdateWalletDefinitionInput!) { updateWalletDefinition(slug: $slug, input: $input) { slug } }',
    () => ({
      slug: 'hyperliquid',
      input: {
        name: 'Hyperliquid',
        order: 2,
        features: {
          spot: false,
          futures: false,
          perpetuals: true,
          leverage: { min: 1, max: 50 },
          supportedAssets: ['BTC', 'ETH', 'SOL'],
        },
      },
    }),
    'admin',
  ],
  [
    'deleteWalletDefinition',
    'mutation ($slug: String!) { deleteWalletDefinition(slug: $slug) { slug } }',
    () => ({ slug: 'no-such-thing' }),
    'admin',
  ],
  [
    'createCredential',
    'mutation ($input: CreateCredentialInput!) { createCredential(input: $input) { id } }',
    () => ({
      input: {
        walletId: binanceId,
        name: 'fuzz',
        environment: 'TESTNET',
        values: [
          { key: 'api_key', value: 'k'.repeat(16) },
          { key: 'api_secret', value: 's'.repeat(16) },
        ],
      },
    }),
    'user',
  ],
  [
    'updateCredential',
    'mutation ($id: ObjectID!, $input: UpdateCredentialInput!) { updateCredential(id: $id, input: $input) { id } }',
    () => ({
      id: credentialId,
      input: {
        name: 'renamed',
        values: [
          { key: 'api_key', value: 'k'.repeat(16) },
          { key: 'api_secret', value: 's'.repeat(16) },
        ],
      },
    }),
    'user',
  ],
  [
    'deleteCredential',
    'mutation ($id: ObjectID!) { deleteCredential(id: $id) { id } }',
    () => ({ id: '0123456789abcdef01234567' }),
    'user',
  ],
  [
    'testCredentialConnection',
    'mutation ($id: ObjectID!) { testCredentialConnection(id: $id) { ok } }',
    () => ({ id: '0123456789abcdef01234567' }),
    'user',
  ],
  [
    'createUserWallet',
    'mutation ($input: CreateUserWalletInput!) { createUserWallet(input: $input) { id } }',
    () => ({
      input: {
        credentialId: spareCredentialId,
        name: 'fuzz',
        userLimits: limits({ allowedSymbols: ['BTC/USDT'] }) as unknown as Json,
      },
    }),
    'user',
  ],
  [
    'updateUserWallet',
    'mutation ($id: ObjectID!, $input: UpdateUserWalletInput!) { updateUserWallet(id: $id, input: $input) { id } }',
    () => ({
      id: walletId,
      input: { name: 'w', userLimits: limits({ allowedSymbols: ['ETH'] }) as unknown as Json },
    }),
    'user',
  ],
  [
    'pauseUserWallet',
    'mutation ($id: ObjectID!) { pauseUserWallet(id: $id) { id } }',
    () => ({ id: walletId }),
    'user',
  ],
  [
    'resumeUserWallet',
    'mutation ($id: ObjectID!) { resumeUserWallet(id: $id) { id } }',
    () => ({ id: walletId }),
    'user',
  ],
  [
    'deleteUserWallet',
    'mutation ($id: ObjectID!) { deleteUserWallet(id: $id) { id } }',
    () => ({ id: '0123456789abcdef01234567' }),
    'user',
  ],
  [
    'updateAiManagedState',
    'mutation ($id: ObjectID!, $input: AiManagedStateInput!, $v: Int) { updateAiManagedState(walletId: $id, input: $input, expectedVersion: $v) { id } }',
    () => ({
      id: walletId,
      v: null,
      input: {
        currentRisk: 10,
        dailyPnl: -1.5,
        openPositions: 1,
        currentMaxPositionSize: 100,
        currentLeverage: 2,
        adaptiveStopLoss: 5,
        riskScore: 40,
        marketSentiment: 'BULLISH',
        confidenceLevel: 70,
      },
    }),
    'agent',
  ],
  [
    'updateAiManagedStates',
    'mutation ($updates: [AiStateUpdateInput!]!) { updateAiManagedStates(updates: $updates) { walletId error { code } } }',
    (): Record<string, Json> => ({
      updates: [
        {
          walletId,
          expectedVersion: null,
          input: {
            currentRisk: 10,
            dailyPnl: -1.5,
            openPositions: 1,
            currentMaxPositionSize: 100,
            currentLeverage: 2,
            adaptiveStopLoss: 5,
            riskScore: 40,
            marketSentiment: 'BEARISH',
            confidenceLevel: 70,
          },
        },
        { walletId, input: { riskScore: 41 } },
      ],
    }),
    'agent',
  ],
  [
    'aiPauseWallet',
    'mutation ($id: ObjectID!, $reason: String!) { aiPauseWallet(walletId: $id, reason: $reason) { id } }',
    () => ({ id: walletId, reason: 'fuzz' }),
    'agent',
  ],
  [
    'aiResumeWallet',
    'mutation ($id: ObjectID!) { aiResumeWallet(walletId: $id) { id } }',
    () => ({ id: walletId }),
    'agent',
  ],
];

describe('hostile input', () => {
  it.each(operations)(
    '%s answers every input with success or a coded error',
    async (name, query, valid, who) => {
      await fc.assert(
        fc.asyncProperty(spoiled(valid()), async (variables) => {
          const body = await send(query, variables, token[who]());
          // A batch answers each write's failure in its outcome: coded like an error of its own.
          for (const outcome of (
            body.data as
              { updateAiManagedStates?: Array<{ error: { code: string } | null }> } | undefined
          )?.updateAiManagedStates ?? []) {
            if (outcome.error)
              expect({ code: outcome.error.code, in: ALLOWED.has(outcome.error.code) }).toEqual({
                code: outcome.error.code,
                in: true,
              });
          }
          // A wallet that got through is paused: it stays stored for the final check, and its
          // credential is free again for the next create.
          const created = (body.data as { createUserWallet?: { id: string } } | undefined)
            ?.createUserWallet;
          if (name === 'createUserWallet' && created)
            await send(
              'mutation ($id: ObjectID!) { pauseUserWallet(id: $id) { id } }',
              { id: created.id },
              user.token,
            );
        }),
        { numRuns: RUNS, examples: edgeCases(valid()) },
      );
    },
  );

  it('refuses NaN and Infinity, which JSON can only carry as 1e400 or as a malformed body', async () => {
    const write =
      'mutation ($id: ObjectID!, $n: Float, $i: Int) { updateAiManagedState(walletId: $id, input: { dailyPnl: $n, adaptiveStopLoss: $n, riskScore: $i }) { id } }';
    for (const number of ['1e400', '-1e400']) {
      const response = await fetch(`${t.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${agent}` },
        body: `{"query": ${JSON.stringify(write)}, "variables": {"id": "${walletId}", "n": ${number}, "i": ${number}}}`,
      });
      const body = (await response.json()) as { errors: Array<{ extensions: { code: string } }> };
      expect(body.errors.map((e) => e.extensions.code).every((c) => c === 'BAD_USER_INPUT')).toBe(
        true,
      );
    }
    for (const raw of ['NaN', 'Infinity', '-Infinity']) {
      const response = await fetch(`${t.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${agent}` },
        body: `{"query": ${JSON.stringify(write)}, "variables": {"id": "${walletId}", "n": ${raw}}}`,
      });
      expect(response.status).toBe(400);
      expect(
        ((await response.json()) as { errors: Array<{ extensions: { code: string } }> }).errors[0]
          .extensions.code,
      ).toBe('BAD_USER_INPUT');
    }
  });

  it('leaves no invalid document stored', async () => {
    const db = mongoose.connection.db!;
    const noOperatorKeys = (doc: unknown): boolean =>
      doc === null ||
      typeof doc !== 'object' ||
      doc instanceof Date ||
      doc instanceof mongoose.Types.ObjectId
        ? true
        : Object.entries(doc as Record<string, unknown>).every(
            ([k, v]) => !k.startsWith('$') && noOperatorKeys(v),
          );

    for (const w of await db.collection<StoredWallet>('user_wallets').find().toArray()) {
      const definition = await db
        .collection<StoredDefinition>('wallets')
        .findOne({ _id: w.wallet_id });
      expect(noOperatorKeys(w)).toBe(true);
      expect(['active', 'ai_paused', 'user_paused']).toContain(w.status);
      expect(Number.isInteger(w.version) && w.version >= 0).toBe(true);
      expect(w.user_limits.max_total_risk).toBeGreaterThan(0);
      expect(['conservative', 'moderate', 'aggressive']).toContain(w.user_limits.trading_mode);
      const s = w.ai_managed_state;
      expect(s.current_max_position_size).toBeLessThanOrEqual(w.user_limits.max_total_risk);
      expect(
        Number.isInteger(s.current_leverage) &&
          s.current_leverage >= 1 &&
          s.current_leverage <= definition!.features.leverage.max,
      ).toBe(true);
      expect(s.adaptive_stop_loss > 0 && s.adaptive_stop_loss <= 100).toBe(true);
      for (const n of [s.risk_score, s.confidence_level])
        expect(Number.isInteger(n) && n >= 0 && n <= 100).toBe(true);
      expect(
        s.current_risk >= 0 &&
          Number.isInteger(s.open_positions) &&
          s.open_positions >= 0 &&
          Number.isFinite(s.daily_pnl),
      ).toBe(true);
      expect(w.name.trim().length).toBeGreaterThan(0);
    }
    for (const c of await db.collection<StoredCredential>('credentials').find().toArray()) {
      expect(noOperatorKeys(c)).toBe(true);
      expect(
        Object.values(c.credentials).every(
          (v) => typeof v === 'string' && v.length > 0 && v.length <= 16 * 1024,
        ),
      ).toBe(true);
      expect(['mainnet', 'testnet', 'paper']).toContain(c.environment);
      // A paper credential holds no key, and balances that passed their rules.
      if (c.environment === 'paper') expect(c.credentials).toEqual({});
      expect(c.name.trim().length).toBeGreaterThan(0);
    }
    for (const d of await db.collection<StoredDefinition>('wallets').find().toArray()) {
      expect(noOperatorKeys(d)).toBe(true);
      expect(d.slug).toMatch(/^[a-z0-9][a-z0-9-]{1,39}$/);
      expect(d.features.leverage.min).toBeGreaterThan(0);
      expect(d.features.leverage.min).toBeLessThanOrEqual(d.features.leverage.max);
      expect(d.api_config.rate_limit).toBeGreaterThan(0);
      expect(d.auth_fields.length).toBeGreaterThan(0);
      expect(d.name.trim().length).toBeGreaterThan(0);
    }
    // Every stored name is safe to show and in one (NFC) form.
    for (const collection of ['users', 'credentials', 'user_wallets', 'wallets', 'agent_tokens']) {
      for (const doc of await db
        .collection<StoredName>(collection)
        .find({}, { projection: { name: 1 } })
        .toArray()) {
        if (doc.name === null || doc.name === undefined) continue;
        expect({
          collection,
          safe: isSafeText(doc.name),
          nfc: doc.name === doc.name.normalize('NFC'),
        }).toEqual({ collection, safe: true, nfc: true });
      }
    }
    for (const u of await db.collection<StoredUser>('users').find().toArray()) {
      expect(noOperatorKeys(u)).toBe(true);
      expect(u.email).toBe(u.email.toLowerCase().trim());
      expect(['user', 'admin']).toContain(u.role);
    }
  });
});
