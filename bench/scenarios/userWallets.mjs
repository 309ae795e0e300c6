// userWallets: a user's wallets, each with its definition and credential, for users with 10, 100
// and 1,000 wallets, on both servers. The 1,000-wallet list is measured last: its answers are
// megabytes, and the RSS they leave behind would otherwise blur the constant-load phase.

import { check, gqlData, Q } from '../lib/graphql.mjs';
import { errorsIn, pct } from '../lib/judge.mjs';
import { countBoth, median, pair, ratio, verify } from '../lib/measure.mjs';

const SIZES = [10, 100, 1_000];
const label = (size) => `userWallets (${size})`;

export default {
  name: 'userWallets',
  steps: {
    async verify(state) {
      const { service, floor, tokens } = state;
      for (const size of SIZES) {
        await verify(state, label(size), async () => {
          const s = await gqlData(service, Q.userWallets, undefined, tokens.list[size]);
          const f = await gqlData(floor, Q.userWallets, undefined, tokens.list[size]);
          check(
            s.userWallets.length === size,
            `service userWallets: ${s.userWallets.length} wallets, expected ${size}`,
          );
          check(
            s.userWallets.every(
              (w) =>
                w.definition.slug === w.credential.definition.slug &&
                w.definition.features.leverage.max > 0,
            ),
            'every wallet has its definition and its credential',
          );
          check(
            JSON.stringify(s) === JSON.stringify(f),
            `service and floor answer userWallets (${size}) identically`,
          );
          return `${size} wallets, each with its definition and credential; identical answers from service and floor`;
        });
        state.specs[label(size)] = {
          kind: 'static',
          token: tokens.list[size],
          body: JSON.stringify({ query: Q.userWallets }),
          check: { type: 'userWallets', count: size },
        };
      }
    },
    // The order of the servers flips every scenario (see run.mjs's plan).
    measure100: (state) =>
      pair(state, label(100), state.settings.roundSeconds, [state.floor, state.service]),
    // No target of its own: shorter rounds.
    measure10: (state) =>
      pair(state, label(10), Math.max(2, state.settings.roundSeconds / 2), [
        state.floor,
        state.service,
      ]),
    // A request takes seconds at 16 connections: whole phases, so a round holds enough of them.
    measure1000: (state) =>
      pair(state, label(1_000), state.settings.phaseSeconds, [state.service, state.floor]),
    async count(state) {
      await countBoth(state, label(10), 50);
      await countBoth(state, label(100), 30);
      await countBoth(state, label(1_000), 10);
    },
  },
  targets: {
    commands(state, { target }) {
      const commandsS = state.results.commands.service;
      target(
        'userWallets: DB commands per request the same at 10, 100 and 1,000 wallets, at most 4',
        SIZES.map(label),
        () => {
          const counts = SIZES.map((n) => commandsS[label(n)].perRequest);
          return [
            counts.every((c) => c === counts[0]) &&
              counts[0] <= state.thresholds.maxCommandsPerList &&
              SIZES.every((n) => commandsS[label(n)].errors === 0),
            `${counts.join(' / ')} (10 / 100 / 1,000 wallets); ${JSON.stringify(commandsS[label(1_000)].byCommand)} at 1,000`,
          ];
        },
      );
    },
    throughput(state, { target }) {
      target(
        'userWallets (100 wallets): throughput at least 70 % of the floor (median of 3 rounds)',
        [label(100)],
        () => {
          const list = state.results.scenarios[label(100)];
          return [
            list.ratio >= state.thresholds.listThroughputShare &&
              errorsIn(list.service, list.floor) === 0,
            `${pct(list.ratio)} (rounds ${list.rounds.map((r) => pct(r.ratio)).join(', ')}); all rounds ${list.service.rps} vs ${list.floor.rps} req/s; errors ${errorsIn(list.service)} / ${errorsIn(list.floor)}`,
          ];
        },
      );
    },
    tail(state, { target }) {
      target(
        `userWallets (100 wallets): p99 at most 3 x p50 at ${state.settings.connections} connections (median of 3 rounds)`,
        [label(100)],
        () => {
          const { service: s } = state.results.scenarios[label(100)];
          const factors = s.rounds.map((r) => ratio(r.p99, r.p50));
          const factor = median(factors);
          return [
            factor !== null && factor <= state.thresholds.listTailFactor && s.errors === 0,
            `${factor} x (rounds ${factors.join(', ')}); all rounds p50 ${s.p50} ms, p99 ${s.p99} ms`,
          ];
        },
      );
    },
    cpu(state, { target }) {
      for (const size of [100, 1_000]) {
        target(
          `${label(size)}: the service's CPU per request at most 1.25 x the floor's (median of 3 rounds)`,
          [label(size)],
          () => {
            const row = state.results.scenarios[label(size)];
            const { service: s, floor: f } = row;
            return [
              row.cpuRatio !== null &&
                row.cpuRatio <= state.thresholds.listCpuFactor &&
                errorsIn(s, f) === 0,
              `${row.cpuRatio} x (rounds ${row.rounds.map((r) => r.cpuRatio).join(', ')}); all rounds ${s.cpu.serverMsPerRequest} vs ${f.cpu.serverMsPerRequest} CPU ms/req`,
            ];
          },
        );
      }
    },
  },
};
