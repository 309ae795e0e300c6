import { generateKeyPairSync } from 'node:crypto';
import { print } from 'graphql';
import jwt from 'jsonwebtoken';
import { AgentTokenRegistry } from '../src/modules/auth/agent-token-registry';
import { AuthService } from '../src/modules/auth/auth.service';
import { Role } from '../src/modules/auth/roles';
import { UserModel } from '../src/modules/auth/user.model';
import { systemCtx } from '../src/core/context';
import { createLogger } from '../src/core/logger';
import { Writable } from 'node:stream';
import {
  ChangePasswordDocument,
  IssueAgentTokenDocument,
  LoginDocument,
  MeDocument,
  RegisterDocument,
  CreateWalletDefinitionDocument,
} from './generated/graphql';
import {
  ADMIN_EMAIL,
  codes,
  startTestApp,
  TEST_ENCRYPTION_KEY,
  TEST_JWT_SECRET,
  type TestApp,
} from './helpers/app';
import { run } from './helpers/processes';
import {
  adminToken,
  agentToken,
  definitionInput,
  registerUser,
  uniqueEmail,
} from './helpers/factories';

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({ TRUST_PROXY: 'true' });
});
afterAll(() => t.close());

function base64url(value: object): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

/** A token with our issuer and audience, signed with our secret unless the test says otherwise. */
function forge(
  claims: Record<string, unknown>,
  options: jwt.SignOptions = {},
  secret: jwt.Secret = TEST_JWT_SECRET,
): string {
  const signOptions: jwt.SignOptions = {
    algorithm: 'HS256',
    issuer: t.config.jwt.issuer,
    audience: t.config.jwt.audience,
  };
  if (claims.exp === undefined) signOptions.expiresIn = 3600;
  return jwt.sign(claims, secret, { ...signOptions, ...options });
}

describe('register, login, me', () => {
  it('registers a user, who can log in and read themselves', async () => {
    const email = uniqueEmail('Alice');
    const registered = await t.gql(RegisterDocument, {
      input: { email: email.toUpperCase(), password: 'a long enough password', name: 'Alice' },
    });
    expect(registered.errors).toBeUndefined();
    expect(registered.data!.register.user).toMatchObject({
      email: email.toLowerCase(),
      name: 'Alice',
      role: 'USER',
    });
    expect(new Date(registered.data!.register.expiresAt).getTime()).toBeGreaterThan(Date.now());

    const login = await t.gql(LoginDocument, {
      email: email.toUpperCase(),
      password: 'a long enough password',
    });
    expect(login.data!.login.user.id).toBe(registered.data!.register.user.id);

    const me = await t.gql(MeDocument, {}, login.data!.login.token);
    expect(me.data!.me).toMatchObject({ email: email.toLowerCase(), role: 'USER', name: 'Alice' });
  });

  it('stores an argon2id hash, never the password, and exposes no hash', async () => {
    const user = await registerUser(t, { password: 'stored-as-a-hash-only' });
    const stored = await UserModel.findById(user.id).lean();
    expect(stored!.password_hash).toMatch(/^\$argon2id\$v=19\$/);
    // OWASP's argon2id minimum: 19 MiB, 2 iterations, 1 lane.
    expect(stored!.password_hash.split('$')[3].split(',').sort()).toEqual([
      'm=19456',
      'p=1',
      't=2',
    ]);
    expect(JSON.stringify(stored)).not.toContain('stored-as-a-hash-only');
    const leak = await t.raw('{ me { id passwordHash } }', {}, user.token);
    expect(codes(leak)).toEqual(['BAD_USER_INPUT']);
  });

  it('refuses a second account for one email, whatever its case', async () => {
    const user = await registerUser(t);
    const again = await t.gql(RegisterDocument, {
      input: { email: user.email.toUpperCase(), password: 'another password' },
    });
    expect(codes(again)).toEqual(['CONFLICT']);
  });

  it('rejects a malformed email or a short password with the field named', async () => {
    const badEmail = await t.gql(RegisterDocument, {
      input: { email: 'not-an-email', password: 'long enough password' },
    });
    expect(badEmail.errors![0].extensions).toEqual({ code: 'BAD_USER_INPUT', field: 'email' });
    const shortPassword = await t.gql(RegisterDocument, {
      input: { email: uniqueEmail(), password: 'short' },
    });
    expect(shortPassword.errors![0].extensions).toEqual({
      code: 'BAD_USER_INPUT',
      field: 'password',
    });
    expect(JSON.stringify(shortPassword)).not.toContain('short"');
  });

  it('gives the same answer for a wrong password and an unknown email', async () => {
    const user = await registerUser(t);
    const wrong = await t.gql(LoginDocument, { email: user.email, password: 'not the password' });
    const unknown = await t.gql(LoginDocument, {
      email: uniqueEmail('nobody'),
      password: 'not the password',
    });
    expect(codes(wrong)).toEqual(['UNAUTHENTICATED']);
    expect(wrong.errors![0].message).toBe(unknown.errors![0].message);
    expect(codes(unknown)).toEqual(['UNAUTHENTICATED']);
  });

  it('asks for a token on me', async () => {
    const me = await t.gql(MeDocument, {});
    expect(codes(me)).toEqual(['UNAUTHENTICATED']);
  });
});

describe('tokens', () => {
  let user: Awaited<ReturnType<typeof registerUser>>;
  beforeAll(async () => {
    user = await registerUser(t);
  });

  const refused = async (token: string, message?: RegExp) => {
    const me = await t.gql(MeDocument, {}, token);
    expect(codes(me)).toEqual(['UNAUTHENTICATED']);
    expect(me.status).toBe(401);
    if (message) expect(me.errors![0].message).toMatch(message);
  };

  it('accepts a well-formed token', async () => {
    const me = await t.gql(
      MeDocument,
      {},
      forge({ typ: 'user', role: 'user' }, { subject: user.id }),
    );
    expect(me.data!.me.id).toBe(user.id);
  });

  it('refuses a malformed token and a malformed header', async () => {
    await refused('not.a.token');
    const response = await fetch(`${t.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Token ${user.token}` },
      body: JSON.stringify({ query: '{ me { id } }' }),
    });
    const body = (await response.json()) as { errors: Array<{ extensions: { code: string } }> };
    expect(body.errors[0].extensions.code).toBe('UNAUTHENTICATED');
  });

  it('refuses an expired token', async () => {
    const now = Math.floor(Date.now() / 1000);
    await refused(
      forge({ typ: 'user', role: 'user', iat: now - 7200, exp: now - 60 }, { subject: user.id }),
      /expired/,
    );
  });

  it('refuses a token that is not yet valid', async () => {
    await refused(forge({ typ: 'user', role: 'user' }, { subject: user.id, notBefore: 3600 }));
  });

  it('refuses alg "none"', async () => {
    const now = Math.floor(Date.now() / 1000);
    const payload = {
      typ: 'user',
      role: 'admin',
      sub: user.id,
      iss: t.config.jwt.issuer,
      aud: t.config.jwt.audience,
      iat: now,
      exp: now + 3600,
    };
    await refused(`${base64url({ alg: 'none', typ: 'JWT' })}.${base64url(payload)}.`);
  });

  it('refuses HS256 signed with another key', async () => {
    await refused(
      forge(
        { typ: 'user', role: 'user' },
        { subject: user.id },
        'another-secret-that-is-at-least-32-bytes!!',
      ),
    );
  });

  it('refuses an RS256 token', async () => {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    await refused(
      forge({ typ: 'user', role: 'user' }, { subject: user.id, algorithm: 'RS256' }, privateKey),
    );
  });

  it('refuses a wrong audience or issuer', async () => {
    await refused(
      forge({ typ: 'user', role: 'user' }, { subject: user.id, audience: 'someone-else' }),
    );
    await refused(
      forge({ typ: 'user', role: 'user' }, { subject: user.id, issuer: 'someone-else' }),
    );
  });

  it("refuses a deleted user's token", async () => {
    const doomed = await registerUser(t);
    await UserModel.deleteOne({ _id: doomed.id });
    await refused(doomed.token);
  });

  it('takes the role from the account, not from the token', async () => {
    const sneaky = forge({ typ: 'user', role: 'admin' }, { subject: user.id });
    const me = await t.gql(MeDocument, {}, sneaky);
    expect(me.data!.me.role).toBe('USER');
    const create = await t.gql(
      CreateWalletDefinitionDocument,
      { input: definitionInput() },
      sneaky,
    );
    expect(codes(create)).toEqual(['FORBIDDEN']);
  });

  it('does not take a user token for an agent token or the reverse', async () => {
    // An agent-shaped subject on a user token, and a user id on an agent token.
    await refused(
      forge({ typ: 'user', role: 'user' }, { subject: 'agent:0123456789abcdef01234567' }),
    );
    await refused(forge({ typ: 'agent', role: 'agent', name: 'x' }, { subject: user.id }));
    await refused(
      forge(
        { typ: 'agent', role: 'user', name: 'x' },
        { subject: 'agent:0123456789abcdef01234567' },
      ),
    );
  });

  it("never takes SYSTEM (the service's own role in the audit trail) as a caller's role", async () => {
    for (const typ of ['user', 'agent', 'system']) {
      await refused(forge({ typ, role: 'system', name: 'wallet-service' }, { subject: user.id }));
      await refused(
        forge(
          { typ, role: 'system', name: 'wallet-service' },
          { subject: 'agent:0123456789abcdef01234567' },
        ),
      );
    }
    // No account can hold it, and a stored one would not sign in.
    await expect(
      UserModel.create({ email: uniqueEmail('system'), role: Role.SYSTEM, password_hash: 'x' }),
    ).rejects.toThrow(/role/);
    await UserModel.collection.updateOne(
      { email: user.email.toLowerCase() },
      { $set: { role: 'system' } },
    );
    try {
      await refused(forge({ typ: 'user', role: 'user' }, { subject: user.id }));
    } finally {
      await UserModel.collection.updateOne(
        { email: user.email.toLowerCase() },
        { $set: { role: 'user' } },
      );
    }
  });
});

describe('admin and agents', () => {
  it('creates the configured admin at start-up', async () => {
    const admin = await UserModel.findOne({ email: ADMIN_EMAIL }).lean();
    expect(admin!.role).toBe('admin');
    const me = await t.gql(MeDocument, {}, await adminToken(t));
    expect(me.data!.me.role).toBe('ADMIN');
  });

  it('promotes an existing account named as admin only when its password is ADMIN_PASSWORD', async () => {
    const email = uniqueEmail('promoted');
    await registerUser(t, { email, password: 'the configured admin password' });
    const before = await UserModel.findOne({ email }).lean();
    const restarted = new AuthService(
      { ...t.config, admin: { email, password: 'the configured admin password' } },
      new AgentTokenRegistry(createLogger({ logLevel: 'silent' })),
    );
    await restarted.ensureAdmin(systemCtx(createLogger({ logLevel: 'silent' }), 'admin account'));
    const promoted = await UserModel.findOne({ email }).lean();
    expect(promoted!.role).toBe('admin');
    expect(promoted!.password_hash).toBe(before!.password_hash);
  });

  it('does not promote an account registered in advance with another password, and says so by email only', async () => {
    const email = uniqueEmail('squatter');
    await registerUser(t, { email, password: 'the squatter own password' });
    const lines: string[] = [];
    const sink = new Writable({
      write: (chunk: Buffer, _e, done) => (lines.push(chunk.toString()), done()),
    });
    const logger = createLogger({ logLevel: 'info' }, sink);
    const adminPassword = 'the configured admin password';
    await new AuthService(
      { ...t.config, admin: { email, password: adminPassword } },
      new AgentTokenRegistry(logger),
    ).ensureAdmin(systemCtx(logger, 'admin account'));
    expect((await UserModel.findOne({ email }).lean())!.role).toBe('user');
    const said = lines.join('');
    expect(said).toContain(email);
    expect(said).toMatch(/"level":50/);
    expect(said).not.toContain(adminPassword);
    expect(said).not.toContain('the squatter own password');
    // In production the start stops there.
    const production = new AuthService(
      { ...t.config, nodeEnv: 'production', admin: { email, password: adminPassword } },
      new AgentTokenRegistry(logger),
    );
    await expect(production.ensureAdmin(systemCtx(logger, 'admin account'))).rejects.toThrow(
      `ADMIN_EMAIL ${email} belongs to an existing account`,
    );
    expect((await UserModel.findOne({ email }).lean())!.role).toBe('user');
  });

  it('refuses to start in production when ADMIN_EMAIL names an account registered in advance', async () => {
    const email = uniqueEmail('squatted');
    await registerUser(t, { email, password: 'registered before the deployment' });
    const running = run('main.js', {
      NODE_ENV: 'production',
      PORT: '0',
      MONGODB_URI: t.config.mongodbUri!,
      JWT_SECRET: TEST_JWT_SECRET,
      ENCRYPTION_KEY: TEST_ENCRYPTION_KEY,
      ADMIN_EMAIL: email,
      ADMIN_PASSWORD: 'a strong admin password',
    });
    expect(await running.exited).toBe(1);
    const output = [...running.stdout, ...running.stderr].join('\n');
    expect(output).toContain(
      `ADMIN_EMAIL ${email} belongs to an existing account whose password is not ADMIN_PASSWORD`,
    );
    expect(output).not.toContain('a strong admin password');
    expect((await UserModel.findOne({ email }).lean())!.role).toBe('user');
  });

  it('issues ALL_WALLETS agent tokens (the default scope) to admins only', async () => {
    const user = await registerUser(t);
    const byUser = await t.gql(IssueAgentTokenDocument, { name: 'x' }, user.token);
    expect(codes(byUser)).toEqual(['FORBIDDEN']);
    const anonymous = await t.gql(IssueAgentTokenDocument, { name: 'x' });
    expect(codes(anonymous)).toEqual(['UNAUTHENTICATED']);
    const blank = await t.gql(IssueAgentTokenDocument, { name: '   ' }, await adminToken(t));
    expect(blank.errors![0].extensions).toEqual({ code: 'BAD_USER_INPUT', field: 'name' });
    const tooLong = await t.gql(
      IssueAgentTokenDocument,
      { name: 'x', expiresInDays: 366 },
      await adminToken(t),
    );
    expect(tooLong.errors![0].extensions).toEqual({
      code: 'BAD_USER_INPUT',
      field: 'expiresInDays',
    });

    const issued = await t.gql(
      IssueAgentTokenDocument,
      { name: 'rebalancer', expiresInDays: 7 },
      await adminToken(t),
    );
    const { token, name, expiresAt } = issued.data!.issueAgentToken;
    expect(name).toBe('rebalancer');
    const days = (new Date(expiresAt).getTime() - Date.now()) / 86_400_000;
    expect(days).toBeGreaterThan(6.9);
    expect(days).toBeLessThanOrEqual(7);
    const claims = jwt.decode(token) as Record<string, unknown>;
    expect(claims).toMatchObject({ typ: 'agent', role: 'agent', name: 'rebalancer' });
    expect(claims.sub).toMatch(/^agent:[0-9a-f]{24}$/);
  });

  it('lets an agent read itself but not act as a user or an admin', async () => {
    const token = await agentToken(t, 'sentiment-agent');
    const me = await t.gql(MeDocument, {}, token);
    expect(me.data!.me).toMatchObject({ role: 'AGENT', name: 'sentiment-agent' });
    const create = await t.gql(CreateWalletDefinitionDocument, { input: definitionInput() }, token);
    expect(codes(create)).toEqual(['FORBIDDEN']);
    const issue = await t.gql(IssueAgentTokenDocument, { name: 'child' }, token);
    expect(codes(issue)).toEqual(['FORBIDDEN']);
  });
});

describe('changePassword', () => {
  it('checks the current password, refuses every token issued before, and answers with a new one', async () => {
    const user = await registerUser(t, { password: 'the first password' });
    const second = (
      await t.gql(LoginDocument, { email: user.email, password: 'the first password' })
    ).data!.login.token;
    const wrong = await t.gql(
      ChangePasswordDocument,
      { currentPassword: 'not it', newPassword: 'the second password' },
      user.token,
    );
    expect(codes(wrong)).toEqual(['UNAUTHENTICATED']);
    expect((await t.gql(MeDocument, {}, user.token)).errors).toBeUndefined();

    const changed = await t.gql(
      ChangePasswordDocument,
      { currentPassword: 'the first password', newPassword: 'the second password' },
      user.token,
    );
    expect(changed.errors).toBeUndefined();
    expect(changed.data!.changePassword.user.id).toBe(user.id);
    for (const old of [user.token, second])
      expect(codes(await t.gql(MeDocument, {}, old))).toEqual(['UNAUTHENTICATED']);
    expect(
      (await t.gql(MeDocument, {}, changed.data!.changePassword.token)).errors,
    ).toBeUndefined();
    expect(
      codes(await t.gql(LoginDocument, { email: user.email, password: 'the first password' })),
    ).toEqual(['UNAUTHENTICATED']);
    expect(
      (await t.gql(LoginDocument, { email: user.email, password: 'the second password' })).errors,
    ).toBeUndefined();
    expect(t.logs.join('\n')).toMatch(/"security":"password changed"/);
    expect(t.logs.join('\n')).not.toContain('the second password');
  });

  it('checks the current password under the login limit', async () => {
    const user = await registerUser(t, { password: 'guarded password' });
    // From an address of its own (behind the trusted proxy): the other tests' logins come from
    // 127.0.0.1.
    const change = (currentPassword: string) =>
      t.raw(
        print(ChangePasswordDocument),
        { currentPassword, newPassword: 'taken over!' },
        user.token,
        { 'x-forwarded-for': '198.51.100.200' },
      );
    for (let i = 0; i < 10; i++)
      expect(codes(await change(`guess ${i}`))).toEqual(['UNAUTHENTICATED']);
    expect(codes(await change('guarded password'))).toEqual(['RATE_LIMITED']);
  });

  it('refuses a short new password and agents', async () => {
    const user = await registerUser(t, { password: 'long enough password' });
    const short = await t.gql(
      ChangePasswordDocument,
      { currentPassword: 'long enough password', newPassword: 'short' },
      user.token,
    );
    expect(short.errors![0].extensions).toEqual({ code: 'BAD_USER_INPUT', field: 'newPassword' });
    expect(
      codes(
        await t.gql(
          ChangePasswordDocument,
          { currentPassword: 'x', newPassword: 'long enough password' },
          await agentToken(t),
        ),
      ),
    ).toEqual(['FORBIDDEN']);
  });
});
