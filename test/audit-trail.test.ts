import mongoose, { Types } from 'mongoose';
import {
  AuditTrailDocument,
  ManagedAuditTrailDocument,
  PauseUserWalletDocument,
  UpdateAiManagedStateDocument,
  UpdateUserWalletDocument,
  UserWalletEventsDocument,
  type AuditTrailQuery,
  type WalletEventKind,
} from './generated/graphql';
import { codes, startTestApp, type TestApp } from './helpers/app';
import { commandsFor } from './helpers/commands';
import { createLogger } from '../src/core/logger';
import { walletPendingEvents } from '../src/modules/wallets/wallet-outbox';
import type { StoredWallet, StoredWalletEvent } from './helpers/stored';
import {
  agentToken,
  binanceCredential,
  limits,
  registerUser,
  userWallet,
  type TestUser,
} from './helpers/factories';

const silent = createLogger({ logLevel: 'silent' });
let t: TestApp;
let alice: TestUser;
let agent: string;

const events = () => mongoose.connection.db!.collection('user_wallet_events');
const wallets = () => mongoose.connection.db!.collection<StoredWallet>('user_wallets');
const wallet = async () =>
  userWallet(t, alice, await binanceCredential(t, alice), { tradingMode: 'AGGRESSIVE' });
const trailPage = async (
  id: string,
  variables: { first?: number; after?: string | null; kinds?: WalletEventKind[] } = {},
) => {
  const result = await t.gql(AuditTrailDocument, { id, ...variables }, alice.token);
  expect(result.errors).toBeUndefined();
  return result.data!.userWallet.auditTrail;
};
type Node = NonNullable<AuditTrailQuery['userWallet']>['auditTrail']['edges'][number]['node'];

/** The whole trail through pages of `first`, checking each page's PageInfo on the way. */
async function allPages(id: string, first: number, kinds?: WalletEventKind[]): Promise<Node[]> {
  const nodes: Node[] = [];
  let after: string | null = null;
  for (;;) {
    const page = await trailPage(id, { first, after, kinds });
    expect(page.edges.length).toBeLessThanOrEqual(first);
    expect(page.pageInfo).toMatchObject({
      hasPreviousPage: after !== null,
      startCursor: page.edges[0]?.cursor ?? null,
      endCursor: page.edges.at(-1)?.cursor ?? null,
    });
    nodes.push(...page.edges.map((e) => e.node));
    if (!page.pageInfo.hasNextPage) return nodes;
    after = page.pageInfo.endCursor;
  }
}

/** A wallet with 1 + 23 + 1 + 1 events: created, agent writes, a limits change, a pause. */
async function busyWallet(): Promise<string> {
  const { id } = await wallet();
  for (let i = 0; i < 23; i++)
    await t.gql(UpdateAiManagedStateDocument, { walletId: id, input: { riskScore: i } }, agent);
  await t.gql(
    UpdateUserWalletDocument,
    { id, input: { userLimits: limits({ maxTotalRisk: 500, tradingMode: 'AGGRESSIVE' }) } },
    alice.token,
  );
  await t.gql(PauseUserWalletDocument, { id }, alice.token);
  return id;
}

beforeAll(async () => {
  t = await startTestApp();
  alice = await registerUser(t);
  agent = await agentToken(t, 'trail-agent');
});
afterAll(() => t.close());

describe('auditTrail', () => {
  it('pages the whole trail, newest first, each event with its wallet and the version it made', async () => {
    const id = await busyWallet();
    const nodes = await allPages(id, 7);
    expect(nodes).toHaveLength(26);
    expect(new Set(nodes.map((n) => n.id)).size).toBe(26);
    // The same order as `events`, and each version once: 25 down to 0.
    const all = (await t.gql(UserWalletEventsDocument, { id, first: 100 }, alice.token)).data!
      .userWallet.events;
    expect(nodes.map((n) => n.id)).toEqual(all.map((e) => e.id));
    expect(nodes.map((n) => n.version)).toEqual(Array.from({ length: 26 }, (_, i) => 25 - i));
    expect(nodes.every((n) => n.walletId === id)).toBe(true);
    expect(nodes.map((n) => n.kind).slice(0, 3)).toEqual([
      'STATUS_CHANGED',
      'LIMITS_CHANGED',
      'AI_STATE_CHANGED',
    ]);
    expect(nodes.at(-1)).toMatchObject({ kind: 'CREATED', version: 0, actor: alice.id });
    // Default page: 20.
    expect((await trailPage(id)).edges).toHaveLength(20);
  });

  it('filters by kinds, in pages too', async () => {
    const id = await busyWallet();
    expect(
      (await allPages(id, 1, ['STATUS_CHANGED', 'LIMITS_CHANGED', 'CREATED'])).map((n) => n.kind),
    ).toEqual(['STATUS_CHANGED', 'LIMITS_CHANGED', 'CREATED']);
    const agents = await allPages(id, 10, ['AI_STATE_CHANGED']);
    expect(agents).toHaveLength(23);
    expect(agents.every((n) => n.kind === 'AI_STATE_CHANGED' && n.actor === 'trail-agent')).toBe(
      true,
    );
    // An empty list is every kind, as left out.
    expect((await trailPage(id, { first: 100, kinds: [] })).edges).toHaveLength(26);
  });

  it('keeps its cursor while events keep arriving', async () => {
    const id = await busyWallet();
    const first = await trailPage(id, { first: 10 });
    for (let i = 0; i < 3; i++)
      await t.gql(
        UpdateAiManagedStateDocument,
        { walletId: id, input: { riskScore: 90 + i } },
        agent,
      );
    expect(first.edges.map((e) => e.node.version)).toEqual(
      Array.from({ length: 10 }, (_, i) => 25 - i),
    );
    // The next page goes on below the first, whatever came in on top meanwhile.
    const next = await trailPage(id, { first: 100, after: first.pageInfo.endCursor });
    expect(next.edges.map((e) => e.node.version)).toEqual(
      Array.from({ length: 16 }, (_, i) => 15 - i),
    );
    expect((await trailPage(id, { first: 3 })).edges.map((e) => e.node.version)).toEqual([
      28, 27, 26,
    ]);
  });

  it("keeps on each wallet its last 8 events that reached the trail (the live feed's check), not touching updated_at", async () => {
    const { id } = await wallet();
    const walletId = new Types.ObjectId(id);
    const stored = () => wallets().findOne({ _id: walletId });
    for (let i = 0; i < 9; i++)
      await t.gql(UpdateAiManagedStateDocument, { walletId: id, input: { riskScore: i } }, agent);
    const before = await stored();
    const trail = await events()
      .find<StoredWalletEvent>({ wallet_id: walletId })
      .sort({ version: 1 })
      .toArray();
    expect(trail).toHaveLength(10);
    expect(before!.pending_events).toEqual([]);
    const kept = (w: StoredWallet | null) => w?.recent_trail ?? [];
    expect(
      kept(before).map(({ _id, version, at, pulled_at }) => ({
        _id,
        version,
        at,
        pulled: pulled_at instanceof Date,
      })),
    ).toEqual(
      trail.slice(-8).map((e) => ({ _id: e._id, version: e.version, at: e.at, pulled: true })),
    );

    // A batch's events too, each wallet its own.
    const other = new Types.ObjectId((await wallet()).id);
    const batch = await t.raw<{ updateAiManagedStates: Array<{ error: unknown }> }>(
      'mutation ($a: ObjectID!, $b: ObjectID!) { updateAiManagedStates(updates: [{ walletId: $a, input: { riskScore: 77 } }, { walletId: $b, input: { riskScore: 78 } }]) { error { code } } }',
      { a: id, b: other.toHexString() },
      agent,
    );
    expect(batch.data!.updateAiManagedStates).toEqual([{ error: null }, { error: null }]);
    const [after, otherAfter] = [await stored(), await wallets().findOne({ _id: other })];
    const lastOf = async (w: Types.ObjectId) =>
      (await events().find({ wallet_id: w }).sort({ version: -1 }).limit(1).toArray())[0]._id;
    expect(kept(after)).toHaveLength(8);
    expect(kept(after).at(-1)!._id).toEqual(await lastOf(walletId));
    expect(kept(after).slice(0, 7)).toEqual(kept(before).slice(1));
    expect(kept(otherAfter).map((e) => e._id)).toEqual([
      (await events().findOne({ wallet_id: other, version: 0 }))!._id,
      await lastOf(other),
    ]);
    // The pulls leave updated_at (a wallet's change is the write's, not its events' delivery).
    const entry = { _id: new Types.ObjectId(), version: 99, at: new Date(), pulled_at: new Date() };
    await walletPendingEvents.pullMany({ logger: silent, comment: undefined }, [
      { ...entry, wallet_id: walletId },
    ]);
    await walletPendingEvents.pull({ logger: silent, comment: undefined }, other, [entry]);
    for (const [was, w] of [
      [after!, walletId],
      [otherAfter!, other],
    ] as const) {
      const now = await wallets().findOne({ _id: w });
      expect(now!.updated_at).toEqual(was.updated_at);
      expect(kept(now).at(-1)).toEqual(entry);
    }
  });

  it('shows events still in the outbox in their place, once', async () => {
    const { id } = await wallet();
    const walletId = new Types.ObjectId(id);
    await t.gql(UpdateAiManagedStateDocument, { walletId: id, input: { riskScore: 1 } }, agent);
    // The trail refuses the next event for real (a unique index and an event in its way, dated
    // 1970).
    await events().createIndex(
      { wallet_id: 1, version: 1, kind: 1 },
      { unique: true, name: 'test_blocker' },
    );
    const blocker = await events().insertOne({
      wallet_id: walletId,
      version: 2,
      kind: 'ai_state_changed',
      actor: 'blocker',
      actor_role: 'agent',
      actor_id: new Types.ObjectId(),
      before: null,
      after: null,
      at: new Date(0),
    });
    try {
      await t.gql(UpdateAiManagedStateDocument, { walletId: id, input: { riskScore: 2 } }, agent);
      await t.gql(UpdateAiManagedStateDocument, { walletId: id, input: { riskScore: 3 } }, agent);
      const pending = (await mongoose.connection
        .db!.collection('user_wallets')
        .findOne({ _id: walletId }))!.pending_events as Array<{ _id: Types.ObjectId }>;
      expect(pending).toHaveLength(1);
      const nodes = await allPages(id, 2);
      expect(nodes.map((n) => [n.version, n.actor])).toEqual([
        [3, 'trail-agent'],
        [2, 'trail-agent'],
        [1, 'trail-agent'],
        [0, alice.id],
        [2, 'blocker'],
      ]);
      expect(nodes[1].id).toBe(pending[0]._id.toHexString());
      // Filtered out like a delivered event, and not before a cursor past it.
      expect((await allPages(id, 5, ['CREATED'])).map((n) => n.version)).toEqual([0]);
      const page = await trailPage(id, { first: 1 });
      expect(
        (await trailPage(id, { first: 1, after: page.pageInfo.endCursor })).edges[0].node.id,
      ).toBe(pending[0]._id.toHexString());
    } finally {
      await events().deleteOne({ _id: blocker.insertedId });
      await events().dropIndex('test_blocker');
    }
  });

  it('is shown to agents, and refuses a page over 100, a cursor it did not give', async () => {
    const id = await busyWallet();
    const shown = await t.gql(ManagedAuditTrailDocument, { id, first: 3 }, agent);
    expect(shown.data!.managedWallet.auditTrail.edges.map((e) => e.node.kind)).toEqual([
      'STATUS_CHANGED',
      'LIMITS_CHANGED',
      'AI_STATE_CHANGED',
    ]);
    const extensions = async (variables: { first?: number; after?: string }) =>
      (await t.gql(AuditTrailDocument, { id, ...variables }, alice.token)).errors![0].extensions;
    expect(await extensions({ first: 101 })).toEqual({ code: 'BAD_USER_INPUT', field: 'first' });
    expect(await extensions({ first: 0 })).toEqual({ code: 'BAD_USER_INPUT', field: 'first' });
    expect(await extensions({ after: 'nope' })).toEqual({ code: 'BAD_USER_INPUT', field: 'after' });
    expect((await trailPage(id, { first: 100 })).edges).toHaveLength(26);
    const bob = await registerUser(t);
    expect(codes(await t.gql(AuditTrailDocument, { id }, bob.token))).toEqual(['FORBIDDEN']);
  });

  it('reads the trails of a list of wallets in one aggregation', async () => {
    const bob = await registerUser(t);
    for (let i = 0; i < 5; i++) await userWallet(t, bob, await binanceCredential(t, bob));
    const query =
      '{ userWallets { id auditTrail(first: 2, kinds: [CREATED]) { edges { node { kind walletId } } } } }';
    let answer:
      | {
          userWallets: Array<{
            id: string;
            auditTrail: { edges: Array<{ node: { kind: string; walletId: string } }> };
          }>;
        }
      | null
      | undefined;
    const commands = await commandsFor(async () => {
      answer = (await t.raw<NonNullable<typeof answer>>(query, {}, bob.token)).data;
    });
    expect(answer!.userWallets).toHaveLength(5);
    expect(
      answer!.userWallets.every(
        (w) => w.auditTrail.edges.length === 1 && w.auditTrail.edges[0].node.walletId === w.id,
      ),
    ).toBe(true);
    expect(commands).toEqual(['find users', 'find user_wallets', 'aggregate user_wallet_events']);
  });
});
