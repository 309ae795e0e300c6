import { expect } from '@jest/globals';
import mongoose, { Types } from 'mongoose';
import type { CommandStartedEvent } from 'mongodb';
import { systemCtx, type UserContext } from '../src/core/context';
import { createLogger } from '../src/core/logger';
import { isBackgroundComment } from '../src/shared/background';
import { AgentScope as Scope } from '../src/modules/auth/roles';
import {
  AgentTokensDocument,
  ChangePasswordDocument,
  GrantableAgentsDocument,
  IssueAgentTokenDocument,
  RevokeAgentTokenDocument,
  type AgentScope,
} from './generated/graphql';
import { codes, sameDatabaseEnv, startTestApp, type TestApp } from './helpers/app';
import { adminToken, registerUser, type TestUser } from './helpers/factories';
import { startInstance, waitFor } from './helpers/processes';

/**
 * Who issues which agent token: an admin either scope, a user only GRANTED_WALLETS tokens of their
 * own (personal agents), at most MAX_AGENTS_PER_USER of them live; who sees and revokes which;
 * what keeps each kind good; and which agents a user may grant.
 */
let t: TestApp;
let admin: string;
beforeAll(async () => {
  t = await startTestApp();
  admin = await adminToken(t);
});
afterAll(() => t.close());

const CAP = 10;
const ME = '{ me { id name role } }';
const UNKNOWN_ID_MESSAGE = 'no agent token with that id';
const users = () => mongoose.connection.db!.collection('users');
const tokens = () => mongoose.connection.db!.collection('agent_tokens');

interface Issued {
  id: string;
  token: string;
  scope: AgentScope;
}

async function issue(
  by: string,
  scope: AgentScope | undefined,
  name = 'agent',
  expiresInDays = 30,
): Promise<Issued> {
  const result = await t.gql(IssueAgentTokenDocument, { name, expiresInDays, scope }, by);
  if (!result.data) throw new Error(JSON.stringify(result.errors));
  return result.data.issueAgentToken;
}

const personal = (user: TestUser, name = 'my-bot') => issue(user.token, 'GRANTED_WALLETS', name);

async function works(token: string, url = t.url): Promise<boolean> {
  const response = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ query: ME }),
  });
  const body = (await response.json()) as {
    data?: unknown;
    errors?: Array<{ extensions: { code: string } }>;
  };
  if (body.errors?.[0]?.extensions.code === 'UNAUTHENTICATED') return false;
  if (body.errors) throw new Error(JSON.stringify(body.errors));
  return true;
}

/** How long until `token` is refused at `url`, from `since` (ms). */
const refusedAfter = (token: string, since: number, url = t.url) =>
  waitFor(
    'the token to be refused',
    async () => ((await works(token, url)) ? undefined : Date.now() - since),
    10_000,
  );

/** The scope the service gives the agent principal of `token`. */
async function principalScope(token: string): Promise<string> {
  const principal = await t.app.services.auth.authenticate(`Bearer ${token}`);
  if (principal?.kind !== 'agent') throw new Error('not an agent');
  return principal.scope;
}

const listed = async (by: string) =>
  (await t.gql(AgentTokensDocument, { includeRevoked: true }, by)).data!.agentTokens;

/** A user's request context, as the service's functions take it, for calls made here. */
async function userCtx(token: string): Promise<UserContext> {
  const principal = await t.app.services.auth.authenticate(`Bearer ${token}`);
  if (principal?.kind !== 'user') throw new Error('not a user');
  return {
    ...systemCtx(createLogger({ logLevel: 'silent' }), 'test'),
    actor: principal,
    comment: undefined,
  };
}

async function promote(user: TestUser, role: 'admin' | 'user'): Promise<void> {
  await users().updateOne({ _id: new Types.ObjectId(user.id) }, { $set: { role } });
}

describe('who issues which scope', () => {
  it('refuses a user an ALL_WALLETS token, asked for or by default, saying to ask for GRANTED_WALLETS; stores nothing', async () => {
    const user = await registerUser(t);
    for (const scope of ['ALL_WALLETS', undefined] as const) {
      const refused = await t.gql(IssueAgentTokenDocument, { name: 'bot', scope }, user.token);
      expect(codes(refused)).toEqual(['FORBIDDEN']);
      expect(refused.errors![0].message).toMatch(/ask for scope GRANTED_WALLETS/);
    }
    expect(await tokens().countDocuments({ issued_by: new Types.ObjectId(user.id) })).toBe(0);
  });

  it('lets a user issue a GRANTED_WALLETS token of their own, which signs in as an agent with that scope', async () => {
    const user = await registerUser(t);
    const issued = await personal(user, 'my-rebalancer');
    expect(issued.scope).toBe('GRANTED_WALLETS');
    expect((await t.raw(ME, {}, issued.token)).data).toEqual({
      me: { id: issued.id, name: 'my-rebalancer', role: 'AGENT' },
    });
    expect(await principalScope(issued.token)).toBe(Scope.GRANTED_WALLETS);
    expect(await listed(user.token)).toEqual([
      expect.objectContaining({
        id: issued.id,
        name: 'my-rebalancer',
        issuedBy: user.id,
        scope: 'GRANTED_WALLETS',
        issuerRole: 'USER',
        revokedAt: null,
      }),
    ]);
  });

  it('lets an admin issue either scope; ALL_WALLETS by default', async () => {
    const all = await issue(admin, undefined, 'platform-agent');
    const granted = await issue(admin, 'GRANTED_WALLETS', 'catalog-agent');
    expect([all.scope, granted.scope]).toEqual(['ALL_WALLETS', 'GRANTED_WALLETS']);
    expect(await principalScope(all.token)).toBe(Scope.ALL_WALLETS);
    expect(await principalScope(granted.token)).toBe(Scope.GRANTED_WALLETS);
    const records = await listed(admin);
    expect(records.find((r) => r.id === granted.id)).toMatchObject({
      scope: 'GRANTED_WALLETS',
      issuerRole: 'ADMIN',
    });
    expect(records.find((r) => r.id === all.id)).toMatchObject({
      scope: 'ALL_WALLETS',
      issuerRole: 'ADMIN',
    });
  });
});

describe(`a user's own agents: at most MAX_AGENTS_PER_USER (${CAP}) unrevoked and unexpired`, () => {
  it('refuses one more, naming the cap; a revoked or an expired one makes room', async () => {
    const user = await registerUser(t);
    const own = [];
    for (let i = 0; i < CAP; i++) own.push(await personal(user, `bot-${i}`));
    const refused = await t.gql(
      IssueAgentTokenDocument,
      { name: 'one-too-many', scope: 'GRANTED_WALLETS' },
      user.token,
    );
    expect(codes(refused)).toEqual(['BAD_USER_INPUT']);
    expect(refused.errors![0].message).toBe(
      `at most ${CAP} agent tokens of your own may be unrevoked and unexpired: revoke one first`,
    );
    expect(await tokens().countDocuments({ name: 'one-too-many' })).toBe(0);
    // Another user's and an admin's count for nobody here.
    await personal(await registerUser(t));
    await issue(admin, 'GRANTED_WALLETS');

    await t.gql(RevokeAgentTokenDocument, { id: own[0].id }, user.token);
    await personal(user, 'after-a-revocation');
    expect(
      codes(
        await t.gql(IssueAgentTokenDocument, { name: 'x', scope: 'GRANTED_WALLETS' }, user.token),
      ),
    ).toEqual(['BAD_USER_INPUT']);
    await tokens().updateOne(
      { _id: new Types.ObjectId(own[1].id) },
      { $set: { expires_at: new Date(Date.now() - 1_000) } },
    );
    await personal(user, 'after-an-expiry');
    expect(
      codes(
        await t.gql(IssueAgentTokenDocument, { name: 'x', scope: 'GRANTED_WALLETS' }, user.token),
      ),
    ).toEqual(['BAD_USER_INPUT']);
  });

  it('never lets issues at once pass it, and keeps no record of those refused', async () => {
    const user = await registerUser(t);
    for (let i = 0; i < CAP - 3; i++) await personal(user, `bot-${i}`);
    const overHttp = await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        t.gql(IssueAgentTokenDocument, { name: `rush-${i}`, scope: 'GRANTED_WALLETS' }, user.token),
      ),
    );
    const issued = overHttp.filter((r) => r.data).map((r) => r.data!.issueAgentToken.token);
    for (const refused of overHttp.filter((r) => !r.data))
      expect(codes(refused)).toEqual(['BAD_USER_INPUT']);
    // Over HTTP the requests reach the service a few ms apart, and rarely race; called at once here,
    // every one counts before any inserts.
    const ctx = await userCtx(user.token);
    const atOnce = await Promise.allSettled(
      Array.from({ length: 12 }, (_, i) =>
        t.app.services.auth.issueAgentToken(ctx, `burst-${i}`, 30, Scope.GRANTED_WALLETS),
      ),
    );
    for (const result of atOnce)
      if (result.status === 'rejected')
        expect(result.reason).toMatchObject({ extensions: { code: 'BAD_USER_INPUT' } });
      else issued.push(result.value.token);
    expect(issued.length).toBeLessThanOrEqual(3);
    const stored = await tokens().countDocuments({ issued_by: new Types.ObjectId(user.id) });
    expect(stored).toBe(CAP - 3 + issued.length);
    for (const token of issued) expect(await works(token)).toBe(true);
  });
});

describe('who sees and revokes which token', () => {
  it("shows a user only their own tokens, and an admin every token, users' own included", async () => {
    const alice = await registerUser(t);
    const bob = await registerUser(t);
    const ofAlice = await personal(alice);
    const ofBob = await personal(bob);
    const ofAdmin = await issue(admin, 'GRANTED_WALLETS');
    expect((await listed(alice.token)).map((r) => r.id)).toEqual([ofAlice.id]);
    expect((await listed(bob.token)).map((r) => r.id)).toEqual([ofBob.id]);
    const all = (await listed(admin)).map((r) => r.id);
    expect(all).toEqual(expect.arrayContaining([ofAlice.id, ofBob.id, ofAdmin.id]));
  });

  it("lets a user revoke only their own: another's, a user's or an admin's, answers NOT_FOUND as an unknown id does, and stays good", async () => {
    const alice = await registerUser(t);
    const bob = await registerUser(t);
    const ofBob = await personal(bob);
    const ofAdmin = await issue(admin, 'GRANTED_WALLETS');
    const unknown = await t.gql(
      RevokeAgentTokenDocument,
      { id: new Types.ObjectId().toHexString() },
      alice.token,
    );
    expect(codes(unknown)).toEqual(['NOT_FOUND']);
    for (const other of [ofBob, ofAdmin]) {
      const refused = await t.gql(RevokeAgentTokenDocument, { id: other.id }, alice.token);
      expect(refused.errors).toEqual(unknown.errors);
      expect(await works(other.token)).toBe(true);
    }
    expect(
      await tokens().countDocuments({
        revoked_at: { $ne: null },
        _id: { $in: [ofBob, ofAdmin].map((o) => new Types.ObjectId(o.id)) },
      }),
    ).toBe(0);

    const ofAlice = await personal(alice);
    const revoked = await t.gql(RevokeAgentTokenDocument, { id: ofAlice.id }, alice.token);
    expect(revoked.data!.revokeAgentToken.revokedAt).not.toBeNull();
    expect(await works(ofAlice.token)).toBe(false);
    // Again: idempotent, for its owner.
    const again = await t.gql(RevokeAgentTokenDocument, { id: ofAlice.id }, alice.token);
    expect(again.data!.revokeAgentToken.revokedAt).toBe(revoked.data!.revokeAgentToken.revokedAt);
    expect((await t.gql(RevokeAgentTokenDocument, { id: ofAlice.id }, bob.token)).errors).toEqual(
      unknown.errors,
    );
    expect(unknown.errors![0].message).toBe(UNKNOWN_ID_MESSAGE);
  });

  it("lets an admin revoke a user's own token", async () => {
    const user = await registerUser(t);
    const own = await personal(user);
    const revoked = await t.gql(RevokeAgentTokenDocument, { id: own.id }, admin);
    expect(revoked.data!.revokeAgentToken.revokedAt).not.toBeNull();
    expect(await works(own.token)).toBe(false);
    expect((await listed(user.token))[0]).toMatchObject({
      id: own.id,
      revokedAt: revoked.data!.revokeAgentToken.revokedAt,
    });
  });
});

describe('what keeps a token good', () => {
  it("a user's own survives its issuer's password change, promotion and demotion; an admin's dies when its issuer is demoted", async () => {
    const user = await registerUser(t);
    const own = await personal(user);
    const changed = await t.gql(
      ChangePasswordDocument,
      { currentPassword: user.password, newPassword: 'another long password' },
      user.token,
    );
    expect(changed.errors).toBeUndefined();
    const token = changed.data!.changePassword.token;
    await promote(user, 'admin');
    const asAdmin = await issue(token, 'GRANTED_WALLETS', 'issued-as-admin');
    // Past a refresh: each instance has read the change.
    await new Promise((resolve) => setTimeout(resolve, 2_500));
    expect(await works(own.token)).toBe(true);
    expect(await works(asAdmin.token)).toBe(true);
    const demotedAt = Date.now();
    await promote(user, 'user');
    expect(await refusedAfter(asAdmin.token, demotedAt)).toBeLessThan(5_000);
    expect(await works(own.token)).toBe(true);
    expect((await listed(admin)).find((r) => r.id === own.id)).toMatchObject({
      issuerRole: 'USER',
    });
    expect((await listed(admin)).find((r) => r.id === asAdmin.id)).toMatchObject({
      issuerRole: 'ADMIN',
    });
  });

  it('a revoked personal token is refused on another instance within 5 s', async () => {
    const other = await startInstance({
      ...sameDatabaseEnv(t),
    });
    try {
      const user = await registerUser(t);
      const own = await personal(user, 'two-instances');
      expect(await works(own.token, other.url)).toBe(true);
      const revokedAt = Date.now();
      await t.gql(RevokeAgentTokenDocument, { id: own.id }, user.token);
      expect(await refusedAfter(own.token, revokedAt, other.url)).toBeLessThan(5_000);
    } finally {
      await other.stop();
    }
  });
});

describe('grantableAgents', () => {
  it("shows a user the GRANTED_WALLETS agents admins issued and their own, newest first: not ALL_WALLETS ones, not another user's, not revoked, expired or dead ones", async () => {
    const user = await registerUser(t);
    const stranger = await registerUser(t);
    const former = await registerUser(t);
    await promote(former, 'admin');
    const ofAdmin = await issue(admin, 'GRANTED_WALLETS', 'offered');
    const allWallets = await issue(admin, 'ALL_WALLETS', 'platform');
    const revoked = await issue(admin, 'GRANTED_WALLETS', 'revoked');
    await t.gql(RevokeAgentTokenDocument, { id: revoked.id }, admin);
    const expired = await issue(admin, 'GRANTED_WALLETS', 'expired');
    await tokens().updateOne(
      { _id: new Types.ObjectId(expired.id) },
      { $set: { expires_at: new Date(Date.now() - 1_000) } },
    );
    const ofFormer = await issue(former.token, 'GRANTED_WALLETS', 'of-a-former-admin');
    const ofStranger = await personal(stranger, 'strangers');
    const own = await personal(user, 'mine');
    const mine = [ofAdmin, allWallets, revoked, expired, ofFormer, ofStranger, own].map(
      (a) => a.id,
    );
    const grantable = async (by: TestUser) =>
      (await t.gql(GrantableAgentsDocument, {}, by.token)).data!.grantableAgents.filter((a) =>
        mine.includes(a.id),
      );

    expect((await grantable(user)).map((a) => a.id)).toEqual([own.id, ofFormer.id, ofAdmin.id]);
    expect(await grantable(user)).toContainEqual({
      id: own.id,
      name: 'mine',
      issuedBy: user.id,
      scope: 'GRANTED_WALLETS',
      issuerRole: 'USER',
      expiresAt: expect.any(String),
    });
    expect((await grantable(stranger)).map((a) => a.id)).toEqual([
      ofStranger.id,
      ofFormer.id,
      ofAdmin.id,
    ]);
    // Its issuer no longer an admin: the token is dead, and no one may grant it.
    await promote(former, 'user');
    await waitFor('the demotion to be read', async () =>
      (await works(ofFormer.token)) ? undefined : true,
    );
    expect((await grantable(user)).map((a) => a.id)).toEqual([own.id, ofAdmin.id]);
  });

  it('answers one agent as grantableAgents would, in one database command (for grantAgent)', async () => {
    const user = await registerUser(t);
    const stranger = await registerUser(t);
    const ofAdmin = await issue(admin, 'GRANTED_WALLETS', 'offered-one');
    const allWallets = await issue(admin, 'ALL_WALLETS', 'platform-one');
    const ofStranger = await personal(stranger, 'strangers-one');
    const own = await personal(user, 'mine-one');
    const revoked = await personal(user, 'revoked-one');
    await t.gql(RevokeAgentTokenDocument, { id: revoked.id }, user.token);
    const former = await registerUser(t);
    await promote(former, 'admin');
    const dead = await issue(former.token, 'GRANTED_WALLETS', 'dead-one');
    await promote(former, 'user');
    await waitFor('the demotion to be read', async () =>
      (await works(dead.token)) ? undefined : true,
    );
    const ctx = await userCtx(user.token);
    const auth = t.app.services.auth;

    const commands: string[] = [];
    const listener = (event: CommandStartedEvent) => {
      // The service's own work (the registry's refresh among it) is not the look-up's.
      if (!isBackgroundComment(event.command.comment)) commands.push(event.commandName);
    };
    const client = mongoose.connection.getClient();
    client.on('commandStarted', listener);
    let answer;
    try {
      answer = await auth.grantableAgent(ctx, new Types.ObjectId(ofAdmin.id));
    } finally {
      client.off('commandStarted', listener);
    }
    expect(commands).toEqual(['find']);
    expect(answer).toEqual({
      _id: new Types.ObjectId(ofAdmin.id),
      name: 'offered-one',
      expires_at: expect.any(Date),
    });
    expect(await auth.grantableAgent(ctx, new Types.ObjectId(own.id))).toMatchObject({
      name: 'mine-one',
    });
    for (const refused of [allWallets, ofStranger, revoked, dead])
      expect(await auth.grantableAgent(ctx, new Types.ObjectId(refused.id))).toBeNull();
  });
});
