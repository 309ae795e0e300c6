import mongoose, { Types } from 'mongoose';
import {
  CreateCredentialDocument,
  CreateUserWalletDocument,
  DeleteCredentialDocument,
  IssueAgentTokenDocument,
  RegisterDocument,
  UpdateCredentialDocument,
  UpdateUserWalletDocument,
  WalletDefinitionDocument,
} from './generated/graphql';
import { codes, startTestApp, type TestApp } from './helpers/app';
import {
  adminToken,
  binanceCredential,
  definitionInput,
  limits,
  registerUser,
  uniqueEmail,
  userWallet,
} from './helpers/factories';

let t: TestApp;
let admin: string;
beforeAll(async () => {
  t = await startTestApp({ MAX_CREDENTIALS_PER_USER: '3', MAX_WALLETS_PER_USER: '2' });
  admin = await adminToken(t);
});
afterAll(() => t.close());

const UNSAFE: Array<[string, string]> = [
  ['a control character', 'Main\u0007account'],
  ['a C1 control character', 'Main\u0085account'],
  ['a right-to-left override', 'tnuocca\u202Eniam'],
  ['a bidirectional isolate', 'main\u2066account'],
  ['a left-to-right mark', 'admin\u200E'],
  ['a lone surrogate', 'main\uD800account'],
  ['a lone low surrogate', 'main\uDC00account'],
];

async function binanceId(): Promise<string> {
  return (await t.gql(WalletDefinitionDocument, { slug: 'binance' })).data!.walletDefinition.id;
}

describe('names', () => {
  it.each(UNSAFE)('refuses %s in every kind of name, and stores nothing', async (_what, name) => {
    const user = await registerUser(t);
    const registered = await t.gql(RegisterDocument, {
      input: { email: uniqueEmail(), password: 'long enough password', name },
    });
    expect(registered.errors![0].extensions).toEqual({ code: 'BAD_USER_INPUT', field: 'name' });

    const credential = await t.gql(
      CreateCredentialDocument,
      {
        input: {
          walletId: await binanceId(),
          name,
          values: [
            { key: 'api_key', value: 'k' },
            { key: 'api_secret', value: 's' },
          ],
        },
      },
      user.token,
    );
    expect(credential.errors![0].extensions).toEqual({ code: 'BAD_USER_INPUT', field: 'name' });
    const credentialId = await binanceCredential(t, user);
    expect(
      (await t.gql(UpdateCredentialDocument, { id: credentialId, input: { name } }, user.token))
        .errors![0].extensions,
    ).toEqual({ code: 'BAD_USER_INPUT', field: 'name' });

    const wallet = await t.gql(
      CreateUserWalletDocument,
      { input: { credentialId, name, userLimits: limits() } },
      user.token,
    );
    expect(wallet.errors![0].extensions).toEqual({ code: 'BAD_USER_INPUT', field: 'name' });
    const { id: walletId } = await userWallet(t, user, credentialId);
    expect(
      (await t.gql(UpdateUserWalletDocument, { id: walletId, input: { name } }, user.token))
        .errors![0].extensions,
    ).toEqual({ code: 'BAD_USER_INPUT', field: 'name' });

    expect((await t.gql(IssueAgentTokenDocument, { name }, admin)).errors![0].extensions).toEqual({
      code: 'BAD_USER_INPUT',
      field: 'name',
    });
    const definition = await t.raw(
      'mutation ($i: CreateWalletDefinitionInput!) { createWalletDefinition(input: $i) { id } }',
      { i: definitionInput({ name }) },
      admin,
    );
    expect(definition.errors![0].extensions).toEqual({ code: 'BAD_USER_INPUT', field: 'name' });

    const stored = JSON.stringify(
      await Promise.all(
        ['users', 'credentials', 'user_wallets', 'wallets', 'agent_tokens'].map((c) =>
          mongoose.connection
            .db!.collection(c)
            .find({}, { projection: { name: 1 } })
            .toArray(),
        ),
      ),
    );
    expect(stored).not.toContain(JSON.stringify(name).slice(1, -1));
  });

  it('stores names NFC-normalised, so one name has one form', async () => {
    const decomposed = 'Cafe\u0301 wallet';
    const composed = 'Caf\u00e9 wallet';
    const user = await registerUser(t, { name: decomposed });
    expect(
      (await mongoose.connection
        .db!.collection('users')
        .findOne({ _id: new Types.ObjectId(user.id) }))!.name,
    ).toBe(composed);
    const credentialId = await binanceCredential(t, user, decomposed);
    expect(
      (await mongoose.connection
        .db!.collection('credentials')
        .findOne({ _id: new Types.ObjectId(credentialId) }))!.name,
    ).toBe(composed);
    const wallet = await t.gql(
      CreateUserWalletDocument,
      { input: { credentialId, name: decomposed, userLimits: limits() } },
      user.token,
    );
    expect(wallet.data!.createUserWallet).toBeDefined();
    expect(
      (await mongoose.connection
        .db!.collection('user_wallets')
        .findOne({ _id: new Types.ObjectId(wallet.data!.createUserWallet.id) }))!.name,
    ).toBe(composed);
    const agent = await t.gql(IssueAgentTokenDocument, { name: decomposed }, admin);
    expect(agent.data!.issueAgentToken.name).toBe(composed);
  });

  it('refuses an agent name that would pass for a user id in the audit trail', async () => {
    const user = await registerUser(t);
    expect(
      (await t.gql(IssueAgentTokenDocument, { name: user.id }, admin)).errors![0].extensions,
    ).toEqual({ code: 'BAD_USER_INPUT', field: 'name' });
  });
});

describe('per-user caps', () => {
  it('refuses one credential more than MAX_CREDENTIALS_PER_USER, saying the cap; a delete makes room', async () => {
    const user = await registerUser(t);
    const ids = [];
    for (let i = 0; i < 3; i++) ids.push(await binanceCredential(t, user, `c${i}`));
    const over = await t.gql(
      CreateCredentialDocument,
      {
        input: {
          walletId: await binanceId(),
          name: 'one more',
          values: [
            { key: 'api_key', value: 'k' },
            { key: 'api_secret', value: 's' },
          ],
        },
      },
      user.token,
    );
    expect(codes(over)).toEqual(['BAD_USER_INPUT']);
    expect(over.errors![0].message).toBe('at most 3 credentials per user: delete one first');
    expect(
      await mongoose.connection
        .db!.collection('credentials')
        .countDocuments({ user_id: new Types.ObjectId(user.id) }),
    ).toBe(3);
    await t.gql(DeleteCredentialDocument, { id: ids[0] }, user.token);
    expect(await binanceCredential(t, user, 'room again')).toBeDefined();
    // Another user's count is their own.
    expect(await binanceCredential(t, await registerUser(t))).toBeDefined();
  });

  it('holds the credential cap however many creates arrive at once', async () => {
    const user = await registerUser(t);
    const walletId = await binanceId();
    const results = await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        t.gql(
          CreateCredentialDocument,
          {
            input: {
              walletId,
              name: `burst ${i}`,
              values: [
                { key: 'api_key', value: 'k' },
                { key: 'api_secret', value: 's' },
              ],
            },
          },
          user.token,
        ),
      ),
    );
    expect(results.filter((r) => r.errors === undefined)).toHaveLength(3);
    expect(
      results.every(
        (r) => r.errors === undefined || ['BAD_USER_INPUT', 'CONFLICT'].includes(codes(r)[0] ?? ''),
      ),
    ).toBe(true);
    expect(
      await mongoose.connection
        .db!.collection('credentials')
        .countDocuments({ user_id: new Types.ObjectId(user.id) }),
    ).toBe(3);
  });

  it('refuses one wallet more than MAX_WALLETS_PER_USER, however they arrive', async () => {
    const user = await registerUser(t);
    const credentials = await Promise.all(
      [0, 1, 2].map((i) => binanceCredential(t, user, `w${i}`)),
    );
    const results = await Promise.all(
      credentials.map((credentialId) =>
        t.gql(
          CreateUserWalletDocument,
          { input: { credentialId, name: 'w', userLimits: limits() } },
          user.token,
        ),
      ),
    );
    expect(results.filter((r) => r.errors === undefined)).toHaveLength(2);
    const refused = results.find((r) => r.errors !== undefined)!;
    expect(codes(refused)).toEqual(['BAD_USER_INPUT']);
    expect(refused.errors![0].message).toBe('at most 2 wallets per user: delete one first');
    expect(
      await mongoose.connection
        .db!.collection('user_wallets')
        .countDocuments({ user_id: new Types.ObjectId(user.id) }),
    ).toBe(2);
  });
});
