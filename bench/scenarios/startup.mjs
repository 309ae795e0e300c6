// Start-up: the service from spawn to /ready answering 200 on a database it has run on before
// (the seed made its indexes), and its RSS once idle; both measured whenever the run starts it.

export default {
  name: 'startup',
  steps: {},
  targets: {
    idleRss(state, { t }) {
      const { results, thresholds } = state;
      t(
        'idle RSS after start-up at most 150 MB',
        results.rss.idleMB <= thresholds.idleRssMB,
        `${results.rss.idleMB} MB`,
      );
    },
    ready(state, { t }) {
      const { results, thresholds } = state;
      t(
        'process start to /ready 200 under 3 s (database running)',
        results.startup.serviceMs < thresholds.startupMs,
        `${results.startup.serviceMs} ms`,
      );
    },
  },
};
