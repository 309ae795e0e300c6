// RSS over a constant mixed load (the four operations, round robin) on the service. RSS
// saw-tooths with garbage collection, so the start and the end are the medians of 10 s windows:
// the first after a settling time, and the last.

import { performance } from 'node:perf_hooks';
import { pct } from '../lib/judge.mjs';
import { settle, specFor } from '../lib/measure.mjs';
import { log, tail } from '../lib/processes.mjs';
import { rssMB } from '../lib/procfs.mjs';

const MIXED = [
  'userWallets (100)',
  'walletDefinitions',
  'updateAiManagedState',
  'managedWallets (first: 100)',
];

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
};

export default {
  name: 'rss',
  // The operations of the mix, once their answers are right.
  uses: ['userWallets', 'walletDefinitions', 'updateAiManagedState', 'managedWallets'],
  steps: {
    async measure(state) {
      const { settings, service, specs, results } = state;
      const serviceChild = service.child;
      const mixed = MIXED.filter((k) => state.verified[k]);
      if (mixed.length === 0) return;
      const runSeconds = settings.rssSettleSeconds + settings.rssSeconds;
      log(`RSS: ${runSeconds} s of constant mixed load on the service (${mixed.join(', ')})`);
      const samples = [];
      const mix = { kind: 'mix', parts: mixed.map((k) => ({ ...specs[k], label: k })) };
      await settle(state);
      const mixSpec = {
        url: `${service.url}/graphql`,
        connections: settings.connections,
        duration: runSeconds,
        label: 'rss mix @service',
        ...mix,
        ...(await specFor(state, mix)),
      };
      const mixStarted = performance.now();
      const sampler = setInterval(() => {
        try {
          samples.push({
            t: Math.round((performance.now() - mixStarted) / 100) / 10,
            rssMB: rssMB(serviceChild.proc.pid),
          });
        } catch {
          // The process is gone: the run reports it.
        }
      }, 500);
      const mixRun = await state.load.run(mixSpec);
      clearInterval(sampler);
      if (serviceChild.exited)
        throw new Error(
          `the service exited (code ${serviceChild.exitCode}, signal ${serviceChild.exitSignal}) under constant load:\n${tail(serviceChild.logFile)}`,
        );
      const windowS = Math.min(10, settings.rssSeconds / 2);
      const last = samples.at(-1)?.t ?? 0;
      const startWindow = samples
        .filter(
          (x) => x.t >= settings.rssSettleSeconds && x.t < settings.rssSettleSeconds + windowS,
        )
        .map((x) => x.rssMB);
      const endWindow = samples.filter((x) => x.t > last - windowS).map((x) => x.rssMB);
      const startMB = median(startWindow);
      const endMB = median(endWindow);
      results.rss.constantLoad = {
        operations: `${mixed.join(', ')}: round robin`,
        connections: settings.connections,
        seconds: settings.rssSeconds,
        settleSeconds: settings.rssSettleSeconds,
        startMB,
        startWindow: `median of ${startWindow.length} samples in ${settings.rssSettleSeconds}-${settings.rssSettleSeconds + windowS} s`,
        endMB,
        endWindow: `median of ${endWindow.length} samples in the last ${windowS} s`,
        minMB: Math.min(...samples.map((x) => x.rssMB)),
        maxMB: Math.max(...samples.map((x) => x.rssMB)),
        growth: Math.round(((endMB - startMB) / startMB) * 1000) / 1000,
        rps: mixRun.rps,
        p50: mixRun.latencyMs.p50,
        p99: mixRun.latencyMs.p99,
        requests: mixRun.requests,
        errors: mixRun.errors,
        errorSamples: mixRun.errorSamples,
        samples,
      };
      log(
        `RSS ${startMB} MB -> ${endMB} MB (growth ${(results.rss.constantLoad.growth * 100).toFixed(1)} %, min ${results.rss.constantLoad.minMB}, max ${results.rss.constantLoad.maxMB}), ${mixRun.rps} req/s, errors ${mixRun.errors}`,
      );
    },
  },
  targets: {
    growth(state, { t }) {
      const rl = state.results.rss.constantLoad;
      t(
        `RSS growth over ${state.settings.rssSeconds} s of constant load under 10 %`,
        rl && rl.growth < state.thresholds.rssGrowth && rl.errors === 0,
        rl
          ? `${rl.startMB} -> ${rl.endMB} MB (${pct(rl.growth)}; min ${rl.minMB}, max ${rl.maxMB} MB) at ${rl.rps} req/s, errors ${rl.errors}`
          : 'not measured',
      );
    },
  },
};
