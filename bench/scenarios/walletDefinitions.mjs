// walletDefinitions: the catalog, on both servers (the service caches lists per filter and drops
// them on every catalog write); and an admin write followed at once by a read, which must show it.

import { randomBytes } from 'node:crypto';
import { ACTIVE_DEFINITIONS, ACTIVE_SLUGS, definitionOf } from '../lib/catalog.mjs';
import { check, gqlData, Q } from '../lib/graphql.mjs';
import { errorsIn, pct } from '../lib/judge.mjs';
import { countBoth, pair, verify } from '../lib/measure.mjs';

const LABEL = 'walletDefinitions';
const AFTER_WRITE = 'walletDefinitions after an admin write';

export default {
  name: 'walletDefinitions',
  steps: {
    async verify(state) {
      const { service, floor } = state;
      await verify(state, LABEL, async () => {
        const s = await gqlData(service, Q.catalog);
        const f = await gqlData(floor, Q.catalog);
        check(
          s.walletDefinitions.length === ACTIVE_DEFINITIONS,
          `service catalog has ${s.walletDefinitions.length} definitions, expected ${ACTIVE_DEFINITIONS}`,
        );
        check(
          s.walletDefinitions.map((d) => d.slug).join() === ACTIVE_SLUGS.join(),
          'catalog order',
        );
        check(
          JSON.stringify(s) === JSON.stringify(f),
          'service and floor answer the catalog identically',
        );
        return `${ACTIVE_DEFINITIONS} active definitions in order; identical answers from service and floor`;
      });
      state.specs[LABEL] = {
        kind: 'static',
        body: JSON.stringify({ query: Q.catalog }),
        check: { type: 'definitions', count: ACTIVE_DEFINITIONS },
      };
    },
    measure: (state) =>
      pair(state, LABEL, state.settings.roundSeconds, [state.service, state.floor]),
    count: (state) => countBoth(state, LABEL, 50),
    async afterAdminWrite(state) {
      const { service, tokens } = state;
      await verify(state, AFTER_WRITE, async () => {
        const stale = [];
        for (let i = 0; i < 3; i++) {
          for (let r = 0; r < 5; r++) await gqlData(service, Q.catalog);
          const description = `bench check ${i} ${randomBytes(4).toString('hex')}`;
          await gqlData(
            service,
            Q.updateDefinition,
            { slug: 'okx', input: { description } },
            tokens.admin,
          );
          const read = await gqlData(service, Q.catalog);
          const okx = read.walletDefinitions.find((d) => d.slug === 'okx');
          if (okx?.description !== description)
            stale.push({ wrote: description, read: okx?.description });
        }
        await gqlData(
          service,
          Q.updateDefinition,
          { slug: 'okx', input: { description: definitionOf('okx').description } },
          tokens.admin,
        );
        check(stale.length === 0, `stale reads after an admin write: ${JSON.stringify(stale)}`);
        return '3 of 3 reads right after an admin write showed it';
      });
    },
  },
  targets: {
    throughput(state, { target }) {
      target(
        "walletDefinitions: at least the floor's throughput (median of 3 rounds)",
        [LABEL],
        () => {
          const c = state.results.scenarios[LABEL];
          return [
            c.ratio >= state.thresholds.catalogThroughputShare &&
              errorsIn(c.service, c.floor) === 0,
            `${pct(c.ratio)} (rounds ${c.rounds.map((r) => pct(r.ratio)).join(', ')}); all rounds ${c.service.rps} vs ${c.floor.rps} req/s; errors ${errorsIn(c.service)} / ${errorsIn(c.floor)}`,
          ];
        },
      );
    },
    noStaleRead(state, { target }) {
      target('walletDefinitions: no stale read after an admin write', [LABEL, AFTER_WRITE], () => [
        true,
        state.results.correctness[AFTER_WRITE],
      ]);
    },
  },
};
