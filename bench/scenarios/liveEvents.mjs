// Live events (issue 13): 50 agents' subscriptions over graphql-ws (bench/live.mjs). First the
// delivery of events to all of them while agents write at a steady 100 writes/s (write to first
// sight, every write and subscriber counted); then the write path's throughput with them
// connected, against the same write scenario without them, ABBA (without, with, without).

import { connectSubscribers, disconnectSubscribers, measureDelivery } from '../live.mjs';
import { pct } from '../lib/judge.mjs';
import { phase } from '../lib/measure.mjs';
import { log } from '../lib/processes.mjs';

const WRITE = 'updateAiManagedState';

export default {
  name: 'liveEvents',
  // The write scenario's load spec, once its answers are right.
  uses: ['updateAiManagedState'],
  steps: {
    async measure(state) {
      const { settings, service, tokens, specs, results } = state;
      if (!state.verified[WRITE]) return;
      log(
        `live events: ${settings.liveSubscribers} subscribers, ${settings.liveWritesPerSecond} writes/s for ${settings.phaseSeconds} s`,
      );
      const halfWithout = settings.phaseSeconds / 2;
      const before = await phase(state, service, WRITE, specs[WRITE], halfWithout);
      const subscribers = await connectSubscribers(
        service.url,
        tokens.agent,
        settings.liveSubscribers,
      );
      let delivery;
      let withSubscribers;
      try {
        delivery = await measureDelivery({
          baseUrl: service.url,
          token: tokens.agent,
          walletIds: state.fixtures.writePool,
          subscribers,
          perSecond: settings.liveWritesPerSecond,
          seconds: settings.phaseSeconds,
        });
        withSubscribers = await phase(
          state,
          service,
          `${WRITE} (with ${settings.liveSubscribers} subscribers)`,
          specs[WRITE],
          settings.phaseSeconds,
          { warmup: false },
        );
      } finally {
        await disconnectSubscribers(subscribers);
      }
      const after = await phase(state, service, WRITE, specs[WRITE], halfWithout, {
        warmup: false,
      });
      const withoutRps = Math.round(((before.rps + after.rps) / 2) * 10) / 10;
      results.live = {
        delivery,
        withoutSubscribers: { rps: withoutRps, errors: before.errors + after.errors },
        withSubscribers,
        ratio: Math.round((withSubscribers.rps / withoutRps) * 1000) / 1000,
      };
      log(
        `live events: p50 ${delivery.p50Ms} ms, p99 ${delivery.p99Ms} ms, ${delivery.missed} missed of ${delivery.writes * delivery.subscribers}; writes ${withSubscribers.rps} req/s with subscribers vs ${withoutRps} without`,
      );
    },
  },
  targets: {
    delivery(state, { t }) {
      const { settings, thresholds } = state;
      const live = state.results.live;
      t(
        `live events: ${settings.liveSubscribers} subscribers, ${settings.liveWritesPerSecond} writes/s: p99 write to delivery under 2 s, none missed`,
        live &&
          live.delivery.p99Ms !== null &&
          live.delivery.p99Ms < thresholds.liveP99Ms &&
          live.delivery.missed === 0 &&
          live.delivery.writeErrors === 0 &&
          live.delivery.subscriberErrors === 0,
        live
          ? `p50 ${live.delivery.p50Ms} ms, p99 ${live.delivery.p99Ms} ms, max ${live.delivery.maxMs} ms; ${live.delivery.deliveries} deliveries of ${live.delivery.writes} writes, ${live.delivery.missed} missed; ${live.delivery.writesPerSecond} writes/s`
          : 'not measured',
      );
    },
    writeShare(state, { t }) {
      const live = state.results.live;
      t(
        `live events: updateAiManagedState with ${state.settings.liveSubscribers} subscribers at least 90 % of its throughput without`,
        live &&
          live.ratio >= state.thresholds.liveWriteShare &&
          live.withSubscribers.errors === 0 &&
          live.withoutSubscribers.errors === 0,
        live
          ? `${live.withSubscribers.rps} vs ${live.withoutSubscribers.rps} req/s = ${pct(live.ratio)}`
          : 'not measured',
      );
    },
  },
};
