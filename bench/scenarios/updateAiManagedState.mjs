// updateAiManagedState: an agent's write of a wallet's AI state, every request on a different
// wallet of the write pool with its current version, on both servers; every limit check in the one
// conditional update, which carries the audit events (5 commands per write on both).

import { ObjectId } from 'mongodb';
import { check, gql, gqlData, Q } from '../lib/graphql.mjs';
import { errorsIn, pct } from '../lib/judge.mjs';
import { countBoth, currentPool, pair, verify } from '../lib/measure.mjs';

const LABEL = 'updateAiManagedState';

async function checkWrites(state) {
  const { service, floor, tokens } = state;
  const direct = state.db.direct;
  const [a, b] = (await currentPool(state)).slice(0, 2);
  const input = {
    currentRisk: 1234.5,
    currentMaxPositionSize: 2000,
    currentLeverage: 2,
    riskScore: 40,
    marketSentiment: 'BULLISH',
    confidenceLevel: 70,
  };
  const ws = await gqlData(
    service,
    Q.write,
    { walletId: a.id, expectedVersion: a.version, input },
    tokens.agent,
  );
  const wf = await gqlData(
    floor,
    Q.write,
    { walletId: b.id, expectedVersion: b.version, input },
    tokens.agent,
  );
  for (const [w, before] of [
    [ws.updateAiManagedState, a],
    [wf.updateAiManagedState, b],
  ]) {
    check(
      w.id === before.id && w.version === before.version + 1 && w.status === 'ACTIVE',
      `write answered ${JSON.stringify(w)}`,
    );
    check(
      w.aiManagedState.currentRisk === 1234.5 &&
        w.aiManagedState.currentLeverage === 2 &&
        w.aiManagedState.marketSentiment === 'BULLISH',
      'written state answered',
    );
    const stored = await direct.collection('user_wallets').findOne({ _id: new ObjectId(w.id) });
    check(
      stored.version === before.version + 1 &&
        stored.ai_managed_state.current_risk === 1234.5 &&
        stored.ai_managed_state.market_sentiment === 'bullish',
      'written state stored',
    );
    const event = await direct
      .collection('user_wallet_events')
      .findOne({ wallet_id: new ObjectId(w.id), version: before.version + 1 });
    check(
      event?.kind === 'ai_state_changed' && event.actor === 'bench-risk-agent',
      'audit event written',
    );
  }
  const staleS = await gql(
    service,
    Q.write,
    { walletId: a.id, expectedVersion: a.version, input },
    tokens.agent,
  );
  const staleF = await gql(
    floor,
    Q.write,
    { walletId: b.id, expectedVersion: b.version, input },
    tokens.agent,
  );
  check(
    staleS.errors?.[0]?.extensions?.code === 'CONFLICT' &&
      staleF.errors?.[0]?.extensions?.code === 'CONFLICT',
    'a stale expectedVersion is a CONFLICT on both',
  );
  const tooMuch = await gql(
    service,
    Q.write,
    { walletId: a.id, expectedVersion: a.version + 1, input: { currentMaxPositionSize: 60_000 } },
    tokens.agent,
  );
  check(
    tooMuch.errors?.[0]?.extensions?.code === 'BAD_USER_INPUT',
    'a position size over maxTotalRisk is refused',
  );
  return 'version +1, state stored, audit event written, stale version CONFLICT (both); over-limit refused (service)';
}

export default {
  name: 'updateAiManagedState',
  steps: {
    async verify(state) {
      await verify(state, LABEL, () => checkWrites(state));
      state.specs[LABEL] = {
        kind: 'write',
        token: state.tokens.agent,
        query: Q.write,
        check: { type: 'write' },
      };
    },
    measure: (state) =>
      pair(state, LABEL, state.settings.roundSeconds, [state.service, state.floor]),
    count: (state) => countBoth(state, LABEL, 50),
  },
  targets: {
    throughput(state, { target }) {
      const { results } = state;
      target(
        "updateAiManagedState: at least 60 % of the floor's throughput (median of 3 rounds), every limit check in the one conditional update",
        [LABEL],
        () => {
          const w = results.scenarios[LABEL];
          const updates = results.commands.conditionalUpdate;
          const limitKeys = [
            '_id',
            'version',
            'user_limits.max_total_risk',
            'user_limits.trading_mode',
          ];
          const byCommand = results.commands.service[LABEL].byCommand;
          // The state's one conditional update; the audit outbox's pull (a write of the wallet that
          // changes no state: the events are already stored with the change) is counted apart, by
          // its share of the wallet writes kept whole (lib/measure.mjs recordCommands).
          const walletWrites =
            (byCommand['findAndModify user_wallets'] ?? 0) +
            (byCommand['update user_wallets'] ?? 0);
          const pullsPerWrite =
            Math.round(walletWrites * (updates.service?.pullShare ?? 0) * 100) / 100;
          const updatesPerWrite = Math.round((walletWrites - pullsPerWrite) * 100) / 100;
          const onFilter = updates.service?.query ?? [];
          const pushesEvents = (updates.service?.update.$push ?? []).includes('pending_events');
          return [
            w.ratio >= state.thresholds.writeThroughputShare &&
              errorsIn(w.service, w.floor) === 0 &&
              updatesPerWrite === 1 &&
              pushesEvents &&
              limitKeys.every((k) => onFilter.includes(k)),
            `${pct(w.ratio)} (rounds ${w.rounds.map((r) => pct(r.ratio)).join(', ')}); all rounds ${w.service.rps} vs ${w.floor.rps} req/s; errors ${errorsIn(w.service)} / ${errorsIn(w.floor)}; ${updatesPerWrite} conditional update per write on {${onFilter.join(', ')}}, carrying its audit events${pushesEvents ? '' : ' (MISSING)'}; ${pullsPerWrite} outbox pull`,
          ];
        },
      );
    },
  },
};
