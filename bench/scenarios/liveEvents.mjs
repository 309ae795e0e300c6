// Live events (issue 13): 50 agents' subscriptions over graphql-ws (bench/live.mjs). First the
// delivery of events to all of them while agents write at a steady 100 writes/s (write to first
// sight, every write and subscriber counted); then the service's CPU per write with them connected
// against the same write scenario without them, in three interleaved rounds (without, with, ...),
// the subscribers connected afresh for each round with them.

import { connectSubscribers, disconnectSubscribers, measureDelivery } from '../live.mjs';
import { errorsIn } from '../lib/judge.mjs';
import { interleaved, median, ratio } from '../lib/measure.mjs';
import { log } from '../lib/processes.mjs';

const WRITE = 'updateAiManagedState';
// The feed's poll (250 ms) and settle time (300 ms), and a margin: the last writes' events go out
// after the load stops, and their CPU counts for the writes.
const DELIVERY_TAIL_MS = 1_000;

export default {
  name: 'liveEvents',
  // The write scenario's load spec, once its answers are right.
  uses: ['updateAiManagedState'],
  steps: {
    async measure(state) {
      const { settings, service, tokens, specs, results } = state;
      if (!state.verified[WRITE]) return;
      const count = settings.liveSubscribers;
      log(
        `live events: ${count} subscribers, ${settings.liveWritesPerSecond} writes/s for ${settings.phaseSeconds} s`,
      );
      let subscribers = await connectSubscribers(service.url, tokens.agent, count);
      let delivery;
      try {
        delivery = await measureDelivery({
          baseUrl: service.url,
          token: tokens.agent,
          walletIds: state.fixtures.writePool,
          subscribers,
          perSecond: settings.liveWritesPerSecond,
          seconds: settings.phaseSeconds,
        });
      } finally {
        await disconnectSubscribers(subscribers);
      }
      log(
        `live events: p50 ${delivery.p50Ms} ms, p99 ${delivery.p99Ms} ms, ${delivery.missed} missed of ${delivery.writes * delivery.subscribers}`,
      );

      let subscriberErrors = 0;
      const [without, withThem] = await interleaved(
        state,
        [
          { target: service, label: `${WRITE} (no subscribers)`, spec: specs[WRITE] },
          {
            target: service,
            label: `${WRITE} (${count} subscribers)`,
            spec: specs[WRITE],
            async around(measure) {
              subscribers = await connectSubscribers(service.url, tokens.agent, count);
              try {
                return await measure();
              } finally {
                subscriberErrors += subscribers.reduce((n, s) => n + s.errors.length, 0);
                await disconnectSubscribers(subscribers);
              }
            },
          },
        ],
        settings.roundSeconds,
        { cpuTailMs: DELIVERY_TAIL_MS },
      );
      const rounds = withThem.rounds.map((w, i) => ({
        cpuRatio: ratio(w.cpuMsPerRequest, without.rounds[i].cpuMsPerRequest),
      }));
      results.live = {
        delivery,
        withoutSubscribers: without,
        withSubscribers: { ...withThem, subscriberErrors },
        rounds,
        cpuRatio: median(rounds.map((r) => r.cpuRatio)),
      };
      log(
        `live events: the service's CPU per write ${results.live.cpuRatio} x with ${count} subscribers (rounds ${rounds.map((r) => r.cpuRatio).join(', ')})`,
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
    cpuPerWrite(state, { t }) {
      const live = state.results.live;
      const count = state.settings.liveSubscribers;
      t(
        `live events: the service's CPU per updateAiManagedState with ${count} agent subscribers at most 1.3 x without (median of 3 rounds)`,
        live &&
          live.cpuRatio !== null &&
          live.cpuRatio <= state.thresholds.liveCpuFactor &&
          errorsIn(live.withSubscribers, live.withoutSubscribers) === 0 &&
          live.withSubscribers.subscriberErrors === 0,
        live
          ? `${live.cpuRatio} x (rounds ${live.rounds.map((r) => r.cpuRatio).join(', ')}); all rounds ${live.withSubscribers.cpu.serverMsPerRequest} vs ${live.withoutSubscribers.cpu.serverMsPerRequest} CPU ms/write, ${live.withSubscribers.rps} vs ${live.withoutSubscribers.rps} writes/s; errors ${errorsIn(live.withSubscribers)} / ${errorsIn(live.withoutSubscribers)}, subscribers' ${live.withSubscribers.subscriberErrors}`
          : 'not measured',
      );
    },
  },
};
