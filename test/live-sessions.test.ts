import mongoose, { Types } from 'mongoose';
import type { CommandStartedEvent } from 'mongodb';
import WebSocket from 'ws';
import { SESSION_CHECK_MS, SESSIONS_COMMENT } from '../src/modules/live/live-sessions';
import { systemCtx } from '../src/core/context';
import { createLogger } from '../src/core/logger';
import { Role } from '../src/modules/auth/roles';
import type { Session } from '../src/modules/auth/auth.service';
import {
  ChangePasswordDocument,
  IssueAgentTokenDocument,
  PauseUserWalletDocument,
  ResumeUserWalletDocument,
  RevokeAgentTokenDocument,
} from './generated/graphql';
import { sameDatabaseEnv, startTestApp, type TestApp } from './helpers/app';
import {
  adminToken,
  binanceCredential,
  registerUser,
  userWallet,
  type TestUser,
} from './helpers/factories';
import { subscribe, until, type Subscriber } from './helpers/live';
import { startInstance } from './helpers/processes';

/** Tokens the second instance signs expire this soon (its logins only). */
const SHORT_EXPIRY_S = 6;

let t: TestApp;
let other: Awaited<ReturnType<typeof startInstance>>;
let admin: string;
beforeAll(async () => {
  // The default SUBSCRIPTION_AUTH_RECHECK (60 s): closing within seconds does not depend on it.
  t = await startTestApp();
  other = await startInstance({
    ...sameDatabaseEnv(t),
    JWT_EXPIRES_IN: `${SHORT_EXPIRY_S}s`,
  });
  admin = await adminToken(t);
});
afterAll(async () => {
  await other?.stop();
  await t.close();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A raw graphql-ws socket: its acknowledgement, or how it closed. */
function connect(token: string): {
  socket: WebSocket;
  opened: Promise<void>;
  outcome: Promise<'acknowledged' | number>;
} {
  const socket = new WebSocket(`${t.url.replace(/^http/, 'ws')}/graphql`, 'graphql-transport-ws');
  const opened = new Promise<void>((resolve, reject) => {
    socket.once('open', () => {
      socket.send(
        JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${token}` } }),
      );
      resolve();
    });
    socket.once('error', reject);
  });
  const outcome = new Promise<'acknowledged' | number>((resolve) => {
    socket.on('message', (data: Buffer) => {
      if ((JSON.parse(data.toString()) as { type: string }).type === 'connection_ack')
        resolve('acknowledged');
    });
    socket.once('close', (code: number) => resolve(code));
  });
  return { socket, opened, outcome };
}

describe('connection slots', () => {
  it('gives back the slot of a socket that went away while its token was checked', async () => {
    const user = await registerUser(t);
    // The repro: connection_init with a good token, gone a millisecond later, 110 times.
    for (let i = 0; i < 110; i++) {
      const { socket, opened } = connect(user.token);
      await opened;
      await sleep(1);
      socket.terminate();
    }
    // Every one of the token's 100 slots is free again: the 101st connection is the one refused.
    const sockets = Array.from({ length: 100 }, () => connect(user.token));
    expect(new Set(await Promise.all(sockets.map((s) => s.outcome)))).toEqual(
      new Set(['acknowledged']),
    );
    const over = connect(user.token);
    expect(await over.outcome).toBe(4429);
    for (const { socket } of sockets) socket.close();
    await Promise.all(
      sockets.map((s) => new Promise((resolve) => s.socket.once('close', resolve))),
    );
    await sleep(100);
    const last = connect(user.token);
    expect(await last.outcome).toBe('acknowledged');
    last.socket.close();
  });
});

const EVENT = 'id kind';
const MINE = `subscription { myWalletEvents { ${EVENT} } }`;
const MANAGED = `subscription { managedWalletEvents { ${EVENT} } }`;

/** A subscriber, and when (ms) its connection closed. */
interface Watched extends Subscriber {
  closedAt: Promise<{ code: number; reason: string; at: number }>;
}

function watch(url: string, token: string, query: string): Watched {
  const live = subscribe(url, token, query);
  return { ...live, closedAt: live.closed.then((c) => ({ ...c, at: Date.now() })) };
}

async function walletOf(user: TestUser): Promise<string> {
  return (await userWallet(t, user, await binanceCredential(t, user))).id;
}

/** Pauses or resumes the wallet, and waits until every subscriber has the event. */
async function eventReaches(owner: TestUser, walletId: string, subscribers: Watched[]) {
  const counts = subscribers.map((s) => s.events.length);
  const paused = await t.gql(PauseUserWalletDocument, { id: walletId }, owner.token);
  if (paused.errors) await t.gql(ResumeUserWalletDocument, { id: walletId }, owner.token);
  await until('the event on every subscriber', () =>
    subscribers.every((s, i) => s.events.length > counts[i]),
  );
}

/** Every subscriber is closed with 4403 within 5 s of `since`. */
async function closedWithin5s(subscribers: Watched[], since: number): Promise<void> {
  for (const subscriber of subscribers) {
    const closed = await Promise.race([
      subscriber.closedAt,
      new Promise<null>((resolve) => setTimeout(() => resolve(null), 8_000)),
    ]);
    expect(closed).toMatchObject({ code: 4403 });
    expect(closed!.at - since).toBeLessThan(5_000);
  }
}

async function post<T>(url: string, query: string, variables: unknown, token?: string) {
  const response = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: JSON.stringify({ query, variables }),
  });
  return (await response.json()) as { data?: T; errors?: unknown[] };
}

describe('open subscriptions whose token stops being good are closed (4403) within 5 s, on every instance', () => {
  let owner: TestUser;
  let walletId: string;
  beforeAll(async () => {
    owner = await registerUser(t);
    walletId = await walletOf(owner);
  });

  it('when the agent token is revoked', async () => {
    const issued = await t.gql(IssueAgentTokenDocument, { name: 'to-revoke' }, admin);
    const { id, token } = issued.data!.issueAgentToken;
    const subscribers = [watch(t.url, token, MANAGED), watch(other.url, token, MANAGED)];
    await Promise.all(subscribers.map((s) => s.connected));
    await eventReaches(owner, walletId, subscribers);
    const revokedAt = Date.now();
    await t.gql(RevokeAgentTokenDocument, { id }, admin);
    await closedWithin5s(subscribers, revokedAt);
    expect(t.logs.join('\n')).toMatch(/"security":"token refused".*"transport":"websocket"/);
    expect(t.logs.join('\n')).not.toContain(token);
  });

  it('when the password changes', async () => {
    const user = await registerUser(t);
    const own = await walletOf(user);
    const subscribers = [watch(t.url, user.token, MINE), watch(other.url, user.token, MINE)];
    await Promise.all(subscribers.map((s) => s.connected));
    await eventReaches(user, own, subscribers);
    const changedAt = Date.now();
    const changed = await t.gql(
      ChangePasswordDocument,
      { currentPassword: user.password, newPassword: 'another long password' },
      user.token,
    );
    expect(changed.errors).toBeUndefined();
    await closedWithin5s(subscribers, changedAt);
    // The new token connects.
    const again = watch(t.url, changed.data!.changePassword.token, MINE);
    await again.connected;
    await again.dispose();
  });

  it("when the issuing admin is demoted: the admin's own connections and its agent tokens'", async () => {
    const issuer = await registerUser(t);
    const users = mongoose.connection.db!.collection('users');
    await users.updateOne({ _id: new Types.ObjectId(issuer.id) }, { $set: { role: 'admin' } });
    const issued = await t.gql(IssueAgentTokenDocument, { name: 'orphaned' }, issuer.token);
    const agent = issued.data!.issueAgentToken.token;
    const subscribers = [
      watch(t.url, agent, MANAGED),
      watch(other.url, agent, MANAGED),
      watch(t.url, issuer.token, MINE),
      watch(other.url, issuer.token, MINE),
    ];
    await Promise.all(subscribers.map((s) => s.connected));
    await eventReaches(owner, walletId, subscribers.slice(0, 2));
    const demotedAt = Date.now();
    await users.updateOne({ _id: new Types.ObjectId(issuer.id) }, { $set: { role: 'user' } });
    await closedWithin5s(subscribers, demotedAt);
  });

  it('when the user is deleted (from the database: the API deletes no account)', async () => {
    const user = await registerUser(t);
    const own = await walletOf(user);
    const subscribers = [watch(t.url, user.token, MINE), watch(other.url, user.token, MINE)];
    await Promise.all(subscribers.map((s) => s.connected));
    await eventReaches(user, own, subscribers);
    const deletedAt = Date.now();
    await mongoose.connection
      .db!.collection('users')
      .deleteOne({ _id: new Types.ObjectId(user.id) });
    await closedWithin5s(subscribers, deletedAt);
  });

  it('when the token expires', async () => {
    const user = await registerUser(t);
    const own = await walletOf(user);
    const login = await post<{ login: { token: string; expiresAt: string } }>(
      other.url,
      'mutation ($e: String!, $p: String!) { login(email: $e, password: $p) { token expiresAt } }',
      { e: user.email, p: user.password },
    );
    const { token, expiresAt } = login.data!.login;
    const expiry = new Date(expiresAt).getTime();
    expect(expiry - Date.now()).toBeLessThanOrEqual(SHORT_EXPIRY_S * 1000);
    const subscribers = [watch(t.url, token, MINE), watch(other.url, token, MINE)];
    await Promise.all(subscribers.map((s) => s.connected));
    await eventReaches(user, own, subscribers);
    await closedWithin5s(subscribers, expiry);
    expect(subscribers.every((s) => s.events.length > 0)).toBe(true);
  });
});

describe("re-checking open connections' tokens", () => {
  it('costs one query per interval for every user with a connection open, and none for agents', async () => {
    const users = await Promise.all([registerUser(t), registerUser(t), registerUser(t)]);
    const agent = (await t.gql(IssueAgentTokenDocument, { name: 'many-sockets' }, admin)).data!
      .issueAgentToken.token;
    const subscribers = [
      ...users.flatMap((u) => Array.from({ length: 10 }, () => watch(t.url, u.token, MINE))),
      ...Array.from({ length: 10 }, () => watch(t.url, agent, MANAGED)),
    ];
    await Promise.all(subscribers.map((s) => s.connected));
    const checks: Array<Record<string, unknown>> = [];
    let requests = 0;
    const listener = (event: CommandStartedEvent) => {
      if (event.command.comment === SESSIONS_COMMENT) checks.push(event.command);
      else if (typeof event.command.comment !== 'string') requests++;
    };
    const client = mongoose.connection.getClient();
    const started = Date.now();
    client.on('commandStarted', listener);
    await new Promise((resolve) => setTimeout(resolve, 3 * SESSION_CHECK_MS + 500));
    client.off('commandStarted', listener);
    const elapsed = Date.now() - started;
    // Each check counts the accounts (from the collection's metadata: what it chooses its read
    // by), then reads.
    const counts = checks.filter((c) => c.count === 'users');
    const finds = checks.filter((c) => !counts.includes(c));
    expect(counts.length).toBe(finds.length);
    expect(finds.length).toBeGreaterThanOrEqual(2);
    expect(finds.length).toBeLessThanOrEqual(Math.ceil(elapsed / SESSION_CHECK_MS) + 1);
    for (const check of finds) {
      expect(check.find).toBe('users');
      // Their accounts by id, or every account when they are a quarter of them or more (the few
      // accounts of this test's database may be).
      const filter = check.filter as { _id?: { $in: Types.ObjectId[] } };
      if (filter._id)
        expect(filter._id.$in.map(String).sort()).toEqual(users.map((u) => u.id).sort());
      else expect(filter).toEqual({});
    }
    // No connection reads anything by itself.
    expect(requests).toBe(0);
    await Promise.all(subscribers.map((s) => s.dispose()));
  });

  it('reads every account in one query once the users connected are a quarter of them or more', async () => {
    const users = mongoose.connection.db!.collection<{
      _id: Types.ObjectId;
      role: 'user' | 'admin';
      token_version?: number;
    }>('users');
    const changed = await registerUser(t);
    const deleted = await registerUser(t);
    const accounts = await users.find({}).toArray();
    const sessionOf = (account: (typeof accounts)[number]): Session => ({
      principal: {
        kind: 'user',
        userId: account._id,
        role: account.role === 'admin' ? Role.ADMIN : Role.USER,
        email: 'shown@nowhere',
      },
      expiresAt: Date.now() + 60_000,
      tokenVersion: account.token_version ?? 0,
    });
    const sessionsById = new Map(accounts.map((a) => [a._id.toHexString(), sessionOf(a)]));
    const sessions = [...sessionsById.values()];
    const byId = (id: string) => sessionsById.get(id)!;
    await users.updateOne({ _id: new Types.ObjectId(changed.id) }, { $inc: { token_version: 1 } });
    await users.deleteOne({ _id: new Types.ObjectId(deleted.id) });
    const sent: Array<Record<string, unknown>> = [];
    const listener = (event: CommandStartedEvent) => {
      if (event.command.comment === SESSIONS_COMMENT && event.command.find)
        sent.push(event.command);
    };
    const client = mongoose.connection.getClient();
    client.on('commandStarted', listener);
    const ctx = systemCtx(createLogger({ logLevel: 'silent' }), 'subscription sessions');
    try {
      // All of them: one read of the whole collection.
      const refused = await t.app.services.auth.refusedSessions(ctx, sessions);
      expect(refused).toEqual(
        new Map([
          [byId(changed.id), 'this token was issued before a password change: sign in again'],
          [byId(deleted.id), 'invalid token'],
        ]),
      );
      expect(sent).toEqual([expect.objectContaining({ find: 'users', filter: {} })]);
      // One of them: by id.
      sent.length = 0;
      const one = byId(deleted.id);
      expect([...(await t.app.services.auth.refusedSessions(ctx, [one])).keys()]).toEqual([one]);
      expect(sent).toEqual([
        expect.objectContaining({
          find: 'users',
          filter: { _id: { $in: [new Types.ObjectId(deleted.id)] } },
        }),
      ]);
    } finally {
      client.off('commandStarted', listener);
    }
  });
});
