import mongoose, { Types } from 'mongoose';
import type { CommandStartedEvent } from 'mongodb';
import WebSocket from 'ws';
import {
  LiveSessions,
  SESSION_CHECK_MS,
  SESSIONS_COMMENT,
  type LiveSession,
} from '../src/modules/live/live-sessions';
import type { Session } from '../src/modules/auth/auth.service';
import { ACCOUNTS_REREAD_PER_CHECK, AccountWatch } from '../src/modules/auth/account-watch';
import { systemCtx } from '../src/core/context';
import { createLogger } from '../src/core/logger';
import { Role } from '../src/modules/auth/roles';
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
    // Each check reads the accounts changed since the last (by updated_at) and, in turn, the
    // watched accounts by id: all three of them here, far fewer than ACCOUNTS_REREAD_PER_CHECK.
    const changed = checks.filter((c) => 'updated_at' in (c.filter as object));
    const turns = checks.filter((c) => !changed.includes(c));
    expect(changed.length).toBe(turns.length);
    expect(changed.length).toBeGreaterThanOrEqual(2);
    expect(changed.length).toBeLessThanOrEqual(Math.ceil(elapsed / SESSION_CHECK_MS) + 1);
    for (const check of checks) expect(check.find).toBe('users');
    for (const check of turns) {
      const filter = check.filter as { _id: { $in: Types.ObjectId[] } };
      expect(filter._id.$in.map(String).sort()).toEqual(users.map((u) => u.id).sort());
    }
    // No connection reads anything by itself.
    expect(requests).toBe(0);
    await Promise.all(subscribers.map((s) => s.dispose()));
  });

  it('reads what changed since the last check and a turn of accounts by id, never every account', async () => {
    type Account = { _id: Types.ObjectId; role: 'user'; token_version: number; updated_at: Date };
    const users = mongoose.connection.db!.collection<Account>('users');
    // More accounts than one turn reads again (ACCOUNTS_REREAD_PER_CHECK): stored as they are,
    // unchanged for an hour.
    const hourAgo = new Date(Date.now() - 3_600_000);
    const accounts = Array.from({ length: 2 * ACCOUNTS_REREAD_PER_CHECK + 100 }, (_, i) => ({
      _id: new Types.ObjectId(),
      email: `watched-${i}-${Date.now()}@example.com`,
      role: 'user' as const,
      password_hash: 'not a hash',
      token_version: 0,
      created_at: hourAgo,
      updated_at: hourAgo,
    }));
    await users.insertMany(accounts);
    const watched = accounts.map((account) => ({
      userId: account._id,
      role: Role.USER,
      tokenVersion: 0,
      checkedAt: Date.now(),
    }));
    const ids = (from: number, to: number) => accounts.slice(from, to).map((a) => String(a._id));
    const turn = ACCOUNTS_REREAD_PER_CHECK;
    const sent: Array<{ filter: Record<string, unknown> }> = [];
    const listener = (event: CommandStartedEvent) => {
      if (event.command.comment === SESSIONS_COMMENT && event.command.find)
        sent.push(event.command as unknown as { filter: Record<string, unknown> });
    };
    /** The ids the last check read again by id, and that it read nothing else but what changed. */
    const reread = () => {
      const byId = sent.filter((c) => '_id' in c.filter);
      const rest = sent.filter((c) => !byId.includes(c));
      expect(rest.map((c) => Object.keys(c.filter))).toEqual([['updated_at']]);
      sent.length = 0;
      return byId.flatMap((c) =>
        (c.filter as { _id: { $in: Types.ObjectId[] } })._id.$in.map(String),
      );
    };
    const client = mongoose.connection.getClient();
    client.on('commandStarted', listener);
    const ctx = systemCtx(createLogger({ logLevel: 'silent' }), 'subscription sessions');
    const watch = new AccountWatch();
    for (const user of watched) expect(watch.watch(user)).toBe(String(user.userId));
    const factsNow = () => new Map(ids(0, accounts.length).map((id) => [id, watch.facts(id)]));
    const good = { role: Role.USER, tokenVersion: 0 };
    try {
      // The first check: the first turn by id, and what changed since the sessions began.
      let changed = await watch.check(ctx);
      expect(changed.size).toBe(0);
      let facts = factsNow();
      expect(new Set([...facts.values()].map((f) => JSON.stringify(f)))).toEqual(
        new Set([JSON.stringify(good)]),
      );
      expect(reread()).toEqual(ids(0, turn));

      // Changed with updated_at (as the service's own writes stamp it), outside the next turn: seen
      // at once, by the read of what changed. Deleted by hand (no updated_at) in the next turn:
      // seen by its read by id. Deleted by hand in a later turn: seen when its turn comes.
      const stamped = String(accounts[2 * turn + 10]._id);
      const deletedNow = String(accounts[turn + 5]._id);
      const deletedLater = String(accounts[2 * turn + 20]._id);
      await users.updateOne(
        { _id: new Types.ObjectId(stamped) },
        { $inc: { token_version: 1 }, $set: { updated_at: new Date() } },
      );
      await users.deleteMany({
        _id: { $in: [deletedNow, deletedLater].map((id) => new Types.ObjectId(id)) },
      });
      changed = await watch.check(ctx);
      expect(reread()).toEqual(ids(turn, 2 * turn));
      expect([...changed].sort()).toEqual([stamped, deletedNow].sort());
      facts = factsNow();
      expect(facts.get(stamped)).toEqual({ role: Role.USER, tokenVersion: 1 });
      expect(facts.get(deletedNow)).toBeNull();
      expect(facts.get(deletedLater)).toEqual(good);

      changed = await watch.check(ctx);
      // The turn's last ids, then from the start again.
      expect(reread()).toEqual([...ids(2 * turn, accounts.length), ...ids(0, turn - 100)]);
      expect([...changed]).toEqual([deletedLater]);
      facts = factsNow();
      expect(facts.get(deletedLater)).toBeNull();
      expect(facts.get(stamped)).toEqual({ role: Role.USER, tokenVersion: 1 });
      expect(facts.get(deletedNow)).toBeNull();
      // Every other account as it was.
      expect([...facts.values()].filter((f) => f?.tokenVersion === 0)).toHaveLength(
        accounts.length - 3,
      );

      // The last session of an account gone: it is no longer read, in its turn or otherwise.
      const [leaving, staying] = [ids(turn - 100, turn - 99)[0], ids(turn - 99, turn - 98)[0]];
      watch.watch({ ...watched[turn - 99], checkedAt: Date.now() });
      watch.unwatch(leaving);
      watch.unwatch(staying);
      expect(watch.facts(leaving)).toBeUndefined();
      expect(watch.facts(staying)).toEqual(good);
      await watch.check(ctx);
      const next = reread();
      expect(next).not.toContain(leaving);
      expect(next[0]).toBe(staying);
    } finally {
      client.off('commandStarted', listener);
      await users.deleteMany({ _id: { $in: accounts.map((a) => a._id) } });
    }
  });

  it('looks again at a connection opened since the last check, whose account is known newer', async () => {
    const user = await registerUser(t);
    const auth = t.app.services.auth;
    const closed: string[] = [];
    const live = (name: string, session: Session): LiveSession => ({
      session,
      key: `user:${user.id}`,
      clientAddress: '127.0.0.1',
      close: (code, reason) => closed.push(`${name} ${code} ${reason}`),
      connection: { maxWaiting: 10, close: () => undefined },
    });
    const sessions = new LiveSessions(auth, createLogger({ logLevel: 'silent' }), 10, 100);
    try {
      const read = (await auth.authenticateSession(`Bearer ${user.token}`))!;
      // A later session of the account knows it with another token version, as of after any read
      // to come (a password change this read had not seen, as it were).
      const newer = live('newer', { ...read, tokenVersion: 1, checkedAt: Date.now() + 60_000 });
      const older = live('older', read);
      expect(sessions.admit(newer)).toBe(true);
      // Opened after it: its account does not change by it, and no read will tell it apart.
      expect(sessions.admit(older)).toBe(true);
      await until('the older connection closed', () => closed.length > 0, 3_000);
      await sleep(300);
      expect(closed).toEqual([
        'older 4403 Forbidden: this token was issued before a password change: sign in again',
      ]);
      sessions.release(newer);
      sessions.release(older);
    } finally {
      sessions.stop();
    }
  });

  it("does not take a read begun before a session's authentication over what it read", async () => {
    const users = mongoose.connection.db!.collection('users');
    const [first, second] = await Promise.all([registerUser(t), registerUser(t)]);
    // Both accounts now have token version 1.
    for (const user of [first, second])
      await users.updateOne(
        { _id: new Types.ObjectId(user.id) },
        { $set: { token_version: 1, updated_at: new Date() } },
      );
    const ctx = systemCtx(createLogger({ logLevel: 'silent' }), 'subscription sessions');
    const watch = new AccountWatch();
    const session = (id: string, tokenVersion: number, checkedAt: number) => ({
      userId: new Types.ObjectId(id),
      role: Role.USER,
      tokenVersion,
      checkedAt,
    });
    // Authenticated (as it says) after the check's read began: what it read stands.
    watch.watch(session(first.id, 0, Date.now() + 60_000));
    // Authenticated before: the read tells.
    watch.watch(session(second.id, 0, Date.now() - 1_000));
    expect([...(await watch.check(ctx))]).toEqual([second.id]);
    expect(watch.facts(first.id)).toEqual({ role: Role.USER, tokenVersion: 0 });
    expect(watch.facts(second.id)).toEqual({ role: Role.USER, tokenVersion: 1 });

    // A later session of the second account, authenticated after any read to come, knows it as
    // something else again: the next check says so (its older sessions are to be looked at), and
    // its read does not take that over.
    watch.watch(session(second.id, 2, Date.now() + 120_000));
    expect([...(await watch.check(ctx))]).toEqual([second.id]);
    expect(watch.facts(second.id)).toEqual({ role: Role.USER, tokenVersion: 2 });
    expect((await watch.check(ctx)).size).toBe(0);
  });
});
