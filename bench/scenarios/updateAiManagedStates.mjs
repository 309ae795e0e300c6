// updateAiManagedStates (100): an agent's batch of 100 writes a request, on the service only: its
// wallet writes per second against the single write's (5 commands per batch, whatever its size).

import { ObjectId } from 'mongodb';
import { check, gqlData, Q } from '../lib/graphql.mjs';
import { errorsIn } from '../lib/judge.mjs';
import { countBoth, currentPool, pair, verify } from '../lib/measure.mjs';

const label = ({ batchSize }) => `updateAiManagedStates (${batchSize})`;

async function checkBatch(state) {
  const { service, tokens, settings } = state;
  const direct = state.db.direct;
  const pool = (await currentPool(state)).slice(0, settings.batchSize);
  const input = (i) => ({
    currentRisk: 100 + i,
    currentMaxPositionSize: 300,
    currentLeverage: 1 + (i % 3),
    riskScore: i % 101,
    marketSentiment: 'BEARISH',
    confidenceLevel: 60,
  });
  const updates = pool.map((w, i) => ({
    walletId: w.id,
    expectedVersion: w.version,
    input: input(i),
  }));
  const outcomes = (await gqlData(service, Q.batch, { updates }, tokens.agent))
    .updateAiManagedStates;
  check(
    outcomes.length === pool.length &&
      outcomes.every(
        (o, i) =>
          !o.error &&
          o.walletId === pool[i].id &&
          o.wallet.version === pool[i].version + 1 &&
          o.wallet.aiManagedState.currentRisk === 100 + i,
      ),
    `batch answered ${JSON.stringify(outcomes.find((o) => o.error) ?? outcomes[0]).slice(0, 300)}`,
  );
  const ids = pool.map((w) => new ObjectId(w.id));
  const stored = await direct
    .collection('user_wallets')
    .find({ _id: { $in: ids } })
    .toArray();
  const byId = new Map(stored.map((w) => [w._id.toHexString(), w]));
  check(
    pool.every(
      (w, i) =>
        byId.get(w.id)?.version === w.version + 1 &&
        byId.get(w.id).ai_managed_state.current_risk === 100 + i &&
        byId.get(w.id).pending_events.length === 0,
    ),
    'every write stored, its outbox emptied',
  );
  const events = await direct.collection('user_wallet_events').countDocuments({
    $or: pool.map((w) => ({
      wallet_id: new ObjectId(w.id),
      version: w.version + 1,
      kind: 'ai_state_changed',
      actor: 'bench-risk-agent',
    })),
  });
  check(events === pool.length, `${events} audit events for ${pool.length} writes`);
  const stale = (await gqlData(service, Q.batch, { updates: updates.slice(0, 2) }, tokens.agent))
    .updateAiManagedStates;
  check(
    stale.every(
      (o, i) => o.error?.code === 'CONFLICT' && o.error.currentVersion === pool[i].version + 1,
    ),
    "a stale expectedVersion in a batch is that write's CONFLICT, with the version now",
  );
  return `${pool.length} writes: each version +1, stored, its audit event in the trail; stale versions CONFLICT with currentVersion`;
}

export default {
  name: 'updateAiManagedStates',
  // Its target compares with the single write's throughput.
  compares: ['updateAiManagedState'],
  steps: {
    async verify(state) {
      await verify(state, label(state.settings), () => checkBatch(state));
      state.specs[label(state.settings)] = {
        kind: 'batch',
        token: state.tokens.agent,
        query: Q.batch,
        size: state.settings.batchSize,
        check: { type: 'batch' },
      };
    },
    measure: (state) =>
      pair(state, label(state.settings), state.settings.phaseSeconds, [state.service]),
    count: (state) => countBoth(state, label(state.settings), 10, [state.service]),
  },
  targets: {
    writesPerSecond(state, { target }) {
      const { settings, results } = state;
      const batchLabel = label(settings);
      target(
        `${batchLabel}: wallet writes per second at least 5 x updateAiManagedState's`,
        [batchLabel, 'updateAiManagedState'],
        () => {
          const batchRow = results.scenarios[batchLabel].service;
          const single = results.scenarios.updateAiManagedState.service;
          const writesPerSecond = batchRow.rps * settings.batchSize;
          const counted = results.commands.service[batchLabel];
          return [
            writesPerSecond >= state.thresholds.batchWriteFactor * single.rps &&
              errorsIn(batchRow, single) === 0 &&
              counted.errors === 0,
            `${Math.round(writesPerSecond)} writes/s (${batchRow.rps} req/s x ${settings.batchSize}) vs ${single.rps} = ${Math.round((writesPerSecond / single.rps) * 100) / 100} x; errors ${errorsIn(batchRow)}; ${counted.perRequest} commands per batch ${JSON.stringify(counted.byCommand)}`,
          ];
        },
      );
    },
  },
};
