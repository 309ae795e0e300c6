// Measuring: one-off checks of the answers, measured runs of a scenario on one server (with the
// CPU each process spent), service and floor alternating, and database commands per request.

import { performance } from 'node:perf_hooks';
import { ObjectId } from 'mongodb';
import { waitQuiet } from '../db-proxy.mjs';
import { log, tail } from './processes.mjs';
import { cpuOf, machineBusySeconds } from './procfs.mjs';

/**
 * Checks a scenario's answers once (fn returns what held, or throws). A scenario whose answers are
 * wrong is reported and not measured; the others still are.
 */
export async function verify({ results, verified }, name, fn) {
  try {
    results.correctness[name] = await fn();
    verified[name] = true;
  } catch (error) {
    verified[name] = false;
    results.correctness[name] = { wrong: error.message };
    log(`WRONG ANSWERS ${name}: ${error.message.slice(0, 500)} (not measured)`);
  }
}

export function summary(run) {
  return {
    rps: run.rps,
    p50: run.latencyMs.p50,
    p99: run.latencyMs.p99,
    requests: run.requests,
    errors: run.errors,
    durationS: run.durationS,
    latencyMs: run.latencyMs,
    errorDetail: run.errorDetail,
    errorSamples: run.errorSamples,
    validatedAnswers: run.validatedAnswers,
  };
}

// Requests still running in a server after autocannon stopped (and their database commands)
// must not spill into the next run: wait until both proxies have seen nothing for a while.
export async function settle({ counters }, ms = 300) {
  if (!(await waitQuiet(counters, ms))) log('warning: the database traffic did not settle in 15 s');
}

/**
 * One measured run of a scenario on one server, after a warm-up unless told otherwise. Runs with
 * the same series (scenario and server) add up: the answer describes all of them so far.
 */
export async function phase(state, target, label, spec, seconds, { warmup = true } = {}) {
  const { settings, load } = state;
  const series = `${label} @${target.name}`;
  const base = {
    url: `${target.url}/graphql`,
    connections: settings.connections,
    label: series,
    ...spec,
  };
  if (warmup && settings.warmupSeconds > 0) {
    await settle(state);
    await load.run({
      ...base,
      ...(await specFor(state, spec)),
      duration: settings.warmupSeconds,
      label: `${series} warm-up`,
    });
  }
  const extra = await specFor(state, spec);
  await settle(state);
  const cpu = cpuProbe(state, target, series);
  const run = await load.run({ ...base, ...extra, duration: seconds, series });
  const used = cpu.done(run.rounds.at(-1).requests);
  if (target.child.exited) {
    const hint =
      target.child.exitCode === 0
        ? ' (code 0 is its graceful shutdown: something outside the bench sent it SIGTERM or SIGINT)'
        : '';
    throw new Error(
      `${target.name} exited (code ${target.child.exitCode}, signal ${target.child.exitSignal}) during ${label}${hint}:\n${tail(target.child.logFile)}`,
    );
  }
  const round = run.rounds.at(-1);
  log(
    `${label.padEnd(26)} ${target.name.padEnd(7)} ${String(round.rps).padStart(8)} req/s this round (${round.durationS} s)  all rounds: ${run.rps} req/s  p50 ${run.latencyMs.p50} ms  p99 ${run.latencyMs.p99} ms  ` +
      `errors ${run.errors}  CPU cores: ${target.name} ${used.serverCores}, database ${used.dbCores ?? '-'}, load ${used.loadCores}, proxies ${used.benchCores}, other ${used.otherCores}`,
  );
  if (run.errors) log(`  error samples: ${JSON.stringify(run.errorSamples).slice(0, 1_000)}`);
  return { ...summary(run), rounds: run.rounds, cpu: used };
}

// CPU time of the server under test, the database engine and the load generator over a run:
// with 2 cores shared by all three, it tells which one was the bottleneck, and the server's CPU
// per request is its cost independent of waiting. Summed over the rounds of a series.
function cpuProbe({ db, load, serverPids, cpuSeries }, target, series) {
  const enginePids = db.enginePids;
  // `bench`: this process (the proxies) and the server not under test; `other`: everything else
  // on the machine, which should be nothing: a busy machine makes the numbers unreliable.
  const groups = {
    server: [target.child.proc.pid],
    db: enginePids,
    load: [load.pid],
    bench: [process.pid, ...serverPids.filter((pid) => pid !== target.child.proc.pid)],
  };
  const before = Object.fromEntries(Object.entries(groups).map(([k, pids]) => [k, cpuOf(pids)]));
  const machineBefore = machineBusySeconds();
  const started = performance.now();
  return {
    done(requests) {
      const sum = cpuSeries.get(series) ?? {
        seconds: 0,
        requests: 0,
        server: 0,
        db: 0,
        load: 0,
        bench: 0,
        other: 0,
      };
      sum.seconds += (performance.now() - started) / 1000;
      sum.requests += requests;
      let ours = 0;
      for (const [k, pids] of Object.entries(groups)) {
        const used = cpuOf(pids) - before[k];
        sum[k] += used;
        ours += used;
      }
      sum.other += Math.max(0, machineBusySeconds() - machineBefore - ours);
      cpuSeries.set(series, sum);
      const cores = (v) => Math.round((v / sum.seconds) * 100) / 100;
      const perRequest = (v) =>
        sum.requests ? Math.round(((v * 1000) / sum.requests) * 100) / 100 : null;
      return {
        serverCores: cores(sum.server),
        dbCores: enginePids.length ? cores(sum.db) : null,
        loadCores: cores(sum.load),
        benchCores: cores(sum.bench),
        otherCores: cores(sum.other),
        serverMsPerRequest: perRequest(sum.server),
        dbMsPerRequest: enginePids.length ? perRequest(sum.db) : null,
      };
    },
  };
}

// Write pools carry versions: read them from the database right before a run (after the last
// run's in-flight writes have landed), so every expectedVersion is current. `writePoolIds`: the
// wallets a spec writes (its walletIds), the whole write pool unless told.
export async function currentPool(state, writePoolIds = state.fixtures.writePool) {
  // Longer than a gap between two commands of a batch of writes on a busy machine.
  await settle(state, 1_000);
  const ids = writePoolIds.map((id) => new ObjectId(id));
  const docs = await state.db.direct
    .collection('user_wallets')
    .find({ _id: { $in: ids } }, { projection: { version: 1 } })
    .toArray();
  const version = new Map(docs.map((d) => [d._id.toHexString(), d.version]));
  return writePoolIds.map((id) => ({ id, version: version.get(id) }));
}

export async function specFor(state, spec) {
  if (spec.kind === 'write' || spec.kind === 'batch')
    return { pool: await currentPool(state, spec.walletIds) };
  if (spec.kind === 'mix' && spec.parts.some((p) => p.kind === 'write')) {
    const pool = await currentPool(state);
    return { parts: spec.parts.map((p) => (p.kind === 'write' ? { ...p, pool } : p)) };
  }
  return {};
}

/**
 * Throughput and latency of a scenario: on one server, or on both ABBA: the first server runs
 * half its time before the other's whole run and half after it, so drift in the machine or the
 * database over the run weighs on both alike. Skipped when the scenario's answers were wrong.
 */
export async function pair(state, label, seconds, order) {
  const { settings, specs, verified } = state;
  if (!verified[label]) return;
  const measured = state.results.scenarios;
  const row = {
    connections: settings.connections,
    seconds,
    order: order.map((t) => t.name).join(' -> '),
  };
  if (order.length === 1) {
    row[order[0].name] = await phase(state, order[0], label, specs[label], seconds);
  } else {
    const [a, b] = order;
    const halfA = seconds / 2;
    await phase(state, a, label, specs[label], halfA);
    row[b.name] = await phase(state, b, label, specs[label], seconds);
    row[a.name] = await phase(state, a, label, specs[label], halfA, { warmup: false });
    row.order = `${a.name} ${halfA} s, ${b.name} ${seconds} s, ${a.name} ${halfA} s`;
  }
  if (row.service && row.floor?.rps > 0)
    row.ratio = Math.round((row.service.rps / row.floor.rps) * 1000) / 1000;
  measured[label] = row;
}

/**
 * Throughput and latency of a scenario on the service against another scenario of the service,
 * ABBA on one server: half its time before the other's measurement (`half` 1, with a warm-up),
 * half after it (`half` 2), so drift over the run weighs on both alike. The row is written after
 * the second half. Skipped when the scenario's answers were wrong.
 */
export async function aroundOther(state, label, seconds, half, other) {
  const { settings, specs, verified, service } = state;
  if (!verified[label]) return;
  const run = await phase(state, service, label, specs[label], seconds / 2, {
    warmup: half === 1,
  });
  if (half === 1) return;
  state.results.scenarios[label] = {
    connections: settings.connections,
    seconds,
    order: `service ${seconds / 2} s, ${other} on the service, service ${seconds / 2} s`,
    service: run,
  };
}

/**
 * Database commands per request: a sequential run of `amount` requests through the counting proxy.
 */
async function countCommands(state, target, label, spec, amount) {
  const counter = target.proxy.counter;
  const extra = await specFor(state, spec);
  await settle(state, 1_000);
  counter.reset();
  counter.detail(true);
  const run = await state.load.run({
    url: `${target.url}/graphql`,
    connections: 1,
    amount,
    label: `${label} count @${target.name}`,
    ...spec,
    ...extra,
  });
  const snapshot = counter.snapshot();
  const captured = counter.captured;
  counter.detail(false);
  counter.reset();
  const per = (v) => Math.round((v / run.requests) * 1000) / 1000;
  const dbMs = per(Object.values(snapshot.msByLabel).reduce((sum, v) => sum + v, 0));
  const result = {
    requests: run.requests,
    errors: run.errors,
    perRequest: per(snapshot.total),
    byCommand: Object.fromEntries(Object.entries(snapshot.byLabel).map(([k, v]) => [k, per(v)])),
    // One request at a time: where its time goes. dbMs is the database's answer time (proxy to
    // engine and back), the rest is the server's own work (and the HTTP round trip).
    sequential: {
      meanMs: run.latencyMs.mean,
      p50Ms: run.latencyMs.p50,
      dbMs,
      outsideDbMs: Math.round((run.latencyMs.mean - dbMs) * 1000) / 1000,
      dbMsByCommand: Object.fromEntries(
        Object.entries(snapshot.msByLabel).map(([k, v]) => [k, per(v)]),
      ),
    },
  };
  log(
    `commands ${label.padEnd(24)} ${target.name.padEnd(7)} ${result.perRequest}/request  ${JSON.stringify(result.byCommand)}  ` +
      `sequential: ${result.sequential.meanMs} ms/request, ${dbMs} ms in the database${run.errors ? `  ERRORS ${run.errors}: ${JSON.stringify(run.errorSamples).slice(0, 500)}` : ''}`,
  );
  return { ...result, captured };
}

/** Commands per request of a scenario, one request at a time, on each of `targets`. */
export async function countBoth(state, label, amount, targets = [state.service, state.floor]) {
  if (!state.verified[label]) return;
  for (const target of targets)
    state.counted[target.name][label] = await countCommands(
      state,
      target,
      label,
      state.specs[label],
      amount,
    );
}

/** results.commands from the counts: per server and scenario, and the agents' conditional update. */
export function recordCommands({ results, counted, service, floor }) {
  // The agents' conditional update, as each process sent it.
  const updates = {};
  for (const target of [service, floor]) {
    const fam = counted[target.name].updateAiManagedState?.captured.find(
      (c) => c.findAndModify || c.findandmodify,
    );
    updates[target.name] = fam
      ? {
          query: Object.keys(fam.query ?? fam.updates?.[0]?.q ?? {}),
          update: Object.fromEntries(
            Object.entries(fam.update ?? fam.updates?.[0]?.u ?? {}).map(([op, v]) => [
              op,
              Object.keys(v),
            ]),
          ),
        }
      : null;
  }
  results.commands.conditionalUpdate = updates;
  for (const [name, byScenario] of Object.entries(counted)) {
    results.commands[name] = Object.fromEntries(
      Object.entries(byScenario).map(([k, { captured: _c, ...rest }]) => [k, rest]),
    );
  }
}
