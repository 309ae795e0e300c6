#!/usr/bin/env node
// `npm run bench`: the wallet service against a hand-written floor, in one run (issue 5).
//
// What it does, in order (1-4 in lib/setup.mjs):
//   1. the database (lib/database.mjs): MONGODB_URI when set (a single host; a fresh database in
//      it, dropped at the end), else its own embedded engine (node dist/db/db-cli.js on a
//      temporary DATA_DIR);
//   2. seeds it with the plain mongodb driver (lib/seed.mjs, lib/catalog.mjs): the service's
//      built-in catalog and the bench's own definitions (4 active, 1 inactive); users with 10, 100
//      and 1,000 wallets; 10,000 users of one wallet each, the first 2,000 of those wallets for
//      the agents' writes; more users' wallets up to 12,000 in all; every wallet on its own
//      credential; indexes, stored values and tokens come from the service's own code in dist/
//      (lib/service-code.mjs);
//   3. puts a counting TCP proxy (db-proxy.mjs) between each server and the database, so
//      database commands per request are counted for both without touching either;
//   4. starts the service (node dist/main.js, NODE_ENV=production, LOG_LEVEL=warn, per-token
//      request budgets raised out of the way) and times it from spawn to /ready answering 200,
//      then reads its idle RSS; starts the floor (floor/server.mjs) (lib/servers.mjs);
//   5. checks every scenario's answers once on both: the same data from both, 100 wallets for the
//      100-wallet user, each with its definition and credential, writes that land with the
//      version they should and their audit event, a stale expectedVersion refused; a
//      GRANTED_WALLETS agent, issued by the admin through the API and granted 1,000 of the
//      wallets in the database, seeing and writing only those;
//   6. measures with autocannon from a child process (load.mjs), 16 connections, service and
//      floor in three interleaved rounds (A B A B A B, the first server flipping every scenario;
//      a ratio target is the median of the rounds' ratios), a warm-up before each server's first
//      round of a scenario; the GRANTED_WALLETS agent's list and write on the service, each in
//      rounds interleaved with the ALL_WALLETS agent's, and so managedWalletChanges with
//      managedWallets;
//      then live events, and the largest allowed request beside another user's `me`;
//   7. 60 s of constant mixed load on the service for its RSS growth; then the single write on an
//      instance of its own with tracing off and on another with every trace sampled and exported
//      to a sink in this process (scenarios/tracing.mjs), both stopped after it; then 10,000 users'
//      subscriptions on an instance of its own beside a second one (scenarios/userSubscriptions.mjs,
//      from a child process, bench/subscribers.mjs), both stopped after it;
//   8. counts database commands per request in sequential runs (1 connection) through the
//      proxies, with the database's share of each request's time, and captures the agents'
//      conditional update as each server sent it;
//   9. userWallets at 1,000 wallets (last: its megabyte answers would blur the RSS phase); the
//      service's RSS at the end; an admin write to the catalog followed at once by a read (a
//      cached catalog must not answer stale);
//  10. writes bench/results/latest.json, prints the table and PASS/FAIL for each target (issue 5's
//      section 2, issue 12's section 3), and exits 1 when one fails (2 when the run itself broke).
//      Everything it started is stopped, also on an error or Ctrl-C.
// Each scenario is a module of scenarios/ with its steps (checking its answers, measuring,
// counting commands) and its targets; PLAN below says when each step runs, TARGETS in which order
// the targets are printed. One state object goes through all of them.
//
// `npm run bench -- --only <scenario>` (several allowed; lib/selection.mjs): 1-4 as always, then
// only the named scenarios' steps (and those of the scenarios they compare with) and only their
// targets; written to bench/results/partial.json.
//
// Knobs (environment): MONGODB_URI; BENCH_SECONDS (a measured phase, default 10);
// BENCH_WARMUP_SECONDS (3); BENCH_CONNECTIONS (16); BENCH_RSS_SECONDS (60); BENCH_SUBSCRIBERS
// (10,000 users' subscriptions; fewer for a quick check); BENCH_SERVICE_<NAME>
// passes <NAME> to the service's environment; BENCH_NODE_ARGS, node flags for the service (for a
// diagnosis only, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof": a profiler skews the numbers).
// Errors: a non-2xx answer, or a 200 whose body has GraphQL errors, or a sampled answer whose
// data is not the expected data. A target passes only when its phases had no errors.

import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { judge } from './lib/judge.mjs';
import { recordCommands } from './lib/measure.mjs';
import { children, cleanup, log, stopOnSignals, tail, wasInterrupted } from './lib/processes.mjs';
import { rssMB } from './lib/procfs.mjs';
import { printTable, writeResults } from './lib/report.mjs';
import { parseOnly, select } from './lib/selection.mjs';
import { SETTINGS, THRESHOLDS } from './lib/settings.mjs';
import { newResults, setUp } from './lib/setup.mjs';
import grantedAgent from './scenarios/grantedAgent.mjs';
import largestRequest from './scenarios/largestRequest.mjs';
import liveEvents from './scenarios/liveEvents.mjs';
import managedWalletChanges from './scenarios/managedWalletChanges.mjs';
import managedWallets from './scenarios/managedWallets.mjs';
import rss from './scenarios/rss.mjs';
import startup from './scenarios/startup.mjs';
import tracing from './scenarios/tracing.mjs';
import updateAiManagedState from './scenarios/updateAiManagedState.mjs';
import updateAiManagedStates from './scenarios/updateAiManagedStates.mjs';
import userSubscriptions from './scenarios/userSubscriptions.mjs';
import userWallets from './scenarios/userWallets.mjs';
import walletDefinitions from './scenarios/walletDefinitions.mjs';

// The run's own steps and targets, taken in every run.
const RUN = {
  name: 'run',
  steps: {
    commands: recordCommands,
    async endRss({ results, service, floor }) {
      await sleep(1_000);
      results.rss.endMB = rssMB(service.child.proc.pid);
      results.rss.floorEndMB = rssMB(floor.child.proc.pid);
    },
  },
  targets: {
    answeredRight({ verified }, { t }) {
      const wrong = Object.keys(verified).filter((k) => !verified[k]);
      t(
        '(instrument) every scenario answered right before it was measured',
        wrong.length === 0,
        wrong.length ? `wrong: ${wrong.join(', ')}` : `${Object.keys(verified).length} checks`,
      );
    },
    noErrors({ results }, { t }) {
      // With the rows measured beside a scenario's own, in its rounds.
      const allRows = Object.values(results.scenarios)
        .flatMap((r) => [r.service, r.floor, r.against?.service])
        .filter(Boolean);
      const totalErrors = allRows.reduce((s, r) => s + r.errors, 0);
      t(
        '(instrument) every measured phase answered without errors',
        totalErrors === 0,
        `${totalErrors} errors in ${allRows.reduce((s, r) => s + r.requests, 0)} requests`,
      );
    },
  },
};

const SCENARIOS = Object.fromEntries(
  [
    walletDefinitions,
    userWallets,
    updateAiManagedState,
    managedWallets,
    updateAiManagedStates,
    managedWalletChanges,
    grantedAgent,
    liveEvents,
    userSubscriptions,
    tracing,
    largestRequest,
    rss,
    startup,
    RUN,
  ].map((s) => [s.name, s]),
);

// When each step runs. The order is part of the measurement: the 1,000-wallet list comes last
// (its answers would blur the RSS phase), the order of the servers flips every scenario.
const PLAN = {
  // 5. Correctness, once, on both.
  verify: [
    'walletDefinitions.verify',
    'userWallets.verify',
    'updateAiManagedState.verify',
    'managedWallets.verify',
    'updateAiManagedStates.verify',
    'managedWalletChanges.verify',
    'grantedAgent.verify',
    'userSubscriptions.verify',
  ],
  // 6. Throughput and latency; 6b live events; 6c the largest allowed request; 7. RSS, tracing's
  // cost, and 10,000 users' subscriptions.
  measure: [
    'walletDefinitions.measure',
    'userWallets.measure100',
    'updateAiManagedState.measure',
    'grantedAgent.write',
    'userWallets.measure10',
    'managedWallets.measure',
    'grantedAgent.list',
    'updateAiManagedStates.measure',
    'managedWalletChanges.measure',
    'liveEvents.measure',
    'largestRequest.measure',
    'rss.measure',
    // Instances of their own, started and stopped in them: after the RSS phase all the same.
    'tracing.measure',
    'userSubscriptions.measure',
  ],
  // 8. Commands per request, one request at a time, everything warm by now.
  count: [
    'walletDefinitions.count',
    'userWallets.count',
    'updateAiManagedState.count',
    'managedWallets.count',
    'updateAiManagedStates.count',
    'managedWalletChanges.count',
    'grantedAgent.count',
    'run.commands',
  ],
  // 9. Last.
  last: ['userWallets.measure1000', 'run.endRss', 'walletDefinitions.afterAdminWrite'],
};

// The order the targets are judged and printed in.
const TARGETS = [
  'userWallets.commands',
  'userWallets.throughput',
  'userWallets.tail',
  'walletDefinitions.throughput',
  'walletDefinitions.noStaleRead',
  'updateAiManagedState.throughput',
  'updateAiManagedStates.cpuPerWallet',
  'managedWalletChanges.throughput',
  'grantedAgent.listThroughput',
  'grantedAgent.writeThroughput',
  'grantedAgent.commands',
  'userWallets.cpu',
  'liveEvents.delivery',
  'liveEvents.cpuPerWrite',
  'userSubscriptions.sameInstance',
  'userSubscriptions.secondInstance',
  'userSubscriptions.cpuPerWrite',
  'userSubscriptions.rssPerSocket',
  'tracing.cpu',
  'tracing.exported',
  'largestRequest.meP99',
  'startup.idleRss',
  'rss.growth',
  'startup.ready',
  'run.answeredRight',
  'run.noErrors',
];

// Every step and target of every scenario is in the plan once, so none is silently left out.
{
  const planned = [...Object.values(PLAN).flat(), ...TARGETS];
  const declared = Object.values(SCENARIOS).flatMap((s) => [
    ...Object.keys(s.steps).map((k) => `${s.name}.${k}`),
    ...Object.keys(s.targets).map((k) => `${s.name}.${k}`),
  ]);
  const wrong = [
    ...declared.filter((d) => planned.filter((p) => p === d).length !== 1),
    ...planned.filter((p) => !declared.includes(p)),
  ];
  if (wrong.length) throw new Error(`bench: the plan and the scenarios disagree on ${wrong}`);
}

let only;
try {
  only = parseOnly(
    process.argv.slice(2),
    Object.keys(SCENARIOS).filter((name) => name !== RUN.name),
  );
} catch (error) {
  process.stderr.write(`bench: ${error.message}\n`);
  process.exit(2);
}
const selection = select(SCENARIOS, only, RUN.name);

const entry = (name) => {
  const [scenario, key] = name.split('.');
  return { scenario: SCENARIOS[scenario], key };
};

async function runSteps(state, names) {
  for (const name of names) {
    const { scenario, key } = entry(name);
    if (selection.runs(scenario.name, key)) await scenario.steps[key](state);
  }
}

async function main(state) {
  const { results, verified } = state;
  if (only) {
    const also = (set) => [...set].filter((n) => n !== RUN.name && !only.includes(n));
    const measuredAlong = also(selection.measured);
    const checkedAlong = also(selection.checked).filter((n) => !measuredAlong.includes(n));
    log(
      `only ${only.join(', ')}${measuredAlong.length ? `; measured along for their targets: ${measuredAlong.join(', ')}` : ''}${checkedAlong.length ? `; answers checked for their load: ${checkedAlong.join(', ')}` : ''}`,
    );
  }
  await setUp(state);

  log('checking answers');
  await runSteps(state, PLAN.verify);
  log(
    Object.values(verified).every(Boolean)
      ? 'answers are right on both'
      : `answers wrong for: ${Object.keys(verified)
          .filter((k) => !verified[k])
          .join(', ')}`,
  );
  await runSteps(state, PLAN.measure);
  await runSteps(state, PLAN.count);
  await runSteps(state, PLAN.last);

  // 10. Targets. A target whose scenario answered wrongly, or was not measured, fails.
  const judging = judge(state);
  for (const name of TARGETS) {
    const { scenario, key } = entry(name);
    if (selection.judges(scenario.name)) scenario.targets[key](state, judging);
  }
  results.pass = results.targets.every((x) => x.pass);
  results.warnings = [];
  const busy = Object.entries(results.scenarios).flatMap(([scenario, row]) =>
    ['service', 'floor']
      .filter((n) => row[n]?.cpu?.otherCores > 0.2)
      .map((n) => `${scenario} @${n}: ${row[n].cpu.otherCores} cores`),
  );
  // The phases measured outside the table: live events' and the 10,000 subscribers' rounds.
  for (const [name, row] of Object.entries({
    'live events without subscribers': results.live?.withoutSubscribers,
    'live events with subscribers': results.live?.withSubscribers,
    'tracing, untraced instance': results.tracing?.untraced,
    'tracing, traced instance': results.tracing?.traced,
  }))
    if (row?.cpu.otherCores > 0.2) busy.push(`${name}: ${row.cpu.otherCores} cores`);
  for (const run of results.userSubscriptions?.rounds ?? [])
    if (run.cores.other > 0.2)
      busy.push(`userSubscriptions through ${run.through}: ${run.cores.other} cores`);
  if (busy.length) {
    results.warnings.push(
      `other processes used CPU during measured phases (${busy.join('; ')}): this machine was not quiet, compare with care and run again`,
    );
  }
}

stopOnSignals();
const state = {
  settings: SETTINGS,
  thresholds: THRESHOLDS,
  results: newResults(only),
  /** Scenario label -> whether its answers were right (only those are measured). */
  verified: {},
  /** Scenario label -> its load spec (bench/load.mjs), made when its answers are checked. */
  specs: {},
  /** Server -> scenario label -> commands per request. */
  counted: { service: {}, floor: {} },
  /** CPU time per series (scenario @ server), summed over its rounds. */
  cpuSeries: new Map(),
};
const runStarted = performance.now();
let exitCode;
try {
  await main(state);
  state.results.totalSeconds = Math.round((performance.now() - runStarted) / 1000);
  printTable(state.results, SETTINGS);
  // A partial run leaves the last full run's record alone.
  writeResults(state.results, only ? 'partial.json' : 'latest.json');
  exitCode = state.results.pass ? 0 : 1;
} catch (error) {
  if (wasInterrupted()) await new Promise(() => undefined); // the signal handler exits once all is stopped
  process.stderr.write(`\nbench failed: ${error.stack ?? error}\n`);
  for (const child of children) {
    if (child.logFile)
      process.stderr.write(`--- ${child.name} log (tail) ---\n${tail(child.logFile, 15)}\n`);
  }
  exitCode = 2;
} finally {
  log(`stopping (run took ${Math.round((performance.now() - runStarted) / 1000)} s)`);
  await cleanup();
}
process.exit(exitCode);
