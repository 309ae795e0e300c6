import { expect } from '@jest/globals';
import mongoose, { Types } from 'mongoose';
import {
  AiPauseWalletDocument,
  PauseUserWalletDocument,
  ResumeUserWalletDocument,
  RevokeAgentTokenDocument,
  UpdateAiManagedStateDocument,
  UpdateUserWalletDocument,
  UserWalletEventsDocument,
} from './generated/graphql';
import { codes, gqlAt, sameDatabaseEnv, startTestApp, type TestApp } from './helpers/app';
import { startInstance } from './helpers/processes';
import {
  adminToken,
  binanceCredential,
  limits,
  registerUser,
  userWallet,
  type TestUser,
} from './helpers/factories';
import { subscribe, until } from './helpers/live';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';
import { FEED_SETTINGS, WalletEventFeed } from '../src/modules/live/wallet-event-feed';
import { AuditOutboxSweep } from '../src/modules/audit/outbox-sweep';
import { walletOutbox, walletPendingEvents } from '../src/modules/wallets/wallet-outbox';
import { systemCtx } from '../src/core/context';
import type { StoredWallet } from './helpers/stored';
import { UserWalletEventModel } from '../src/modules/audit/user-wallet-event.model';
import { createLogger } from '../src/core/logger';
import { createLoaders } from '../src/core/loaders';
import type { LiveChannel } from '../src/core/context';
import { Role } from '../src/modules/auth/roles';
import { subscriptionContext } from '../src/modules/live/subscription-context';
import { CheckedDocuments } from '../src/modules/live/checked-documents';
import { GraphQLError, GraphQLObjectType, GraphQLSchema, GraphQLString, parse } from 'graphql';
import http from 'node:http';
import { WebSocketServer } from 'ws';
import { serveGraphqlWs } from '../src/modules/live/ws-transport';

let t: TestApp;
let admin: string;
beforeAll(async () => {
  t = await startTestApp({ SUBSCRIPTION_AUTH_RECHECK: '1s' });
  admin = await adminToken(t);
});
afterAll(() => t.close());

const EVENT = 'id kind actor actorRole before after at';
const MINE = `subscription ($w: ObjectID) { myWalletEvents(walletId: $w) { ${EVENT} } }`;
const MANAGED = `subscription ($k: [WalletEventKind!]) { managedWalletEvents(kinds: $k) { ${EVENT} } }`;

async function issueAgent(name: string): Promise<{ id: string; token: string }> {
  const result = await t.raw<{ issueAgentToken: { id: string; token: string } }>(
    'mutation ($n: String!) { issueAgentToken(name: $n) { id token } }',
    { n: name },
    admin,
  );
  return result.data!.issueAgentToken;
}

async function walletOf(user: TestUser): Promise<string> {
  return (await userWallet(t, user, await binanceCredential(t, user))).id;
}

/** The wallet's trail as `events` shows it, oldest first. */
async function trail(user: TestUser, walletId: string): Promise<Array<Record<string, unknown>>> {
  const result = await t.gql(UserWalletEventsDocument, { id: walletId, first: 100 }, user.token);
  return [...(result.data!.userWallet.events as Array<Record<string, unknown>>)].reverse();
}

describe('live wallet events over graphql-ws', () => {
  it("streams the caller's own wallets' events, as the trail shows them, in order", async () => {
    const user = await registerUser(t);
    const walletId = await walletOf(user);
    const other = await registerUser(t);
    const otherWallet = await walletOf(other);
    const live = subscribe(t.url, user.token, MINE);
    await live.connected;
    const agent = (await issueAgent('live-writer')).token;
    for (let i = 1; i <= 3; i++) {
      expect(
        (
          await t.gql(
            UpdateAiManagedStateDocument,
            { walletId, input: { riskScore: 10 * i } },
            agent,
          )
        ).errors,
      ).toBeUndefined();
    }
    await t.gql(
      UpdateUserWalletDocument,
      { id: walletId, input: { userLimits: limits({ maxTotalRisk: 500 }) } },
      user.token,
    );
    await t.gql(PauseUserWalletDocument, { id: walletId }, user.token);
    await t.gql(PauseUserWalletDocument, { id: otherWallet }, other.token);
    const expected = (await trail(user, walletId)).slice(-5);
    await until('the five events', () =>
      expected.every((e) => live.events.some((got) => got.id === e.id)),
    );
    // At least once: a repeat is allowed, a gap or a reordering is not.
    const unique = live.events.filter((e, i) => live.events.findIndex((f) => f.id === e.id) === i);
    // Events recorded just before the subscription started may come too (never a gap).
    expect(unique.slice(unique.findIndex((e) => e.id === expected[0].id))).toEqual(expected);
    expect(unique.every((e) => e.actor !== other.id)).toBe(true);
    expect(expected.map((e) => e.kind)).toEqual([
      'AI_STATE_CHANGED',
      'AI_STATE_CHANGED',
      'AI_STATE_CHANGED',
      'LIMITS_CHANGED',
      'STATUS_CHANGED',
    ]);
    await live.dispose();
  });

  it("follows one wallet when asked, and refuses another user's wallet", async () => {
    const user = await registerUser(t);
    const [a, b] = [await walletOf(user), await walletOf(user)];
    const one = subscribe(t.url, user.token, MINE, { w: b });
    await one.connected;
    await t.gql(PauseUserWalletDocument, { id: a }, user.token);
    await t.gql(PauseUserWalletDocument, { id: b }, user.token);
    await until('the pause of b', () => one.events.some((e) => e.kind === 'STATUS_CHANGED'));
    await new Promise((resolve) => setTimeout(resolve, 800));
    const ofA = new Set((await trail(user, a)).map((e) => e.id));
    expect(one.events.some((e) => ofA.has(e.id))).toBe(false);
    expect(one.events.at(-1)!.id).toBe((await trail(user, b)).at(-1)!.id);
    await one.dispose();

    const stranger = await registerUser(t);
    const refused = subscribe(t.url, stranger.token, MINE, { w: a });
    await refused.completed;
    expect(refused.errors).toEqual([
      expect.objectContaining({ extensions: { code: 'FORBIDDEN' } }),
    ]);
    const unknown = subscribe(t.url, stranger.token, MINE, {
      w: new Types.ObjectId().toHexString(),
    });
    await unknown.completed;
    expect(unknown.errors).toEqual([
      expect.objectContaining({ extensions: { code: 'NOT_FOUND' } }),
    ]);
    await refused.dispose();
    await unknown.dispose();
  });

  it("gives agents every wallet's events, filtered by kind, and keeps users out of them", async () => {
    const agent = (await issueAgent('status-watcher')).token;
    const statuses = subscribe(t.url, agent, MANAGED, { k: ['STATUS_CHANGED'] });
    await statuses.connected;
    const user = await registerUser(t);
    const walletId = await walletOf(user);
    await t.gql(UpdateAiManagedStateDocument, { walletId, input: { riskScore: 11 } }, agent);
    await t.gql(AiPauseWalletDocument, { walletId, reason: 'watching' }, agent);
    await until('the pause', () =>
      statuses.events.some(
        (e) =>
          e.kind === 'STATUS_CHANGED' &&
          (e.after as { pauseReason?: string }).pauseReason === 'watching',
      ),
    );
    expect(statuses.events.every((e) => e.kind === 'STATUS_CHANGED')).toBe(true);
    await statuses.dispose();

    const asUser = subscribe(t.url, user.token, MANAGED);
    await asUser.completed;
    expect(asUser.errors).toEqual([expect.objectContaining({ extensions: { code: 'FORBIDDEN' } })]);
    await asUser.dispose();
  });

  it('refuses a connection without a good token (4403) and closes one whose token is revoked', async () => {
    const anonymous = subscribe(t.url, undefined, MINE);
    expect((await anonymous.closed).code).toBe(4403);
    const forged = subscribe(t.url, 'not.a.token', MINE);
    expect((await forged.closed).code).toBe(4403);

    const { id, token } = await issueAgent('to-be-revoked');
    const live = subscribe(t.url, token, MANAGED);
    await live.connected;
    await t.gql(RevokeAgentTokenDocument, { id }, admin);
    const closed = await live.closed;
    expect(closed.code).toBe(4403);
    expect(t.logs.join('\n')).not.toContain(token);
  });

  it('applies the same limits as HTTP, at most 20 subscriptions a connection, and only subscriptions', async () => {
    const user = await registerUser(t);
    const deep = subscribe(
      t.url,
      user.token,
      `subscription { myWalletEvents { ${'before '.repeat(1)} id ${'a: id '.repeat(16)} } }`,
    );
    await deep.completed;
    expect(deep.errors).toEqual([
      expect.objectContaining({
        message: expect.stringMatching(/Aliases limit of 15/),
        extensions: { code: 'BAD_USER_INPUT' },
      }),
    ]);
    const query = subscribe(t.url, user.token, '{ me { id } }');
    await query.completed;
    expect(query.errors).toEqual([
      expect.objectContaining({ extensions: expect.objectContaining({ code: 'BAD_USER_INPUT' }) }),
    ]);
    const broken = subscribe(t.url, user.token, 'subscription { myWalletEvents { id ');
    await broken.completed;
    expect(broken.errors).toEqual([
      expect.objectContaining({
        message: expect.stringMatching(/^Syntax Error at line 1/),
        extensions: { code: 'BAD_USER_INPUT' },
      }),
    ]);

    const { createClient } = await import('graphql-ws');
    const WebSocket = (await import('ws')).default;
    const client = createClient({
      url: t.url.replace('http', 'ws') + '/graphql',
      webSocketImpl: WebSocket,
      connectionParams: { authorization: `Bearer ${user.token}` },
      retryAttempts: 0,
    });
    const outcomes: unknown[] = [];
    const subscriptions = Array.from({ length: 21 }, () =>
      client.subscribe(
        { query: MINE },
        { next: () => undefined, error: (e) => outcomes.push(e), complete: () => undefined },
      ),
    );
    await until('the 21st refused', () => outcomes.length > 0);
    expect(outcomes).toEqual([
      [
        expect.objectContaining({
          message: 'too many subscriptions on this connection: at most 20',
          extensions: { code: 'RATE_LIMITED' },
        }),
      ],
    ]);
    for (const unsubscribe of subscriptions) unsubscribe();
    await client.dispose();
    await Promise.all([deep, query, broken].map((s) => s.dispose()));
  });

  it('lets a resumed wallet be followed after it was paused (status round trip)', async () => {
    const user = await registerUser(t);
    const walletId = await walletOf(user);
    const live = subscribe(t.url, user.token, MINE, { w: walletId });
    await live.connected;
    await t.gql(PauseUserWalletDocument, { id: walletId }, user.token);
    await t.gql(ResumeUserWalletDocument, { id: walletId }, user.token);
    await until(
      'pause and resume',
      () => live.events.filter((e) => e.kind === 'STATUS_CHANGED').length >= 2,
    );
    expect(
      live.events
        .filter((e) => e.kind === 'STATUS_CHANGED')
        .map((e) => (e.after as { status: string }).status),
    ).toEqual(['USER_PAUSED', 'ACTIVE']);
    expect(codes(await t.gql(ResumeUserWalletDocument, { id: walletId }, user.token))).toEqual([
      'CONFLICT',
    ]);
    await live.dispose();
  });
});

/** A counter of the service's /metrics (0 while it has not moved). */
async function metric(name: string): Promise<number> {
  const text = await (await fetch(`${t.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line ? Number(line.split(' ')[1]) : 0;
}
const offers = () => metric('live_event_offers_total');
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** Longer than the feed's poll and settle time: whatever was recorded before has gone out. */
const FEED_ROUND_MS = 1_000;

/** `count` subscriptions on one connection, counting what they receive. */
function crowd(token: string, query: string, variables: Record<string, unknown>, count: number) {
  const client = createClient({
    url: t.url.replace('http', 'ws') + '/graphql',
    webSocketImpl: WebSocket,
    connectionParams: { authorization: `Bearer ${token}` },
    retryAttempts: 0,
  });
  const seen = { events: 0, errors: [] as unknown[] };
  for (let i = 0; i < count; i++)
    client.subscribe(
      { query, variables },
      {
        next: () => seen.events++,
        error: (e) => seen.errors.push(e),
        complete: () => undefined,
      },
    );
  return { seen, dispose: () => client.dispose() as Promise<void> };
}

async function writeAiState(walletId: string, agent: string, riskScore: number): Promise<void> {
  const result = await t.gql(
    UpdateAiManagedStateDocument,
    { walletId, input: { riskScore } },
    agent,
  );
  expect(result.errors).toBeUndefined();
}

describe('finding the subscriptions an event concerns', () => {
  it("offers an event to the subscriptions it concerns only, not to the other connections'", async () => {
    const owner = await registerUser(t);
    const walletId = await walletOf(owner);
    const writer = (await issueAgent('index-writer')).token;
    const strangers = await Promise.all([registerUser(t), registerUser(t), registerUser(t)]);
    const watcher = (await issueAgent('index-status-watcher')).token;
    const unconcerned = [
      ...strangers.map((s) => crowd(s.token, MINE, {}, 15)),
      crowd(watcher, MANAGED, { k: ['STATUS_CHANGED'] }, 5),
    ];
    const all = subscribe(t.url, owner.token, MINE);
    const one = subscribe(t.url, owner.token, MINE, { w: walletId });
    await Promise.all([all.connected, one.connected]);
    try {
      // Every subscription taken, and the wallet's own CREATED gone out, before counting.
      await sleep(FEED_ROUND_MS);
      const before = await offers();
      await writeAiState(walletId, writer, 31);
      await until('the write on both', () =>
        [all, one].every((s) => s.events.some((e) => e.kind === 'AI_STATE_CHANGED')),
      );
      await sleep(FEED_ROUND_MS);
      // Two subscriptions concern it; the 50 others were never looked at.
      expect((await offers()) - before).toBe(2);
      expect(unconcerned.map((c) => c.seen)).toEqual(
        unconcerned.map(() => ({ events: 0, errors: [] })),
      );

      // A subscription that ended is out of the index.
      await one.dispose();
      await sleep(FEED_ROUND_MS);
      const afterEnd = await offers();
      await writeAiState(walletId, writer, 32);
      await until(
        'the second write',
        () => all.events.filter((e) => e.kind === 'AI_STATE_CHANGED').length === 2,
      );
      await sleep(FEED_ROUND_MS);
      expect((await offers()) - afterEnd).toBe(1);
    } finally {
      await all.dispose();
      await Promise.all(unconcerned.map((c) => c.dispose()));
    }
  });

  it('offers an agent of every wallet the kinds it asked for only', async () => {
    const owner = await registerUser(t);
    const walletId = await walletOf(owner);
    const writer = (await issueAgent('kinds-writer')).token;
    const watcher = (await issueAgent('kinds-watcher')).token;
    const statuses = subscribe(t.url, watcher, MANAGED, { k: ['STATUS_CHANGED'] });
    const states = subscribe(t.url, watcher, MANAGED, { k: ['AI_STATE_CHANGED', 'CREATED'] });
    await Promise.all([statuses.connected, states.connected]);
    try {
      await sleep(FEED_ROUND_MS);
      const before = await offers();
      await writeAiState(walletId, writer, 33);
      await until('the write', () => states.events.some((e) => e.kind === 'AI_STATE_CHANGED'));
      await sleep(FEED_ROUND_MS);
      expect((await offers()) - before).toBe(1);
      expect(statuses.events).toEqual([]);
    } finally {
      await Promise.all([statuses.dispose(), states.dispose()]);
    }
  });
});

/** A graphql-ws connection spoken by hand, keeping every frame after the ack as it came. */
async function rawConnection(token: string) {
  const socket = new WebSocket(t.url.replace('http', 'ws') + '/graphql', 'graphql-transport-ws');
  const frames: string[] = [];
  let acknowledge!: () => void;
  const acknowledged = new Promise<void>((resolve) => (acknowledge = resolve));
  socket.on('message', (data: Buffer) => {
    const text = data.toString('utf8');
    if ((JSON.parse(text) as { type: string }).type === 'connection_ack') acknowledge();
    else frames.push(text);
  });
  await new Promise((resolve) => socket.once('open', resolve));
  socket.send(
    JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${token}` } }),
  );
  await acknowledged;
  const send = (message: object) => socket.send(JSON.stringify(message));
  return {
    frames,
    subscribe: (id: string, query: string, variables: Record<string, unknown>) =>
      send({ id, type: 'subscribe', payload: { query, variables } }),
    complete: (id: string) => send({ id, type: 'complete' }),
    close: () => socket.close(),
  };
}

/** A next frame's payload, as it came: the frame must be graphql-ws's, byte for byte. */
function payloadText(frame: string, id: string): string {
  const head = `{"id":${JSON.stringify(id)},"type":"next","payload":`;
  expect(frame.startsWith(head) && frame.endsWith('}')).toBe(true);
  return frame.slice(head.length, -1);
}

describe('next frames', () => {
  it('carry each distinct result serialised once; each socket adds only its envelope', async () => {
    const owner = await registerUser(t);
    const walletId = await walletOf(owner);
    const writer = (await issueAgent('frames-writer')).token;
    const [a, b] = [await rawConnection(owner.token), await rawConnection(owner.token)];
    const SHARED = 'subscription ($w: ObjectID) { myWalletEvents(walletId: $w) { id kind after } }';
    const OWN = 'subscription ($w: ObjectID) { myWalletEvents(walletId: $w) { id version } }';
    const oddId = 'a "quoted" id \\ é';
    try {
      a.subscribe('1', SHARED, { w: walletId });
      b.subscribe(oddId, SHARED, { w: walletId });
      b.subscribe('own', OWN, { w: walletId });
      await sleep(FEED_ROUND_MS);
      const serialised = () => metric('live_results_serialised_total');
      const sent = () => metric('live_frames_sent_total');
      const before = { serialised: await serialised(), sent: await sent() };
      // The wallet's CREATED may have come (recorded just before the subscriptions began).
      a.frames.length = 0;
      b.frames.length = 0;
      await writeAiState(walletId, writer, 41);
      await until('the three frames', () => a.frames.length === 1 && b.frames.length === 2);
      await sleep(FEED_ROUND_MS);
      // Two distinct results (two selections), three frames.
      expect({ serialised: await serialised(), sent: await sent() }).toEqual({
        serialised: before.serialised + 2,
        sent: before.sent + 3,
      });

      const eventId = (await trail(owner, walletId)).at(-1)!.id;
      const shared = payloadText(a.frames[0], '1');
      const fromB = b.frames.find((f) => f.includes('"kind"'))!;
      expect(payloadText(fromB, oddId)).toBe(shared);
      expect(JSON.parse(fromB)).toEqual({
        id: oddId,
        type: 'next',
        payload: {
          data: {
            myWalletEvents: {
              id: eventId,
              kind: 'AI_STATE_CHANGED',
              after: expect.objectContaining({ riskScore: 41 }),
            },
          },
        },
      });
      const own = b.frames.find((f) => f.startsWith('{"id":"own"'))!;
      expect(JSON.parse(payloadText(own, 'own'))).toEqual({
        data: { myWalletEvents: { id: eventId, version: expect.any(Number) } },
      });

      // The client's complete ends that subscription alone, and is not answered.
      a.complete('1');
      await sleep(100);
      await writeAiState(walletId, writer, 42);
      await until('the second write on b', () => b.frames.length === 4);
      await sleep(FEED_ROUND_MS);
      expect(a.frames).toHaveLength(1);
      expect(b.frames.map((f) => (JSON.parse(f) as { type: string }).type)).toEqual([
        'next',
        'next',
        'next',
        'next',
      ]);
    } finally {
      a.close();
      b.close();
    }
  });
});

const trailEvents = () => mongoose.connection.db!.collection('user_wallet_events');

describe("this instance's own writes", () => {
  it('go out at once, before the poll could send them, and once', async () => {
    const owner = await registerUser(t);
    const walletId = await walletOf(owner);
    const writer = (await issueAgent('own-writer')).token;
    const live = subscribe(t.url, owner.token, MINE, { w: walletId });
    await live.connected;
    try {
      await sleep(FEED_ROUND_MS);
      const atOnce = () => metric('live_own_events_total{sent="at_once"}');
      const before = await atOnce();
      await writeAiState(walletId, writer, 51);
      await writeAiState(walletId, writer, 52);
      const written = (await trail(owner, walletId)).slice(-2).map((e) => e.id as string);
      await until('both writes', () => written.every((id) => live.events.some((e) => e.id === id)));
      for (const id of written) {
        const recorded = (await trailEvents().findOne({ _id: new Types.ObjectId(id) }))!
          .recorded_at as Date;
        const arrived = live.arrivals[live.events.findIndex((e) => e.id === id)];
        // The poll sends an event no sooner than the settle time after it reached the trail.
        expect(arrived - recorded.getTime()).toBeLessThan(FEED_SETTINGS.settleMs);
      }
      expect((await atOnce()) - before).toBe(2);
      // The poll reads them again and drops them: each came once, in order.
      await sleep(FEED_ROUND_MS);
      expect(live.events.filter((e) => written.includes(e.id as string)).map((e) => e.id)).toEqual(
        written,
      );
    } finally {
      await live.dispose();
    }
  });

  it('reach a subscription that began just after they went out, recorded from its start on', async () => {
    const owner = await registerUser(t);
    const walletId = await walletOf(owner);
    const writer = (await issueAgent('own-writer-before-subscribe')).token;
    // Its CREATED left the outbox longer ago than the feed's overlap: nothing earlier may come.
    await sleep(1_100);
    // A feed whose poll never runs: whatever reaches its subscriptions came at once, or with them.
    const feed = feedPolledByTest(0, 1_000);
    const stopHearing = walletOutbox.onRecorded((events, wallet) =>
      feed.recordedHere(events, wallet),
    );
    const follow = () => {
      const versions: Array<number | null> = [];
      const subscription = feed.subscribe(
        { wallet: new Types.ObjectId(walletId) },
        100,
        () => undefined,
      );
      const reading = (async () => {
        for await (const event of subscription) versions.push(event.version);
      })();
      return { versions, end: () => subscription.return().then(() => reading) };
    };
    const first = follow();
    const later: Array<ReturnType<typeof follow>> = [];
    try {
      await sleep(50);
      await writeAiState(walletId, writer, 71);
      await until('the write at once', () => first.versions.length === 1);
      // Begun right after it went out (the allowance for clocks is a quarter second): it has it too.
      later.push(follow());
      await until(
        'the write, on the subscription begun after it',
        () => later[0].versions.length === 1,
      );
      // Begun well after: what was recorded before its start is not its.
      await sleep(600);
      later.push(follow());
      await writeAiState(walletId, writer, 72);
      await until('the next write on all three', () =>
        [first, ...later].every((f) => f.versions.includes(2)),
      );
      expect([first, ...later].map((f) => f.versions)).toEqual([[1, 2], [1, 2], [2]]);
    } finally {
      stopHearing();
      await Promise.all([first, ...later].map((f) => f.end()));
      await feed.stop();
    }
  });

  describe('wait for an earlier event of their wallet from a second instance', () => {
    let other: Awaited<ReturnType<typeof startInstance>>;
    beforeAll(async () => {
      other = await startInstance(sameDatabaseEnv(t));
    });
    afterAll(() => other.stop());

    /**
     * A feed of its own, told of this process's writes as the app's is, whose poll runs only when
     * the test says: what it sends without one went out at once. The versions it sent, in order.
     */
    async function ownFeed(walletId: string) {
      const feed = feedPolledByTest(0, 1_000);
      const stopHearing = walletOutbox.onRecorded((events, wallet) =>
        feed.recordedHere(events, wallet),
      );
      const sent: Array<number | null> = [];
      const subscription = feed.subscribe(
        { wallet: new Types.ObjectId(walletId) },
        100,
        () => undefined,
      );
      const reading = (async () => {
        for await (const event of subscription) sent.push(event.version);
      })();
      await sleep(50);
      return {
        sent,
        poll: () => feed.poll(systemCtx(createLogger({ logLevel: 'silent' }), 'test poll')),
        stop: async () => {
          stopHearing();
          await subscription.return();
          await reading;
          await feed.stop();
        },
      };
    }

    /** A wallet whose CREATED left its outbox longer ago than the feed's overlap. */
    async function quietWallet(owner: TestUser): Promise<string> {
      const walletId = await walletOf(owner);
      await sleep(1_100);
      return walletId;
    }

    async function writeThere(walletId: string, agent: string, riskScore: number) {
      const result = await gqlAt(
        other.url,
        UpdateAiManagedStateDocument,
        { walletId, input: { riskScore } },
        agent,
      );
      expect(result.errors).toBeUndefined();
    }

    it('in the trail, not read here yet: they go after it, with the poll; once', async () => {
      const owner = await registerUser(t);
      const walletId = await quietWallet(owner);
      const writer = (await issueAgent('two-instance-own-writer')).token;
      const feed = await ownFeed(walletId);
      try {
        await writeThere(walletId, writer, 61);
        await writeAiState(walletId, writer, 62);
        await sleep(500);
        expect(feed.sent).toEqual([]);
        await feed.poll();
        await until('both, in order', () => feed.sent.length === 2);
        expect(feed.sent).toEqual([1, 2]);
        await feed.poll();
        // Known now: the next one goes at once (no poll), and nothing came twice.
        await writeAiState(walletId, writer, 63);
        await until('the third at once', () => feed.sent.length === 3);
        await sleep(100);
        expect(feed.sent).toEqual([1, 2, 3]);
      } finally {
        await feed.stop();
      }
    });

    it("a batch's: each wallet's at once, or after the earlier one of its own", async () => {
      const owner = await registerUser(t);
      const [quiet, written] = [await walletOf(owner), await walletOf(owner)];
      await sleep(1_100);
      const writer = (await issueAgent('two-instance-batch-writer')).token;
      const [quietFeed, writtenFeed] = [await ownFeed(quiet), await ownFeed(written)];
      try {
        await writeThere(written, writer, 81);
        const batch = await t.raw<{ updateAiManagedStates: Array<{ error: unknown }> }>(
          'mutation ($a: ObjectID!, $b: ObjectID!) { updateAiManagedStates(updates: [{ walletId: $a, input: { riskScore: 82 } }, { walletId: $b, input: { riskScore: 83 } }]) { error { code } } }',
          { a: quiet, b: written },
          writer,
        );
        expect(batch.data!.updateAiManagedStates).toEqual([{ error: null }, { error: null }]);
        await until("the quiet wallet's at once", () => quietFeed.sent.length === 1);
        await sleep(300);
        expect({ quiet: quietFeed.sent, written: writtenFeed.sent }).toEqual({
          quiet: [1],
          written: [],
        });
        await writtenFeed.poll();
        await until('both, in order', () => writtenFeed.sent.length === 2);
        expect(writtenFeed.sent).toEqual([1, 2]);
      } finally {
        await quietFeed.stop();
        await writtenFeed.stop();
      }
    });

    it("still in that instance's outbox: they go after it, once it reaches the trail", async () => {
      const owner = await registerUser(t);
      const walletId = await quietWallet(owner);
      const wallet = new Types.ObjectId(walletId);
      const writer = (await issueAgent('two-instance-outbox-writer')).token;
      const feed = await ownFeed(walletId);
      // The trail refuses the second instance's event for real: a unique index, and an event in
      // its way.
      await trailEvents().createIndex(
        { wallet_id: 1, version: 1, kind: 1 },
        { unique: true, name: 'test_blocker' },
      );
      const blocker = await trailEvents().insertOne({
        wallet_id: wallet,
        version: 1,
        kind: 'ai_state_changed',
        actor: 'blocker',
        actor_role: 'agent',
        actor_id: new Types.ObjectId(),
        before: null,
        after: null,
        at: new Date(0),
        recorded_at: new Date(0),
      });
      try {
        await writeThere(walletId, writer, 71);
        const stored = await mongoose.connection
          .db!.collection<StoredWallet>('user_wallets')
          .findOne({ _id: wallet });
        expect(stored!.pending_events.map((e) => e.version)).toEqual([1]);
        await writeAiState(walletId, writer, 72);
        await sleep(500);
        await feed.poll();
        expect(feed.sent).toEqual([]);

        await trailEvents().deleteOne({ _id: blocker.insertedId });
        await trailEvents().dropIndex('test_blocker');
        // Delivered late, as a sweep does.
        await new AuditOutboxSweep(
          createLogger({ logLevel: 'silent' }),
          walletPendingEvents,
        ).deliverPending(new Date(Date.now() + 60_000));
        await feed.poll();
        await until('both, in order', () => feed.sent.length === 2);
        expect(feed.sent).toEqual([1, 2]);
      } finally {
        await trailEvents().deleteOne({ _id: blocker.insertedId });
        await trailEvents()
          .dropIndex('test_blocker')
          .catch(() => undefined);
        await feed.stop();
      }
    });
  });
});

describe('two instances on one database', () => {
  it('deliver every event to subscribers on either, at least once and in order per wallet; SIGTERM closes the sockets and exits 0', async () => {
    const other = await startInstance(sameDatabaseEnv(t));
    let stopped = false;
    try {
      const user = await registerUser(t);
      const wallets = [await walletOf(user), await walletOf(user), await walletOf(user)];
      const agent = (await issueAgent('two-instance-writer')).token;
      const here = subscribe(t.url, user.token, MINE);
      const there = subscribe(other.url, user.token, MINE);
      await Promise.all([here.connected, there.connected]);
      const write = (url: string, walletId: string, riskScore: number) =>
        fetch(`${url}/graphql`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${agent}` },
          body: JSON.stringify({
            query:
              'mutation ($w: ObjectID!, $r: Int!) { updateAiManagedState(walletId: $w, input: { riskScore: $r }) { version } }',
            variables: { w: walletId, r: riskScore },
          }),
        }).then((r) => r.json());
      for (let round = 0; round < 6; round++) {
        // Each round writes every wallet at once, through one instance or the other.
        await Promise.all(
          wallets.map((w, i) => write((round + i) % 2 === 0 ? t.url : other.url, w, round + 1)),
        );
      }
      const trails = await Promise.all(wallets.map((w) => trail(user, w)));
      const written = trails.flatMap((events) =>
        events.filter((e) => e.kind === 'AI_STATE_CHANGED').map((e) => e.id as string),
      );
      expect(written).toHaveLength(18);
      for (const subscriber of [here, there]) {
        await until(
          'every write on every instance',
          () => written.every((id) => subscriber.events.some((e) => e.id === id)),
          15_000,
        );
        trails.forEach((events) => {
          const ids = events.map((e) => e.id);
          const received = subscriber.events.map((e) => e.id).filter((id) => ids.includes(id));
          const firstSeen = received.filter((id, i) => received.indexOf(id) === i);
          expect(firstSeen).toEqual(ids.slice(ids.indexOf(firstSeen[0])));
        });
      }
      await here.dispose();
      await other.stop();
      stopped = true;
      expect(await other.running.exited).toBe(0);
      expect((await there.closed).code).toBe(1001);
    } finally {
      if (!stopped) await other.stop();
    }
  });
});

describe('what an idle subscription holds', () => {
  it('builds its child logger and DataLoaders only when asked for, once', () => {
    const root = createLogger({ logLevel: 'silent' });
    let children = 0;
    let loaderSets = 0;
    const counting = Object.create(root, {
      child: {
        value: (...args: Parameters<typeof root.child>) => {
          children++;
          return root.child(...args);
        },
      },
    }) as typeof root;
    const ctx = subscriptionContext(
      {
        clientAddress: '127.0.0.1',
        actor: { kind: 'user', userId: new Types.ObjectId(), role: Role.USER, email: 'a@b.c' },
        live: { shareKey: 'k' } as LiveChannel,
      },
      counting,
      () => {
        loaderSets++;
        return createLoaders();
      },
    );
    expect({ children, loaderSets }).toEqual({ children: 0, loaderSets: 0 });
    expect(ctx.logger).toBe(ctx.logger);
    expect(ctx.loaders).toBe(ctx.loaders);
    expect({ children, loaderSets }).toEqual({ children: 1, loaderSets: 1 });
  });

  it('shares one checked document among the subscriptions that send the same text', () => {
    let checks = 0;
    const documents = new CheckedDocuments((text) => {
      checks++;
      return text.includes('{') ? parse(text) : [new GraphQLError('not an operation')];
    });
    const query = 'subscription { myWalletEvents { id } }';
    const first = documents.of(query);
    const second = documents.of(`${query}`);
    expect(second).toBe(first);
    expect(checks).toBe(1);
    expect('key' in first && first.key).not.toContain('myWalletEvents');
    // Refused texts are checked each time (nothing kept for them), as are long ones.
    expect(documents.of('nope')).toEqual([new GraphQLError('not an operation')]);
    expect(documents.of('nope')).toHaveLength(1);
    const long = `subscription { myWalletEvents { id } } ${'#'.repeat(5_000)}`;
    expect(documents.of(long)).not.toBe(documents.of(long));
    expect(checks).toBe(5);
  });
});

describe('the WebSocket transport', () => {
  it('keeps one keep-alive for every socket, ending one that stops answering; keeps no upgrade request', async () => {
    const server = await transportWithKeepAlive(100);
    try {
      const [answering, silent] = await Promise.all([server.open(true), server.open(false)]);
      const silentClosed = new Promise<number>((resolve) => silent.once('close', resolve));
      // Pinged at the first round, ended at the second (or the third) for not answering.
      expect(await silentClosed).toBe(1006);
      await sleep(300);
      expect(answering.readyState).toBe(WebSocket.OPEN);
      expect(server.extras).toHaveLength(2);
      for (const extra of server.extras) {
        expect(Object.keys(extra).sort()).toEqual(['clientAddress', 'socket']);
        expect(extra).toMatchObject({ clientAddress: '127.0.0.1' });
      }
      answering.close();
    } finally {
      await server.close();
    }
  });

  it('gives every socket the whole keep-alive interval to answer its ping, however few the sockets', async () => {
    // 1 s between pings, ticks of 100 ms: two sockets go through a round in two or three ticks.
    const server = await transportWithKeepAlive(1_000);
    try {
      // A round with no socket at all first: the sockets come after it.
      await sleep(1_200);
      const [late, silent] = await Promise.all([server.open(false), server.open(false)]);
      // Answers every ping 600 ms late: within the interval, so it stays.
      let pings = 0;
      late.on('ping', () => {
        pings++;
        setTimeout(() => late.pong(), 600);
      });
      const silentClosed = new Promise<number>((resolve) => silent.once('close', resolve));
      expect(await silentClosed).toBe(1006);
      await sleep(2_500);
      expect(late.readyState).toBe(WebSocket.OPEN);
      // Pinged once a round, not at every pass of a quick round.
      expect(pings).toBeGreaterThanOrEqual(2);
      expect(pings).toBeLessThanOrEqual(5);
      late.close();
    } finally {
      await server.close();
    }
  });

  it('gives a socket the whole interval even when the sockets before it leave', async () => {
    // 2 s between pings, ticks of 100 ms: one socket a tick, the tenth pinged 900 ms into a round.
    const server = await transportWithKeepAlive(2_000);
    const others: WebSocket[] = [];
    try {
      for (let i = 0; i < 9; i++) others.push(await server.open(true));
      const late = await server.open(false);
      // Answers every ping 1.5 s late: within the interval, so it stays.
      const firstPing = new Promise<void>((resolve) =>
        late.on('ping', () => {
          resolve();
          setTimeout(() => late.pong(), 1_500);
        }),
      );
      await firstPing;
      // Alone from now on: the next round comes to it first, 1.1 s after its ping, before its
      // answer.
      for (const other of others) other.close();
      await sleep(4_500);
      expect(late.readyState).toBe(WebSocket.OPEN);
      late.close();
    } finally {
      await server.close();
    }
  });
});

/**
 * graphql-ws on the service's transport with a keep-alive of `keepAliveMs`, on a port of its own,
 * with the connections' extras as the transport made them. `open(autoPong)` connects a client
 * (answering pings itself, or not) once it is acknowledged.
 */
async function transportWithKeepAlive(keepAliveMs: number) {
  const schema = new GraphQLSchema({
    query: new GraphQLObjectType({
      name: 'Query',
      fields: { ok: { type: GraphQLString, resolve: () => 'ok' } },
    }),
  });
  const httpServer = http.createServer();
  const wss = new WebSocketServer({ server: httpServer, path: '/graphql' });
  const extras: object[] = [];
  const transport = serveGraphqlWs(
    {
      schema,
      onConnect: (ctx) => {
        extras.push(ctx.extra);
        return true;
      },
    },
    wss,
    (socket, request) => ({ socket, clientAddress: request.socket.remoteAddress ?? '' }),
    createLogger({ logLevel: 'silent' }),
    keepAliveMs,
  );
  await new Promise<void>((resolve) => httpServer.listen(0, '127.0.0.1', resolve));
  const { port } = httpServer.address() as { port: number };
  const open = (autoPong: boolean) =>
    new Promise<WebSocket>((resolve) => {
      const socket = new WebSocket(`ws://127.0.0.1:${port}/graphql`, 'graphql-transport-ws', {
        autoPong,
      });
      socket.on('message', () => resolve(socket));
      socket.once('open', () => socket.send(JSON.stringify({ type: 'connection_init' })));
    });
  return {
    extras,
    open,
    close: async () => {
      await transport.dispose();
      await new Promise((resolve) => httpServer.close(resolve));
    },
  };
}

/**
 * A feed of its own whose poll never runs by itself (the test polls it, or nothing does), with no
 * agent holding grants.
 */
function feedPolledByTest(settleMs: number, overlapMs: number): WalletEventFeed {
  return new WalletEventFeed(
    createLogger({ logLevel: 'silent' }),
    { holdersOf: () => [] },
    { pollMs: 3_600_000, settleMs, overlapMs },
  );
}

/** A feed of its own, polling often and sending at once, with no agent holding grants. */
function quickFeed(): WalletEventFeed {
  return new WalletEventFeed(
    createLogger({ logLevel: 'silent' }),
    { holdersOf: () => [] },
    { pollMs: 20, settleMs: 0, overlapMs: 500 },
  );
}
const EVERY_WALLET = { everyWallet: true, kinds: null } as const;

/**
 * An agent's event of the wallet, at `version`, as the trail stores it: made at `at`, recorded at
 * `recordedAt` (both now unless given).
 */
function trailEvent(
  walletId: Types.ObjectId,
  version: number,
  at = new Date(),
  recordedAt = new Date(),
) {
  return {
    _id: new Types.ObjectId(),
    wallet_id: walletId,
    kind: 'ai_state_changed',
    actor: 'a',
    actor_id: walletId,
    actor_role: 'agent',
    before: null,
    after: null,
    version,
    at,
    recorded_at: recordedAt,
  };
}

describe('the event feed', () => {
  it('stops a subscription whose consumer falls too far behind', async () => {
    const feed = quickFeed();
    let overflowed = false;
    const subscription = feed.subscribe(EVERY_WALLET, 3, () => (overflowed = true));
    // Nobody reads: the first event waits to be pulled, the next ones queue behind it.
    const pending = subscription.next();
    const walletId = new Types.ObjectId();
    await UserWalletEventModel.collection.insertMany(
      Array.from({ length: 10 }, (_, i) => trailEvent(walletId, i + 1)),
    );
    await until('the overflow', () => overflowed);
    await pending;
    await feed.stop();
  });

  it("tells a subscription's end once, whether it ran or was ended before its first event", async () => {
    const feed = quickFeed();
    let endedEarly = 0;
    const early = feed.subscribe(
      EVERY_WALLET,
      10,
      () => undefined,
      () => endedEarly++,
    );
    await early.return();
    await early.return();
    expect(endedEarly).toBe(1);

    let endedLater = 0;
    const later = feed.subscribe(
      EVERY_WALLET,
      10,
      () => undefined,
      () => endedLater++,
    );
    const next = later.next();
    await new Promise((resolve) => setTimeout(resolve, 50));
    await later.return();
    await next;
    expect(endedLater).toBe(1);
    await feed.stop();
  });

  it('hands events to a sink as they come; what it cannot take yet waits, in order, bounded', async () => {
    // Polled by the test: each read is over when the test goes on.
    const feed = feedPolledByTest(0, 1_000);
    const read = () => feed.poll(systemCtx(createLogger({ logLevel: 'silent' }), 'test poll'));
    const walletId = new Types.ObjectId();
    const taken: Array<number | null> = [];
    let ready = false;
    let ends = 0;
    let overflowed = false;
    const subscription = feed.subscribe({ wallet: walletId }, 3, () => (overflowed = true));
    const record = (versions: number[]) =>
      UserWalletEventModel.collection.insertMany(
        versions.map((version) => trailEvent(walletId, version)),
      );
    // Before the sink: it waits, and goes to the sink once there is one.
    await record([1]);
    await read();
    const resume = subscription.pushTo({
      take: (event) => {
        taken.push(event.version);
        return ready;
      },
      end: () => ends++,
      fail: () => undefined,
    });
    expect(taken).toEqual([1]);
    // The sink took 1 and can take no more: 2 and 3 wait.
    await record([2, 3]);
    await read();
    expect(taken).toEqual([1]);
    ready = true;
    resume();
    expect(taken).toEqual([1, 2, 3]);
    // Ready: each goes to it as it comes.
    await record([4]);
    await read();
    expect(taken).toEqual([1, 2, 3, 4]);
    // Not ready again: three may wait for it, the fourth is one too many.
    ready = false;
    await record([5]);
    await read();
    expect(taken).toEqual([1, 2, 3, 4, 5]);
    await record([6, 7, 8]);
    await read();
    expect(overflowed).toBe(false);
    await record([9]);
    await read();
    expect(overflowed).toBe(true);
    expect(taken).toEqual([1, 2, 3, 4, 5]);
    expect(ends).toBe(1);
    // Ended by the overflow: its consumer's own end tells the sink nothing more.
    await subscription.return();
    expect(ends).toBe(1);
    await feed.stop();
  });

  /** A subscription to a wallet of no one's on `feed`, and the versions it gets, in order. */
  async function followNewWallet(feed: WalletEventFeed) {
    const walletId = new Types.ObjectId();
    const seen: Array<number | null> = [];
    const subscription = feed.subscribe({ wallet: walletId }, 100, () => undefined);
    const reading = (async () => {
      for await (const event of subscription) seen.push(event.version);
    })();
    await new Promise((resolve) => setTimeout(resolve, 50));
    return { walletId, seen, subscription, reading };
  }

  /**
   * The wallet's versions 2 and 1 put in the trail in that order, `apartMs` apart from `now`: as
   * the sweep delivers an event a request could not, after a later one.
   */
  async function versionTwoThenOne(walletId: Types.ObjectId, now: number, apartMs: number) {
    await UserWalletEventModel.collection.insertMany(
      [2, 1].map((version, i) =>
        trailEvent(
          walletId,
          version,
          new Date(now - 10_000 + version),
          new Date(now + i * apartMs),
        ),
      ),
    );
  }

  it("sends a wallet's events by version when an earlier one reached the trail after a later one", async () => {
    const feed = feedPolledByTest(0, 500);
    const { walletId, seen, subscription, reading } = await followNewWallet(feed);
    const now = Date.now();
    // Version 2 reached the trail first; version 1 came later, as the sweep delivers an event a
    // request could not.
    await versionTwoThenOne(walletId, now, 10);
    await feed.poll(systemCtx(createLogger({ logLevel: 'silent' }), 'test poll'), now + 1_000);
    await until('both', () => seen.length === 2);
    expect(seen).toEqual([1, 2]);
    await subscription.return();
    await reading;
    await feed.stop();
  });

  it('holds a settled event back behind an earlier one of its wallet that is not settled yet', async () => {
    const feed = feedPolledByTest(300, 5_000);
    const { walletId, seen, subscription, reading } = await followNewWallet(feed);
    const now = Date.now();
    // Version 2 reached the trail first; version 1 (delivered late) 200 ms after.
    await versionTwoThenOne(walletId, now, 200);
    const ctx = systemCtx(createLogger({ logLevel: 'silent' }), 'test poll');
    // Version 2 has settled, version 1 not yet: neither goes.
    await feed.poll(ctx, now + 350);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(seen).toEqual([]);
    await feed.poll(ctx, now + 550);
    await until('both', () => seen.length === 2);
    expect(seen).toEqual([1, 2]);
    await subscription.return();
    await reading;
    await feed.stop();
  });

  it('delivers an event the sweep records late, whose write time is long past', async () => {
    const feed = quickFeed();
    const seen: string[] = [];
    const subscription = feed.subscribe(EVERY_WALLET, 100, () => undefined);
    const reading = (async () => {
      for await (const event of subscription) seen.push(event._id.toHexString());
    })();
    await new Promise((resolve) => setTimeout(resolve, 100));
    const id = new Types.ObjectId();
    const walletId = new Types.ObjectId();
    await UserWalletEventModel.collection.insertOne({
      _id: id,
      wallet_id: walletId,
      kind: 'status_changed',
      actor: 'a',
      actor_id: walletId,
      actor_role: 'user',
      before: null,
      after: null,
      version: 3,
      at: new Date(Date.now() - 3_600_000),
      recorded_at: new Date(),
    });
    await until('the late event', () => seen.includes(id.toHexString()));
    await subscription.return();
    await reading;
    await feed.stop();
  });
});
