import mongoose, { Types } from 'mongoose';
import {
  AiPauseWalletDocument,
  AiResumeWalletDocument,
  CreateCredentialDocument,
  CreateWalletDefinitionDocument,
  ManagedWalletChangesDocument,
  ManagedWalletDocument,
  PauseUserWalletDocument,
  ResumeUserWalletDocument,
  UpdateAiManagedStateDocument,
  UpdateAiManagedStatesDocument,
  UpdateCredentialDocument,
  UpdateUserWalletDocument,
  UpdateWalletDefinitionDocument,
  WalletBoundsDocument,
} from './generated/graphql';
import { systemCtx } from '../src/core/context';
import { createLogger } from '../src/core/logger';
import { backfillUserChangedAt } from '../src/migrations/001-user-changed-at';
import { codes, startTestApp, type TestApp } from './helpers/app';
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
import type { StoredWallet } from './helpers/stored';

let t: TestApp;
let alice: TestUser;
let agent: string;

const wallets = () => mongoose.connection.db!.collection<StoredWallet>('user_wallets');
const changedAt = async (id: string) =>
  (await t.gql(ManagedWalletDocument, { id }, agent)).data!.managedWallet.userChangedAt;
const wallet = async (overrides: Parameters<typeof limits>[0] = {}) =>
  userWallet(t, alice, await binanceCredential(t, alice), overrides);
/**
 * Dates are stored to the millisecond: step past the last one, so a change is told from the one
 * before.
 */
const tick = () => new Promise((resolve) => setTimeout(resolve, 5));

/** Every wallet the feed gives from `since`, following its cursors to the end. */
async function feed(
  since: string,
  first = 2,
  after?: string | null,
): Promise<{ ids: string[]; endCursor: string | null }> {
  const ids: string[] = [];
  let cursor = after;
  for (;;) {
    const page = await t.gql(ManagedWalletChangesDocument, { since, first, after: cursor }, agent);
    expect(page.errors).toBeUndefined();
    const { edges, pageInfo } = page.data!.managedWalletChanges;
    ids.push(...edges.map((e) => e.node.id));
    if (edges.length) cursor = pageInfo.endCursor;
    if (!pageInfo.hasNextPage) return { ids, endCursor: cursor ?? null };
  }
}

beforeAll(async () => {
  t = await startTestApp();
  alice = await registerUser(t);
  agent = await agentToken(t, 'feed-agent');
});
afterAll(() => t.close());

describe('userChangedAt', () => {
  it('is set when the wallet is created, and stored', async () => {
    const before = Date.now();
    const { id } = await wallet();
    const at = await changedAt(id);
    expect(Date.parse(at)).toBeGreaterThanOrEqual(before - 1000);
    expect((await wallets().findOne({ _id: new Types.ObjectId(id) }))!.user_changed_at).toEqual(
      new Date(at),
    );
    const indexes = await wallets().indexes();
    expect(indexes).toEqual(
      expect.arrayContaining([expect.objectContaining({ key: { user_changed_at: 1, _id: 1 } })]),
    );
  });

  it("is left alone by agents' writes, their own pauses and resumes, and a rename", async () => {
    const { id } = await wallet();
    const at = await changedAt(id);
    await tick();
    await t.gql(
      UpdateAiManagedStateDocument,
      { walletId: id, input: { riskScore: 10, currentLeverage: 3 } },
      agent,
    );
    await t.gql(
      UpdateAiManagedStatesDocument,
      { updates: [{ walletId: id, input: { riskScore: 11 } }] },
      agent,
    );
    await t.gql(AiPauseWalletDocument, { walletId: id, reason: 'news' }, agent);
    await t.gql(AiResumeWalletDocument, { walletId: id }, agent);
    await t.gql(UpdateUserWalletDocument, { id, input: { name: 'renamed' } }, alice.token);
    expect(await wallets().findOne({ _id: new Types.ObjectId(id) })).toMatchObject({
      version: 5,
      name: 'renamed',
    });
    expect(await changedAt(id)).toBe(at);
  });

  // Each step is a change an agent must see: it moves userChangedAt on.
  const steps: Array<[string, (id: string, credentialId: string) => Promise<unknown>]> = [
    [
      'a limits update',
      (id) =>
        t.gql(
          UpdateUserWalletDocument,
          { id, input: { userLimits: limits({ maxTotalRisk: 900 }) } },
          alice.token,
        ),
    ],
    ["the user's pause", (id) => t.gql(PauseUserWalletDocument, { id }, alice.token)],
    ["the user's resume", (id) => t.gql(ResumeUserWalletDocument, { id }, alice.token)],
    [
      'the pause of a risk limit passed by an agent write',
      (id) =>
        t.gql(UpdateAiManagedStateDocument, { walletId: id, input: { currentRisk: 950 } }, agent),
    ],
    ['a resume from that pause', (id) => t.gql(ResumeUserWalletDocument, { id }, alice.token)],
    [
      'the pause of a limit set below the risk taken',
      (id) =>
        t.gql(
          UpdateUserWalletDocument,
          { id, input: { userLimits: limits({ maxTotalRisk: 800 }) } },
          alice.token,
        ),
    ],
    ['a resume', (id) => t.gql(ResumeUserWalletDocument, { id }, alice.token)],
    [
      'the pause of a batched write past the limit',
      (id) =>
        t.gql(
          UpdateAiManagedStatesDocument,
          { updates: [{ walletId: id, input: { currentRisk: 850 } }] },
          agent,
        ),
    ],
    [
      'a limits update that lifts it',
      (id) =>
        t.gql(
          UpdateUserWalletDocument,
          { id, input: { userLimits: limits({ maxTotalRisk: 5000 }) } },
          alice.token,
        ),
    ],
    [
      'deactivating its credential',
      (_id, credentialId) =>
        t.gql(
          UpdateCredentialDocument,
          { id: credentialId, input: { isActive: false } },
          alice.token,
        ),
    ],
  ];

  it('moves on with every change by the user or the service', async () => {
    const credentialId = await binanceCredential(t, alice);
    const { id } = await userWallet(t, alice, credentialId);
    let last = await changedAt(id);
    for (const [what, step] of steps) {
      await tick();
      const result = (await step(id, credentialId)) as { errors?: unknown };
      expect({ what, errors: result.errors }).toEqual({ what, errors: undefined });
      const now = await changedAt(id);
      expect({ what, moved: Date.parse(now) > Date.parse(last) }).toEqual({ what, moved: true });
      last = now;
    }
    expect(await wallets().findOne({ _id: new Types.ObjectId(id) })).toMatchObject({
      status: 'user_paused',
      pause_reason: 'the credential was deactivated',
    });
  });

  it("moves on when an admin's narrower leverage range pulls the AI's leverage in", async () => {
    const admin = await adminToken(t);
    const features = (max: number) => ({
      spot: false,
      futures: false,
      perpetuals: true,
      leverage: { min: 1, max },
      supportedAssets: ['ETH'],
    });
    const created = (
      await t.gql(
        CreateWalletDefinitionDocument,
        { input: definitionInput({ features: features(50) }) },
        admin,
      )
    ).data!.createWalletDefinition;
    const credential = await t.gql(
      CreateCredentialDocument,
      {
        input: {
          walletId: created.id,
          name: 'perps',
          values: [
            { key: 'api_key', value: 'k'.repeat(20) },
            { key: 'api_secret', value: 's'.repeat(20) },
          ],
        },
      },
      alice.token,
    );
    const clamped = await userWallet(t, alice, credential.data!.createCredential.id, {
      tradingMode: 'AGGRESSIVE',
    });
    await t.gql(
      UpdateAiManagedStateDocument,
      { walletId: clamped.id, input: { currentLeverage: 40 } },
      agent,
    );
    const at = await changedAt(clamped.id);
    await tick();
    await t.gql(
      UpdateWalletDefinitionDocument,
      { slug: created.slug, input: { features: features(20) } },
      admin,
    );
    expect(Date.parse(await changedAt(clamped.id))).toBeGreaterThan(Date.parse(at));
  });

  it('reads on a wallet stored before the field existed, and is filled in at start-up, once', async () => {
    const { id } = await wallet();
    const _id = new Types.ObjectId(id);
    await wallets().updateOne({ _id }, { $unset: { user_changed_at: '' } });
    const { updated_at } = (await wallets().findOne({ _id }))!;

    const ctx = systemCtx(createLogger({ logLevel: 'silent' }), 'migrations');
    expect(await backfillUserChangedAt(ctx)).toBe(1);
    expect(await backfillUserChangedAt(ctx)).toBe(0);
    expect((await wallets().findOne({ _id }))!.user_changed_at).toEqual(updated_at);
    // Read as its updated_at.
    const read = await t.gql(WalletBoundsDocument, { id }, alice.token);
    expect(read.errors).toBeUndefined();
    expect(read.data!.userWallet.userChangedAt).toBe(updated_at.toISOString());
    expect((await feed(updated_at.toISOString(), 500)).ids).toContain(id);
  });
});

describe('managedWalletChanges', () => {
  it('pages the wallets changed since a time, oldest change first', async () => {
    const since = new Date().toISOString();
    await tick();
    const [a, b, c] = [await wallet(), await wallet(), await wallet()];
    await tick();
    await t.gql(PauseUserWalletDocument, { id: a.id }, alice.token);
    await t.gql(UpdateAiManagedStateDocument, { walletId: b.id, input: { riskScore: 1 } }, agent);
    // a changed last; b's agent write left it where it was.
    expect((await feed(since)).ids).toEqual([b.id, c.id, a.id]);
    const page = await t.gql(ManagedWalletChangesDocument, { since, first: 2 }, agent);
    const { edges, pageInfo } = page.data!.managedWalletChanges;
    expect(pageInfo).toEqual({
      hasNextPage: true,
      endCursor: edges[1].cursor,
      hasPreviousPage: false,
      startCursor: edges[0].cursor,
    });
    const next = await t.gql(
      ManagedWalletChangesDocument,
      { since, first: 2, after: pageInfo.endCursor },
      agent,
    );
    expect(next.data!.managedWalletChanges.pageInfo).toMatchObject({
      hasNextPage: false,
      hasPreviousPage: true,
      startCursor: next.data!.managedWalletChanges.edges[0].cursor,
    });
    expect(next.data!.managedWalletChanges.edges.map((e) => e.node)).toEqual([
      expect.objectContaining({ id: a.id, status: 'USER_PAUSED' }),
    ]);
  });

  it('keeps its cursor while changes keep arriving: nothing is skipped, a wallet changed again comes again', async () => {
    const since = new Date().toISOString();
    await tick();
    const first = [await wallet(), await wallet(), await wallet(), await wallet()];
    const page = (await t.gql(ManagedWalletChangesDocument, { since, first: 2 }, agent)).data!
      .managedWalletChanges;
    expect(page.edges.map((e) => e.node.id)).toEqual([first[0].id, first[1].id]);
    // Meanwhile: one already seen changes again, one not yet seen changes, a new one arrives.
    await tick();
    await t.gql(
      UpdateUserWalletDocument,
      { id: first[0].id, input: { userLimits: limits({ maxTotalRisk: 10 }) } },
      alice.token,
    );
    await t.gql(PauseUserWalletDocument, { id: first[3].id }, alice.token);
    const late = await wallet();
    const rest = await feed(since, 2, page.pageInfo.endCursor);
    expect(rest.ids).toEqual([first[2].id, first[0].id, first[3].id, late.id]);
    // Following on from where it ended later gives what changed since, and nothing else.
    await tick();
    await t.gql(PauseUserWalletDocument, { id: first[1].id }, alice.token);
    expect((await feed(since, 2, rest.endCursor)).ids).toEqual([first[1].id]);
  });

  it('refuses a cursor it did not give, a page size out of bounds, and callers other than agents', async () => {
    const since = new Date(0).toISOString();
    const field = async (variables: { first?: number; after?: string }) =>
      (await t.gql(ManagedWalletChangesDocument, { since, ...variables }, agent)).errors![0]
        .extensions;
    expect(await field({ after: 'garbage' })).toEqual({ code: 'BAD_USER_INPUT', field: 'after' });
    expect(
      await field({ after: Buffer.from('0123456789abcdef01234567', 'hex').toString('base64url') }),
    ).toEqual({ code: 'BAD_USER_INPUT', field: 'after' });
    expect(await field({ first: 0 })).toEqual({ code: 'BAD_USER_INPUT', field: 'first' });
    expect(await field({ first: 501 })).toEqual({ code: 'BAD_USER_INPUT', field: 'first' });
    expect(
      (await t.gql(ManagedWalletChangesDocument, { since, first: 500 }, agent)).errors,
    ).toBeUndefined();
    expect(codes(await t.gql(ManagedWalletChangesDocument, { since }, alice.token))).toEqual([
      'FORBIDDEN',
    ]);
    expect(codes(await t.gql(ManagedWalletChangesDocument, { since }))).toEqual([
      'UNAUTHENTICATED',
    ]);
    expect(
      codes(
        await t.raw(
          'query { managedWalletChanges(since: "yesterday") { edges { cursor } } }',
          {},
          agent,
        ),
      ),
    ).toEqual(['BAD_USER_INPUT']);
  });
});
