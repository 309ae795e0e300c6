// updateAiManagedStates (100): an agent's batch of 100 writes a request, on the service only: the
// service's CPU per wallet written against a single write's, in three rounds interleaved with
// updateAiManagedState's (5 commands per batch, whatever its size). The engine's CPU per document
// is reported beside it: on this engine it bounds the batch's writes per second, whatever the
// service does.

import { ObjectId } from 'mongodb';
import { check, gqlData, Q } from '../lib/graphql.mjs';
import { errorsIn } from '../lib/judge.mjs';
import { countBoth, currentPool, interleaved, median, ratio, verify } from '../lib/measure.mjs';

const label = ({ batchSize }) => `updateAiManagedStates (${batchSize})`;
const SINGLE = 'updateAiManagedState';

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

/**
 * Single writes and batches in turn, each round a fixed number of requests, all answered (a batch
 * takes seconds: one still under way when a timed round stops would have cost CPU uncounted).
 */
async function measure(state) {
  const { settings, specs, verified, service, results } = state;
  const batchLabel = label(settings);
  if (!verified[batchLabel] || !verified[SINGLE]) return;
  const [single, batch] = await interleaved(
    state,
    [
      { target: service, label: SINGLE, spec: specs[SINGLE], amount: settings.batchRound.single },
      {
        target: service,
        label: batchLabel,
        spec: specs[batchLabel],
        amount: settings.batchRound.batch,
      },
    ],
    null,
    { tag: `beside ${batchLabel}` },
  );
  const perWallet = (v) => (v == null ? null : Math.round((v / settings.batchSize) * 1000) / 1000);
  const rounds = batch.rounds.map((b, i) => {
    const s = single.rounds[i];
    return {
      serviceMsPerWallet: perWallet(b.cpuMsPerRequest),
      serviceMsPerSingle: s.cpuMsPerRequest,
      share: ratio(perWallet(b.cpuMsPerRequest), s.cpuMsPerRequest),
      engineMsPerWallet: perWallet(b.dbCpuMsPerRequest),
      engineMsPerSingle: s.dbCpuMsPerRequest,
    };
  });
  results.scenarios[batchLabel] = {
    connections: settings.connections,
    order: `${settings.rounds} rounds on the service: ${settings.batchRound.single} x ${SINGLE}, ${settings.batchRound.batch} x ${batchLabel}, ...`,
    service: batch,
    against: { label: SINGLE, service: single },
    rounds,
    share: median(rounds.map((r) => r.share)),
    engineMsPerWallet: median(rounds.map((r) => r.engineMsPerWallet)),
    engineMsPerSingle: median(rounds.map((r) => r.engineMsPerSingle)),
  };
}

export default {
  name: 'updateAiManagedStates',
  // Its target compares with the single write, measured in its own rounds.
  uses: ['updateAiManagedState'],
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
    measure,
    count: (state) => countBoth(state, label(state.settings), 10, [state.service]),
  },
  targets: {
    cpuPerWallet(state, { target }) {
      const { settings, results, thresholds } = state;
      const batchLabel = label(settings);
      target(
        `${batchLabel}: the service's CPU per wallet written at most 1/5 of a single write's (median of 3 rounds); the engine's CPU per document beside it`,
        [batchLabel, SINGLE],
        () => {
          const row = results.scenarios[batchLabel];
          const counted = results.commands.service[batchLabel];
          const fraction = (v) => (v ? `1/${Math.round((1 / v) * 10) / 10}` : '-');
          return [
            row.share !== null &&
              row.share <= thresholds.batchCpuShare &&
              errorsIn(row.service, row.against.service) === 0 &&
              counted.errors === 0,
            `${fraction(row.share)} (rounds ${row.rounds.map((r) => fraction(r.share)).join(', ')}: ${row.rounds.map((r) => `${r.serviceMsPerWallet} vs ${r.serviceMsPerSingle}`).join(', ')} service CPU ms per wallet); the engine's CPU per document ${row.engineMsPerWallet} ms in a batch, ${row.engineMsPerSingle} ms for a single write (a figure, not a target); errors ${errorsIn(row.service)} / ${errorsIn(row.against.service)}; ${counted.perRequest} commands per batch ${JSON.stringify(counted.byCommand)}`,
          ];
        },
      );
    },
  },
};
