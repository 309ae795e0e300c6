// managedWalletChanges (first: 100): an agent paging through the 1,000 wallets their users changed
// of 12,000, on the service only: at least managedWallets (first: 100)'s throughput, in three
// rounds interleaved with it.

import { check, gqlData, Q } from '../lib/graphql.mjs';
import { errorsIn, pct } from '../lib/judge.mjs';
import { againstOther, countBoth, verify } from '../lib/measure.mjs';

const LABEL = 'managedWalletChanges (first: 100)';
const MANAGED = 'managedWallets (first: 100)';

export default {
  name: 'managedWalletChanges',
  // Its target compares with managedWallets' throughput, measured in its own rounds.
  uses: ['managedWallets'],
  steps: {
    async verify(state) {
      const { service, tokens, settings, fixtures } = state;
      const bodies = [];
      const since = fixtures.changedSince.toISOString();
      await verify(state, LABEL, async () => {
        let after = null;
        const seen = [];
        for (;;) {
          bodies.push(JSON.stringify({ query: Q.changes, variables: { since, after } }));
          const page = (await gqlData(service, Q.changes, { since, after }, tokens.agent))
            .managedWalletChanges;
          seen.push(...page.edges.map((e) => [e.node.userChangedAt, e.node.id]));
          if (!page.pageInfo.hasNextPage) break;
          after = page.pageInfo.endCursor;
          check(bodies.length <= 20, 'managedWalletChanges paging ends');
        }
        const expected = await state.db.direct
          .collection('user_wallets')
          .find(
            { user_changed_at: { $gte: fixtures.changedSince } },
            { projection: { _id: 1, user_changed_at: 1 } },
          )
          .sort({ user_changed_at: 1, _id: 1 })
          .toArray();
        check(
          expected.length === settings.changedWallets,
          `${expected.length} wallets changed since, expected ${settings.changedWallets}`,
        );
        check(
          JSON.stringify(seen) ===
            JSON.stringify(
              expected.map((w) => [w.user_changed_at.toISOString(), w._id.toHexString()]),
            ),
          'the feed pages every changed wallet once, oldest change first',
        );
        return `${bodies.length} pages of at most 100: the ${seen.length} wallets changed since, in (userChangedAt, id) order`;
      });
      state.specs[LABEL] = {
        kind: 'cycle',
        token: tokens.agent,
        bodies,
        check: { type: 'changes', count: 100 },
      };
    },
    measure: (state) => againstOther(state, LABEL, MANAGED, state.settings.roundSeconds),
    count: (state) => countBoth(state, LABEL, 20, [state.service]),
  },
  targets: {
    throughput(state, { target }) {
      const { settings, results } = state;
      target(
        "managedWalletChanges (first: 100): at least managedWallets (first: 100)'s throughput (median of 3 rounds)",
        [LABEL, MANAGED],
        () => {
          const row = results.scenarios[LABEL];
          const changes = row.service;
          const managed = row.against.service;
          return [
            row.ratio >= state.thresholds.changesThroughputShare &&
              errorsIn(changes, managed) === 0,
            `${pct(row.ratio)} (rounds ${row.rounds.map((r) => pct(r.ratio)).join(', ')}); all rounds ${changes.rps} vs ${managed.rps} req/s (${settings.changedWallets} of ${settings.totalWallets} wallets changed); errors ${errorsIn(changes)} / ${errorsIn(managed)}`,
          ];
        },
      );
    },
  },
};
