import jwt from 'jsonwebtoken';
import mongoose, { Types } from 'mongoose';
import type { CommandStartedEvent } from 'mongodb';
import {
  AGENT_TOKEN_CHANGE_OVERLAP_MS,
  AGENT_TOKEN_FULL_READ_MS,
  AGENT_TOKEN_REFRESH_MS,
  AgentTokenRegistry,
  BACKGROUND_COMMENT,
} from '../src/modules/auth/agent-token-registry';
import { AgentTokenModel } from '../src/modules/auth/agent-token.model';
import { AgentScope, Role } from '../src/modules/auth/roles';
import { createLogger } from '../src/core/logger';
import { isBackgroundComment } from '../src/shared/background';
import {
  AgentTokensDocument,
  IssueAgentTokenDocument,
  RevokeAgentTokenDocument,
} from './generated/graphql';
import {
  ADMIN_EMAIL,
  codes,
  sameDatabaseEnv,
  startTestApp,
  TEST_JWT_SECRET,
  type TestApp,
} from './helpers/app';
import { adminToken, registerUser } from './helpers/factories';
import { startInstance, waitFor } from './helpers/processes';

let t: TestApp;
let admin: string;
beforeAll(async () => {
  t = await startTestApp();
  admin = await adminToken(t);
});
afterAll(() => t.close());

const ME = '{ me { id name role } }';

async function issue(name = 'risk-agent', by = admin): Promise<{ id: string; token: string }> {
  const result = await t.gql(IssueAgentTokenDocument, { name, expiresInDays: 30 }, by);
  if (!result.data) throw new Error(JSON.stringify(result.errors));
  return result.data.issueAgentToken;
}

/** How long until `token` is refused at `url` (polling every 100 ms), in ms. */
async function refusedWithin(url: string, token: string, started: number): Promise<number> {
  return waitFor(
    'the token to be refused',
    async () => {
      const response = await fetch(`${url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: JSON.stringify({ query: ME }),
      });
      const body = (await response.json()) as { errors?: Array<{ extensions: { code: string } }> };
      return body.errors?.[0]?.extensions.code === 'UNAUTHENTICATED'
        ? Date.now() - started
        : undefined;
    },
    10_000,
  );
}

describe('agent tokens', () => {
  it('keeps a record of each token issued, never the token itself', async () => {
    const { id, token } = await issue('ledger-agent');
    const listed = await t.gql(AgentTokensDocument, {}, admin);
    const record = listed.data!.agentTokens.find((r) => r.id === id)!;
    expect(record).toMatchObject({ name: 'ledger-agent', revokedAt: null });
    expect(record.issuedBy).toBe(
      (await mongoose.connection
        .db!.collection('users')
        .findOne({ email: ADMIN_EMAIL }))!._id.toHexString(),
    );
    expect(
      new Date(record.expiresAt).getTime() - new Date(record.createdAt).getTime(),
    ).toBeGreaterThan(29.9 * 86_400_000);
    const stored = await mongoose.connection
      .db!.collection('agent_tokens')
      .findOne({ _id: new Types.ObjectId(id) });
    expect(JSON.stringify(stored)).not.toContain(token);
    expect(JSON.stringify(stored)).not.toContain(token.split('.')[2]);
    // The token names the record: its jti and subject are the id revokeAgentToken takes.
    expect(jwt.decode(token)).toMatchObject({ jti: id, sub: `agent:${id}` });
    expect((await t.raw(ME, {}, token)).data).toEqual({
      me: { id, name: 'ledger-agent', role: 'AGENT' },
    });
  });

  it("lists newest first, revoked ones only when asked; a user sees none of an admin's", async () => {
    const older = await issue('older');
    const newer = await issue('newer');
    await t.gql(RevokeAgentTokenDocument, { id: older.id }, admin);
    const active = (await t.gql(AgentTokensDocument, {}, admin)).data!.agentTokens.map((r) => r.id);
    expect(active).toContain(newer.id);
    expect(active).not.toContain(older.id);
    const all = (
      await t.gql(AgentTokensDocument, { includeRevoked: true }, admin)
    ).data!.agentTokens.map((r) => r.id);
    expect(all.indexOf(newer.id)).toBeLessThan(all.indexOf(older.id));
    // A user lists and revokes only their own (test/agent-scopes.test.ts).
    const user = await registerUser(t);
    expect((await t.gql(AgentTokensDocument, {}, user.token)).data!.agentTokens).toEqual([]);
    expect(codes(await t.gql(AgentTokensDocument, {}, newer.token))).toEqual(['FORBIDDEN']);
    expect(codes(await t.gql(RevokeAgentTokenDocument, { id: newer.id }, user.token))).toEqual([
      'NOT_FOUND',
    ]);
    expect((await t.raw(ME, {}, newer.token)).errors).toBeUndefined();
  });

  it('refuses a revoked token at once on the instance that revoked it; revoking again changes nothing', async () => {
    const { id, token } = await issue();
    expect((await t.raw(ME, {}, token)).errors).toBeUndefined();
    const first = await t.gql(RevokeAgentTokenDocument, { id }, admin);
    expect(first.data!.revokeAgentToken.revokedAt).not.toBeNull();
    expect(codes(await t.raw(ME, {}, token))).toEqual(['UNAUTHENTICATED']);
    const again = await t.gql(RevokeAgentTokenDocument, { id }, admin);
    expect(again.data!.revokeAgentToken.revokedAt).toBe(first.data!.revokeAgentToken.revokedAt);
    expect(
      codes(
        await t.gql(RevokeAgentTokenDocument, { id: new Types.ObjectId().toHexString() }, admin),
      ),
    ).toEqual(['NOT_FOUND']);
    expect(t.logs.join('\n')).toMatch(/"security":"agent token revoked"/);
    expect(t.logs.join('\n')).not.toContain(token);
  });

  it('refuses a token on every instance within 5 s of its revocation, and honours a new one on every instance at once', async () => {
    const other = await startInstance({
      ...sameDatabaseEnv(t),
    });
    try {
      const { id, token } = await issue('two-instances');
      const onOther = await fetch(`${other.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: JSON.stringify({ query: ME }),
      });
      expect(((await onOther.json()) as { data: unknown }).data).toEqual({
        me: { id, name: 'two-instances', role: 'AGENT' },
      });
      const revokedAt = Date.now();
      await t.gql(RevokeAgentTokenDocument, { id }, admin);
      expect(await refusedWithin(other.url, token, revokedAt)).toBeLessThan(5_000);
    } finally {
      await other.stop();
    }
  });

  it('refuses a token whose issuer is no longer an admin, within 5 s', async () => {
    const user = await registerUser(t);
    const users = mongoose.connection.db!.collection('users');
    await users.updateOne({ _id: new Types.ObjectId(user.id) }, { $set: { role: 'admin' } });
    const { token } = await issue('demoted-issuer', user.token);
    expect((await t.raw(ME, {}, token)).errors).toBeUndefined();
    const demotedAt = Date.now();
    await users.updateOne({ _id: new Types.ObjectId(user.id) }, { $set: { role: 'user' } });
    expect(await refusedWithin(t.url, token, demotedAt)).toBeLessThan(5_000);
  });

  it('refuses a token whose issuer was deleted, within 5 s', async () => {
    const user = await registerUser(t);
    const users = mongoose.connection.db!.collection('users');
    await users.updateOne({ _id: new Types.ObjectId(user.id) }, { $set: { role: 'admin' } });
    const { token } = await issue('orphan', user.token);
    const deletedAt = Date.now();
    await users.deleteOne({ _id: new Types.ObjectId(user.id) });
    expect(await refusedWithin(t.url, token, deletedAt)).toBeLessThan(5_000);
  });

  it('refuses agent tokens issued before tokens had records', async () => {
    const id = new Types.ObjectId().toHexString();
    const old = jwt.sign({ typ: 'agent', role: 'agent', name: 'legacy' }, TEST_JWT_SECRET, {
      algorithm: 'HS256',
      issuer: t.config.jwt.issuer,
      audience: t.config.jwt.audience,
      subject: `agent:${id}`,
      expiresIn: 3600,
    });
    expect(codes(await t.raw(ME, {}, old))).toEqual(['UNAUTHENTICATED']);
    expect(t.logs.join('\n')).toMatch(/"security":"token refused"/);
  });

  it('checks agent tokens without a database command per request', async () => {
    const { token } = await issue('hot-path');
    const seen: string[] = [];
    let background = 0;
    const listener = (event: CommandStartedEvent) => {
      // The service's other background work (its connection tests, expiry) is not the registry's.
      if (
        isBackgroundComment(event.command.comment) &&
        event.command.comment !== BACKGROUND_COMMENT
      )
        return;
      seen.push(`${event.commandName} ${String(event.command[event.commandName])}`);
      if (event.command.comment === BACKGROUND_COMMENT) background++;
    };
    const client = mongoose.connection.getClient();
    const started = Date.now();
    client.on('commandStarted', listener);
    try {
      for (let i = 0; i < 50; i++) expect((await t.raw(ME, {}, token)).errors).toBeUndefined();
    } finally {
      client.off('commandStarted', listener);
    }
    // Only the registry's own refreshes read the database: two queries per interval, whatever the
    // traffic (and a third in the full read once a minute).
    const refreshes = Math.ceil((Date.now() - started) / AGENT_TOKEN_REFRESH_MS) + 1;
    expect(seen.filter((c) => c === 'find agent_tokens').length).toBeLessThanOrEqual(refreshes);
    expect(seen.length).toBeLessThanOrEqual(2 * refreshes + 1);
    expect(background).toBe(seen.length);
  });
});

describe('the agent token list of an instance', () => {
  /** An instance's list, driven by hand, on the test's database. */
  const registry = () => new AgentTokenRegistry(createLogger({ logLevel: 'silent' }));

  /** What revokeAgentToken does on that instance: the record, then its list. */
  async function revokeHere(list: AgentTokenRegistry, id: string): Promise<void> {
    await AgentTokenModel.updateOne(
      { _id: id },
      { $set: { revoked_at: new Date(), changed_at: new Date() } },
    );
    list.revoked(new Types.ObjectId(id));
  }

  it('keeps a token revoked here refused when a refresh that read before the revocation applies after it', async () => {
    const list = registry();
    const { id } = await issue('revoked-mid-refresh');
    const read = await list.read();
    expect(read.live.has(id)).toBe(true);
    await revokeHere(list, id);
    list.apply(read);
    expect(list.status(id)).toBe(false);
    expect(await list.isHonoured(id)).toBe(false);
    // The next refresh reads the revocation itself.
    list.apply(await list.read());
    expect(await list.isHonoured(id)).toBe(false);
  });

  it('does not keep what a look-up read when the token was revoked here meanwhile', async () => {
    const list = registry();
    const { id } = await issue('revoked-mid-look-up');
    // Unknown to this list: looked up in the database (which still has it good), and revoked here
    // while that read runs.
    const honoured = list.isHonoured(id);
    list.revoked(new Types.ObjectId(id));
    expect(await honoured).toBe(false);
    expect(list.status(id)).toBe(false);
  });

  it('keeps a token issued here honoured when a refresh that read before it applies after it', async () => {
    const list = registry();
    const read = await list.read();
    const record = {
      _id: new Types.ObjectId(),
      name: 'issued-mid-refresh',
      issued_by: (await mongoose.connection
        .db!.collection('users')
        .findOne({ email: ADMIN_EMAIL }))!._id,
      scope: AgentScope.ALL_WALLETS,
      issuer_role: Role.ADMIN as const,
      expires_at: new Date(Date.now() + 86_400_000),
      revoked_at: null,
      changed_at: new Date(),
    };
    await AgentTokenModel.create(record);
    list.issued(record);
    list.apply(read);
    expect(list.status(record._id.toHexString())).toBe(true);
  });

  it('refuses without a query a token a refresh no longer lists, and tells who listens', async () => {
    const list = registry();
    const { id } = await issue('dropped');
    list.apply(await list.read());
    expect(list.status(id)).toBe(true);
    let changes = 0;
    const unsubscribe = list.onChange(() => changes++);
    await AgentTokenModel.updateOne(
      { _id: id },
      { $set: { revoked_at: new Date(), changed_at: new Date() } },
    );
    list.apply(await list.read());
    expect(list.status(id)).toBe(false);
    expect(changes).toBe(1);
    unsubscribe();
  });

  /** The commands `body` sends, as `find <collection> <filter>`. */
  async function commandsOf(body: () => Promise<unknown>): Promise<string[]> {
    const seen: string[] = [];
    const listener = (event: CommandStartedEvent) => {
      if (event.command.comment !== BACKGROUND_COMMENT) return;
      const name = event.commandName;
      seen.push(`${name} ${String(event.command[name])} ${JSON.stringify(event.command.filter)}`);
    };
    const client = mongoose.connection.getClient();
    client.on('commandStarted', listener);
    try {
      await body();
    } finally {
      client.off('commandStarted', listener);
    }
    return seen;
  }

  it('reads all live tokens at first, then only those changed since its last read: a revocation on another instance among them', async () => {
    const list = registry();
    const old = await issue('changed-long-ago');
    // As if issued long before this list's next read began (and beyond the clocks' overlap).
    await AgentTokenModel.updateOne(
      { _id: old.id },
      { $set: { changed_at: new Date(Date.now() - 10 * AGENT_TOKEN_CHANGE_OVERLAP_MS) } },
    );
    const revokedElsewhere = await issue('revoked-elsewhere');
    const first = await list.read();
    expect(first.full).toBe(true);
    expect([...first.live.keys()]).toEqual(expect.arrayContaining([old.id, revokedElsewhere.id]));
    list.apply(first);

    const fresh = await issue('issued-since');
    // Revoked by the app's own instance: this list hears of it only from the database.
    await t.gql(RevokeAgentTokenDocument, { id: revokedElsewhere.id }, admin);
    let next: Awaited<ReturnType<AgentTokenRegistry['read']>> | undefined;
    const commands = await commandsOf(async () => (next = await list.read()));
    expect(next!.full).toBe(false);
    // Two queries: the tokens changed since (less the overlap), and the admins.
    expect(commands).toHaveLength(2);
    expect(commands.find((c) => c.startsWith('find agent_tokens'))).toMatch(
      /"changed_at":\{"\$gte"/,
    );
    expect(commands.filter((c) => c.startsWith('find users'))).toHaveLength(1);
    expect(next!.live.has(old.id)).toBe(false);
    expect(next!.live.has(fresh.id)).toBe(true);
    expect(next!.ended.has(revokedElsewhere.id)).toBe(true);
    list.apply(next!);
    expect(list.status(revokedElsewhere.id)).toBe(false);
    expect(list.status(fresh.id)).toBe(true);
    // What an earlier read found and nothing changed since stays as it was.
    expect(list.status(old.id)).toBe(true);
    expect(await list.isHonoured(revokedElsewhere.id)).toBe(false);
  });

  it('reads every live token again once its last full read is a minute old, and then drops a personal token whose issuer is gone', async () => {
    const list = registry();
    const owner = await registerUser(t);
    const personal = {
      _id: new Types.ObjectId(),
      name: 'personal-agent',
      issued_by: new Types.ObjectId(owner.id),
      scope: AgentScope.GRANTED_WALLETS,
      issuer_role: Role.USER as const,
      expires_at: new Date(Date.now() + 86_400_000),
      revoked_at: null,
      changed_at: new Date(),
    };
    await AgentTokenModel.create(personal);
    const id = personal._id.toHexString();
    list.apply(await list.read());
    expect(list.status(id)).toBe(true);
    // Removed from the database by hand: no API deletes an account.
    await mongoose.connection
      .db!.collection('users')
      .deleteOne({ _id: new Types.ObjectId(owner.id) });
    const incremental = await list.read();
    expect(incremental.full).toBe(false);
    list.apply(incremental);
    expect(list.status(id)).toBe(true);
    const aMinuteOn = await list.read({ now: new Date(Date.now() + AGENT_TOKEN_FULL_READ_MS) });
    expect(aMinuteOn.full).toBe(true);
    expect(aMinuteOn.goneIssuers).toEqual(new Set([owner.id]));
    list.apply(aMinuteOn);
    expect(list.status(id)).toBe(false);
    expect(await list.isHonoured(id)).toBe(false);
  });
});
