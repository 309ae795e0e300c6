// managedWallets (first: 100): an agent paging through all 12,000 wallets, on the service only
// (managedWalletChanges and the RSS phase compare with it).

import { check, gqlData, Q } from '../lib/graphql.mjs';
import { countBoth, pair, verify } from '../lib/measure.mjs';

const LABEL = 'managedWallets (first: 100)';

export default {
  name: 'managedWallets',
  steps: {
    async verify(state) {
      const { service, tokens, settings } = state;
      const bodies = [];
      await verify(state, LABEL, async () => {
        let after = null;
        const ids = [];
        let pages = 0;
        for (;;) {
          bodies.push(JSON.stringify({ query: Q.managed, variables: { after } }));
          const page = (await gqlData(service, Q.managed, { after }, tokens.agent)).managedWallets;
          pages++;
          ids.push(...page.edges.map((e) => e.node.id));
          if (!page.pageInfo.hasNextPage) break;
          after = page.pageInfo.endCursor;
          check(pages <= 200, 'managedWallets paging ends');
        }
        check(
          ids.length === settings.totalWallets && new Set(ids).size === ids.length,
          `managedWallets paged ${ids.length} wallets (${new Set(ids).size} distinct), expected ${settings.totalWallets}`,
        );
        check(
          ids.every((id, i) => i === 0 || ids[i - 1] < id),
          'managedWallets pages in id order',
        );
        return `${pages} pages of at most 100: ${ids.length} distinct wallets in id order`;
      });
      state.specs[LABEL] = {
        kind: 'cycle',
        token: tokens.agent,
        bodies,
        check: { type: 'managed', count: 100 },
      };
    },
    measure: (state) => pair(state, LABEL, state.settings.phaseSeconds, [state.service]),
    count: (state) => countBoth(state, LABEL, 20, [state.service]),
  },
  targets: {},
};
