// managedWalletChanges (first: 100): an agent paging through the 1,000 wallets their users changed
// of 10,000, on the service only: at least managedWallets (first: 100)'s throughput.

import { check, gqlData, Q } from '../lib/graphql.mjs';
import { errorsIn, pct } from '../lib/judge.mjs';
import { countBoth, pair, verify } from '../lib/measure.mjs';

const LABEL = 'managedWalletChanges (first: 100)';
const MANAGED = 'managedWallets (first: 100)';

export default {
  name: 'managedWalletChanges',
  // Its target compares with managedWallets' throughput.
  compares: ['managedWallets'],
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
    measure: (state) => pair(state, LABEL, state.settings.phaseSeconds, [state.service]),
    count: (state) => countBoth(state, LABEL, 20, [state.service]),
  },
  targets: {
    throughput(state, { target }) {
      const { settings, results } = state;
      target(
        "managedWalletChanges (first: 100): at least managedWallets (first: 100)'s throughput",
        [LABEL, MANAGED],
        () => {
          const changes = results.scenarios[LABEL].service;
          const managed = results.scenarios[MANAGED].service;
          return [
            changes.rps >= state.thresholds.changesThroughputShare * managed.rps &&
              errorsIn(changes, managed) === 0,
            `${changes.rps} vs ${managed.rps} req/s = ${pct(changes.rps / managed.rps)} (${settings.changedWallets} of ${settings.totalWallets} wallets changed); errors ${errorsIn(changes)}`,
          ];
        },
      );
    },
  },
};
