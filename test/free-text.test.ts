import { randomBytes } from 'node:crypto';
import { expect } from '@jest/globals';
import mongoose, { Types } from 'mongoose';
import {
  AiPauseWalletDocument,
  CreateWalletDefinitionDocument,
  RegisterDocument,
  UpdateWalletDefinitionDocument,
  type CreateWalletDefinitionInput,
} from './generated/graphql';
import { startTestApp, type TestApp } from './helpers/app';
import {
  adminToken,
  agentToken,
  binanceCredential,
  definitionInput,
  registerUser,
  uniqueEmail,
  userWallet,
} from './helpers/factories';

/**
 * Every free text the API stores and shows back is held to the rule names are held to
 * (shared/validators.ts SafeText): no control characters (NUL, line breaks, ESC), no bidirectional
 * overrides or isolates, no unpaired surrogates. A refusal is BAD_USER_INPUT naming the field, and
 * nothing is stored.
 */

const UNSAFE: Array<[string, string]> = [
  ['NUL', '\u0000'],
  ['a line feed', '\n'],
  ['a carriage return', '\r'],
  ['ESC (a terminal escape)', '\u001b[31m'],
  ['a C1 control character', '\u0085'],
  ['a line separator', '\u2028'],
  ['a right-to-left override', '\u202E'],
  ['a left-to-right isolate', '\u2066'],
  ['a lone surrogate', '\uD800'],
];

let t: TestApp;
let admin: string;
let agent: string;

const db = () => mongoose.connection.db!;

beforeAll(async () => {
  t = await startTestApp({ MAX_CREDENTIALS_PER_USER: '100', MAX_WALLETS_PER_USER: '100' });
  admin = await adminToken(t);
  agent = await agentToken(t);
});
afterAll(() => t.close());

describe("aiPauseWallet's reason", () => {
  it.each(UNSAFE)('refuses %s, and pauses nothing', async (_what, unsafe) => {
    const user = await registerUser(t);
    const { id } = await userWallet(t, user, await binanceCredential(t, user));
    const before = await db()
      .collection('user_wallets')
      .findOne({ _id: new Types.ObjectId(id) });
    const paused = await t.gql(
      AiPauseWalletDocument,
      { walletId: id, reason: `exchange ${unsafe}outage` },
      agent,
    );
    expect(paused.errors![0].extensions).toEqual({ code: 'BAD_USER_INPUT', field: 'reason' });
    expect(paused.errors![0].message).not.toContain(unsafe);
    expect(
      await db()
        .collection('user_wallets')
        .findOne({ _id: new Types.ObjectId(id) }),
    ).toEqual(before);
    expect(
      await db()
        .collection('user_wallet_events')
        .countDocuments({ wallet_id: new Types.ObjectId(id), kind: 'status_changed' }),
    ).toBe(0);
  });

  it('takes any other text, trimmed and NFC-normalised, up to 500 characters', async () => {
    const user = await registerUser(t);
    const { id } = await userWallet(t, user, await binanceCredential(t, user));
    const paused = await t.gql(
      AiPauseWalletDocument,
      { walletId: id, reason: '  Bo\u0308rse geschlossen \u2014 \u53D6\u5F15\u6240 \uD83D\uDCC9 ' },
      agent,
    );
    expect(paused.data!.aiPauseWallet).toMatchObject({
      status: 'AI_PAUSED',
      pauseReason: 'B\u00F6rse geschlossen \u2014 \u53D6\u5F15\u6240 \uD83D\uDCC9',
    });
    const other = await userWallet(t, user, await binanceCredential(t, user));
    expect(
      (await t.gql(AiPauseWalletDocument, { walletId: other.id, reason: 'x'.repeat(500) }, agent))
        .errors,
    ).toBeUndefined();
  });
});

describe("the catalog's texts", () => {
  /** Each free text of a definition (URLs too: IsUrl lets these characters through), by its path. */
  const FIELDS: Array<[string, (unsafe: string) => Partial<CreateWalletDefinitionInput>]> = [
    ['description', (u) => ({ description: `A test ${u}exchange` })],
    ['logo', (u) => ({ logo: `https://logo.example/a${u}b.png` })],
    [
      'authFields[0].placeholder',
      (u) => ({ authFields: [{ ...definitionInput().authFields[0], placeholder: `key${u}` }] }),
    ],
    [
      'authFields[0].helpText',
      (u) => ({
        authFields: [{ ...definitionInput().authFields[0], helpText: `Find it ${u}here` }],
      }),
    ],
    [
      'apiConfig.baseUrl',
      (u) => ({
        apiConfig: { ...definitionInput().apiConfig, baseUrl: `https://api.example/${u}` },
      }),
    ],
    [
      'apiConfig.testnetUrl',
      (u) => ({
        apiConfig: { ...definitionInput().apiConfig, testnetUrl: `https://test.example/${u}` },
      }),
    ],
    [
      'apiConfig.websocketUrl',
      (u) => ({
        apiConfig: { ...definitionInput().apiConfig, websocketUrl: `wss://ws.example/${u}` },
      }),
    ],
  ];
  const cases = FIELDS.flatMap(([field, input]) =>
    UNSAFE.map(([what, unsafe]) => [field, what, input(unsafe)] as const),
  );

  it.each(cases)('refuses %s with %s, on create and on update', async (field, _what, input) => {
    const slug = `ft-${randomBytes(3).toString('hex')}`;
    const created = await t.gql(
      CreateWalletDefinitionDocument,
      { input: definitionInput({ slug, ...input }) },
      admin,
    );
    expect(created.errors![0].extensions).toEqual({ code: 'BAD_USER_INPUT', field });
    expect(await db().collection('wallets').countDocuments({ slug })).toBe(0);

    const before = await db().collection('wallets').findOne({ slug: 'binance' });
    const updated = await t.gql(UpdateWalletDefinitionDocument, { slug: 'binance', input }, admin);
    expect(updated.errors![0].extensions).toEqual({ code: 'BAD_USER_INPUT', field });
    expect(await db().collection('wallets').findOne({ slug: 'binance' })).toEqual(before);
  });
});

describe('an email', () => {
  it.each([
    ['a right-to-left override', `rtl\u202Egro.elpmaxe@example.com`],
    ['a left-to-right isolate', `iso\u2066late@example.com`],
    ['a line feed in a quoted local part', `"line\nfeed"@example.com`],
    ['ESC in a quoted local part', `"esc\u001b[31m"@example.com`],
  ])('refuses %s at registration, and stores no account', async (_what, email) => {
    const registered = await t.gql(RegisterDocument, {
      input: { email, password: 'long enough password', name: 'N' },
    });
    expect(registered.errors![0].extensions).toEqual({ code: 'BAD_USER_INPUT', field: 'email' });
    expect(await db().collection('users').countDocuments({ email: email.toLowerCase() })).toBe(0);
  });

  it('still takes an ordinary one', async () => {
    expect(
      (
        await t.gql(RegisterDocument, {
          input: { email: uniqueEmail('ok'), password: 'long enough password', name: 'N' },
        })
      ).errors,
    ).toBeUndefined();
  });
});
