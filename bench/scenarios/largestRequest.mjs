// The largest allowed request in a loop (issue 17): one credential's balanceHistory(first: 500)
// of 100 assets each, on 2 connections, and another user's `me` meanwhile: the cost limit must
// leave the service answering everyone else.

import { check, gqlData, Q } from '../lib/graphql.mjs';
import { summary } from '../lib/measure.mjs';
import { log } from '../lib/processes.mjs';

export default {
  name: 'largestRequest',
  steps: {
    async measure(state) {
      const { settings, service, tokens, fixtures, load, results } = state;
      const heavyBody = JSON.stringify({
        query: Q.heavy,
        variables: { id: fixtures.heavyCredentialId },
      });
      const sample = await gqlData(
        service,
        Q.heavy,
        { id: fixtures.heavyCredentialId },
        tokens.list[10],
      );
      const snapshots = sample.credential.balanceHistory;
      check(
        snapshots.length === settings.heavySnapshots &&
          snapshots.every((b) => b.balances.length === settings.heavyAssets),
        `the largest allowed request answers ${settings.heavySnapshots} snapshots of ${settings.heavyAssets} assets`,
      );
      log(
        `largest allowed request (${JSON.stringify(sample).length} bytes) on ${settings.heavyConnections} connections, me on 1, ${settings.phaseSeconds} s`,
      );
      const [heavy, me] = await Promise.all([
        load.run({
          url: `${service.url}/graphql`,
          connections: settings.heavyConnections,
          duration: settings.phaseSeconds,
          kind: 'static',
          token: tokens.list[10],
          body: heavyBody,
          label: 'heavy @service',
        }),
        load.run({
          url: `${service.url}/graphql`,
          connections: 1,
          duration: settings.phaseSeconds,
          kind: 'static',
          token: tokens.list[100],
          body: JSON.stringify({ query: Q.me }),
          label: 'me beside heavy @service',
        }),
      ]);
      results.heavy = { heavy: summary(heavy), me: summary(me) };
      log(
        `largest allowed request ${heavy.rps} req/s p99 ${heavy.latencyMs.p99} ms; me beside it ${me.rps} req/s p50 ${me.latencyMs.p50} ms p99 ${me.latencyMs.p99} ms, errors ${heavy.errors + me.errors}`,
      );
    },
  },
  targets: {
    meP99(state, { t }) {
      const heavy = state.results.heavy;
      t(
        `another user's me at p99 within 200 ms while the largest allowed request runs on ${state.settings.heavyConnections} connections`,
        heavy &&
          heavy.me.p99 <= state.thresholds.meP99WithHeavyMs &&
          heavy.me.errors === 0 &&
          heavy.heavy.errors === 0,
        heavy
          ? `me p50 ${heavy.me.p50} ms, p99 ${heavy.me.p99} ms (${heavy.me.rps} req/s); the large request ${heavy.heavy.rps} req/s, p99 ${heavy.heavy.p99} ms`
          : 'not measured',
      );
    },
  },
};
