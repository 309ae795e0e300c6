// A GRANTED_WALLETS agent (issue 20), on the service only, against the ALL_WALLETS agent in the
// same run. An admin issues it through the API; it holds 1,000 grants (MANAGE_STATE and
// PAUSE_RESUME) among the 12,000 wallets, every twelfth by id, 167 of them in the write pool,
// stored directly in the shape the service keeps them. Its managedWallets (first: 100) pages
// through its 1,000 wallets against managedWallets (first: 100) paging through all 12,000; its
// updateAiManagedState writes its 167 write-pool wallets against updateAiManagedState's writes of
// all 2,000. Each is measured in three rounds interleaved with the one it is compared with (on the
// service): at least 90 % of its throughput, with the same database commands per request.

import { ObjectId } from 'mongodb';
import { check, gql, gqlData, Q } from '../lib/graphql.mjs';
import { errorsIn, pct } from '../lib/judge.mjs';
import { againstOther, countBoth, currentPool, verify } from '../lib/measure.mjs';

const LIST = 'granted managedWallets (first: 100)';
const WRITE = 'granted updateAiManagedState';
const MANAGED = 'managedWallets (first: 100)';
const SINGLE = 'updateAiManagedState';
const AGENT_NAME = 'bench-granted-agent';

/**
 * Issues the agent's token as the admin, through the API, and grants it every n-th wallet by id in
 * the database: state.granted.
 */
async function grantAgent(state) {
  const { service, tokens, settings } = state;
  const wallets = state.db.direct.collection('user_wallets');
  const issued = (
    await gqlData(
      service,
      Q.issueAgentToken,
      { name: AGENT_NAME, expiresInDays: 1, scope: 'GRANTED_WALLETS' },
      tokens.admin,
    )
  ).issueAgentToken;
  check(issued.scope === 'GRANTED_WALLETS', `issued a ${issued.scope} token`);
  const agentId = new ObjectId(issued.id);
  const every = settings.totalWallets / settings.grantedWallets;
  const ids = (
    await wallets
      .find({}, { projection: { _id: 1 } })
      .sort({ _id: 1 })
      .toArray()
  )
    .map((w) => w._id)
    .filter((_, i) => i % every === 0);
  const now = new Date();
  // The whole stored shape of a wallet with this one grant: the bench's wallets have no other.
  const { modifiedCount } = await wallets.bulkWrite(
    ids.map((_id) => ({
      updateOne: {
        filter: { _id },
        update: {
          $set: {
            agent_grants: {
              [issued.id]: {
                _id: new ObjectId(),
                agent_id: agentId,
                agent_name: AGENT_NAME,
                permissions: ['manage_state', 'pause_resume'],
                created_at: now,
                expires_at: null,
                revoked_at: null,
              },
            },
            grant_agents: [agentId],
            grant_state_agents: [agentId],
            grant_pause_agents: [agentId],
            grants_changed_at: now,
          },
        },
      },
    })),
  );
  check(
    modifiedCount === settings.grantedWallets,
    `granted ${modifiedCount} wallets, expected ${settings.grantedWallets}`,
  );
  const walletIds = ids.map((id) => id.toHexString());
  const granted = new Set(walletIds);
  state.granted = {
    token: issued.token,
    agentId: issued.id,
    walletIds,
    writePool: state.fixtures.writePool.filter((id) => granted.has(id)),
    ungrantedWrite: state.fixtures.writePool.find((id) => !granted.has(id)),
  };
}

/** Its pages are its granted wallets, each once, in id order; `bodies` gets the pages' requests. */
async function checkList(state, bodies) {
  const { service } = state;
  const { token, walletIds } = state.granted;
  let after = null;
  const ids = [];
  for (;;) {
    bodies.push(JSON.stringify({ query: Q.managed, variables: { after } }));
    const page = (await gqlData(service, Q.managed, { after }, token)).managedWallets;
    ids.push(...page.edges.map((e) => e.node.id));
    if (!page.pageInfo.hasNextPage) break;
    after = page.pageInfo.endCursor;
    check(bodies.length <= 2 * (walletIds.length / 100), 'the granted paging ends');
  }
  const granted = new Set(walletIds);
  check(
    JSON.stringify(ids) === JSON.stringify(walletIds),
    `the granted agent paged ${ids.length} wallets (${new Set(ids).size} distinct, ${ids.filter((id) => !granted.has(id)).length} not granted), expected its ${walletIds.length} in id order`,
  );
  return `${bodies.length} pages of at most 100: exactly its ${ids.length} granted wallets of ${state.settings.totalWallets}, in id order`;
}

/** A write on an ungranted wallet is an unknown id's NOT_FOUND, changing nothing; a granted one lands. */
async function checkWrites(state) {
  check(state.granted, 'no granted agent: its token or grants failed (see the listing)');
  const { service } = state;
  const { token, agentId, writePool, ungrantedWrite } = state.granted;
  const direct = state.db.direct;
  const input = {
    currentRisk: 2345.5,
    currentMaxPositionSize: 1500,
    currentLeverage: 3,
    riskScore: 30,
    marketSentiment: 'BEARISH',
    confidenceLevel: 55,
  };
  const [ungranted] = await currentPool(state, [ungrantedWrite]);
  const refused = await gql(
    service,
    Q.write,
    { walletId: ungranted.id, expectedVersion: ungranted.version, input },
    token,
  );
  const unknown = await gql(
    service,
    Q.write,
    { walletId: new ObjectId().toHexString(), expectedVersion: 0, input },
    token,
  );
  const refusal = refused.errors?.[0];
  check(
    refusal?.extensions?.code === 'NOT_FOUND' &&
      refusal.message === unknown.errors?.[0]?.message &&
      refused.data == null,
    `a write on an ungranted wallet answered ${JSON.stringify(refused).slice(0, 300)}; an unknown id ${JSON.stringify(unknown).slice(0, 300)}`,
  );
  const untouched = await direct
    .collection('user_wallets')
    .findOne({ _id: new ObjectId(ungranted.id) });
  check(
    untouched.version === ungranted.version && untouched.ai_managed_state.current_risk !== 2345.5,
    'the refused write changed nothing',
  );

  const [before] = await currentPool(state, writePool.slice(0, 1));
  const w = (
    await gqlData(
      service,
      Q.write,
      { walletId: before.id, expectedVersion: before.version, input },
      token,
    )
  ).updateAiManagedState;
  check(
    w.id === before.id &&
      w.version === before.version + 1 &&
      w.aiManagedState.currentRisk === 2345.5 &&
      w.aiManagedState.marketSentiment === 'BEARISH',
    `the granted write answered ${JSON.stringify(w)}`,
  );
  const stored = await direct.collection('user_wallets').findOne({ _id: new ObjectId(w.id) });
  check(
    stored.version === before.version + 1 && stored.ai_managed_state.current_risk === 2345.5,
    'the granted write stored',
  );
  const event = await direct
    .collection('user_wallet_events')
    .findOne({ wallet_id: new ObjectId(w.id), version: before.version + 1 });
  check(
    event?.kind === 'ai_state_changed' &&
      event.actor === AGENT_NAME &&
      event.actor_id?.toHexString() === agentId,
    `the granted write's audit event: ${JSON.stringify(event && { kind: event.kind, actor: event.actor, actorId: event.actor_id })}`,
  );
  return `an ungranted wallet's write NOT_FOUND as an unknown id's, nothing changed; a granted write version +1, stored, its event naming the agent (${writePool.length} granted wallets in the write pool)`;
}

export default {
  name: 'grantedAgent',
  // Its targets compare with the ALL_WALLETS agent's list and write: their throughput in rounds
  // of its own, their commands as counted for them.
  compares: ['managedWallets', 'updateAiManagedState'],
  steps: {
    async verify(state) {
      const bodies = [];
      await verify(state, LIST, async () => {
        await grantAgent(state);
        return checkList(state, bodies);
      });
      await verify(state, WRITE, () => checkWrites(state));
      if (!state.granted) return;
      state.specs[LIST] = {
        kind: 'cycle',
        token: state.granted.token,
        bodies,
        check: { type: 'managed', count: 100 },
      };
      state.specs[WRITE] = {
        kind: 'write',
        token: state.granted.token,
        query: Q.write,
        walletIds: state.granted.writePool,
        check: { type: 'write' },
      };
    },
    list: (state) => againstOther(state, LIST, MANAGED, state.settings.roundSeconds),
    write: (state) => againstOther(state, WRITE, SINGLE, state.settings.roundSeconds),
    async count(state) {
      await countBoth(state, LIST, 20, [state.service]);
      await countBoth(state, WRITE, 50, [state.service]);
    },
  },
  targets: {
    listThroughput(state, { target }) {
      const { settings, results, thresholds } = state;
      target(
        `${LIST}: a GRANTED_WALLETS agent's ${settings.grantedWallets} of ${settings.totalWallets} wallets, at least ${pct(thresholds.grantedThroughputShare)} of an ALL_WALLETS agent's managedWallets (first: 100) throughput (median of 3 rounds)`,
        [LIST, MANAGED],
        () => {
          const row = results.scenarios[LIST];
          const granted = row.service;
          const all = row.against.service;
          return [
            row.ratio >= thresholds.grantedThroughputShare && errorsIn(granted, all) === 0,
            `${pct(row.ratio)} (rounds ${row.rounds.map((r) => pct(r.ratio)).join(', ')}); all rounds ${granted.rps} vs ${all.rps} req/s; errors ${errorsIn(granted)} / ${errorsIn(all)}`,
          ];
        },
      );
    },
    writeThroughput(state, { target }) {
      const { results, thresholds } = state;
      target(
        `${WRITE}: a GRANTED_WALLETS agent's writes of its granted wallets, at least ${pct(thresholds.grantedThroughputShare)} of updateAiManagedState's (an ALL_WALLETS agent's) throughput (median of 3 rounds)`,
        [WRITE, SINGLE],
        () => {
          const row = results.scenarios[WRITE];
          const granted = row.service;
          const all = row.against.service;
          return [
            row.ratio >= thresholds.grantedThroughputShare && errorsIn(granted, all) === 0,
            `${pct(row.ratio)} (rounds ${row.rounds.map((r) => pct(r.ratio)).join(', ')}); all rounds ${granted.rps} vs ${all.rps} req/s; errors ${errorsIn(granted)} / ${errorsIn(all)}`,
          ];
        },
      );
    },
    commands(state, { target }) {
      const { results } = state;
      target(
        "grantedAgent: database commands per request of a GRANTED_WALLETS agent the same as an ALL_WALLETS agent's (managedWallets (first: 100), updateAiManagedState), command for command",
        [LIST, MANAGED, WRITE, SINGLE],
        () => {
          const counted = results.commands.service;
          const commands = (label) =>
            JSON.stringify(Object.entries(counted[label].byCommand).sort());
          const pairs = [
            [LIST, MANAGED],
            [WRITE, SINGLE],
          ];
          return [
            pairs.every(
              ([granted, all]) =>
                counted[granted].errors === 0 &&
                counted[all].errors === 0 &&
                counted[granted].perRequest === counted[all].perRequest &&
                commands(granted) === commands(all),
            ),
            pairs
              .map(
                ([granted, all]) =>
                  `${granted} ${counted[granted].perRequest} ${JSON.stringify(counted[granted].byCommand)} vs ${counted[all].perRequest} ${JSON.stringify(counted[all].byCommand)}${counted[granted].errors ? ` (errors ${counted[granted].errors})` : ''}`,
              )
              .join('; '),
          ];
        },
      );
    },
  },
};
