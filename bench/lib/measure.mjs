// Measuring: one-off checks of the answers, measured runs of a scenario on one server (with the
// CPU each process spent), service and floor alternating, and database commands per request.

import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
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
 * the same series (scenario and server, unless told) add up: the answer describes all of them so
 * far, and `round` this run alone. `cpuTailMs`: the CPU is read that long after the load stops
 * (work a request leaves behind, such as its live events, counts for it). `amount`: that many
 * requests, all answered, in place of `seconds` (a request still under way when a timed run stops
 * has cost CPU in it but is not counted, which weighs when requests take seconds).
 */
export async function phase(
  state,
  target,
  label,
  spec,
  seconds,
  { warmup = true, series = `${label} @${target.name}`, cpuTailMs = 0, amount } = {},
) {
  const { settings, load } = state;
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
  const run = await load.run({
    ...base,
    ...extra,
    ...(amount ? { amount } : { duration: seconds }),
    series,
  });
  if (cpuTailMs > 0) await sleep(cpuTailMs);
  const round = run.rounds.at(-1);
  const used = cpu.done(round.requests);
  if (target.child.exited) {
    const hint =
      target.child.exitCode === 0
        ? ' (code 0 is its graceful shutdown: something outside the bench sent it SIGTERM or SIGINT)'
        : '';
    throw new Error(
      `${target.name} exited (code ${target.child.exitCode}, signal ${target.child.exitSignal}) during ${label}${hint}:\n${tail(target.child.logFile)}`,
    );
  }
  log(
    `${label.padEnd(26)} ${target.name.padEnd(7)} ${String(round.rps).padStart(8)} req/s, ${used.round.serverMsPerRequest} CPU ms/req this round (${round.durationS} s)  all rounds: ${run.rps} req/s  p50 ${run.latencyMs.p50} ms  p99 ${run.latencyMs.p99} ms  ` +
      `errors ${run.errors}  CPU cores: ${target.name} ${used.serverCores}, database ${used.dbCores ?? '-'}, load ${used.loadCores}, proxies ${used.benchCores}, other ${used.otherCores}`,
  );
  if (run.errors) log(`  error samples: ${JSON.stringify(run.errorSamples).slice(0, 1_000)}`);
  const { round: ownCpu, ...allCpu } = used;
  return {
    ...summary(run),
    rounds: run.rounds,
    cpu: allCpu,
    round: {
      ...round,
      cpuMsPerRequest: ownCpu.serverMsPerRequest,
      dbCpuMsPerRequest: ownCpu.dbMsPerRequest,
      otherCores: ownCpu.otherCores,
    },
  };
}

// CPU time of the server under test, the database engine and the load generator over a run:
// with 2 cores shared by all three, it tells which one was the bottleneck, and the server's CPU
// per request is its cost independent of waiting. Summed over the rounds of a series; `round` is
// the run's own.
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
      const own = { seconds: (performance.now() - started) / 1000, requests, other: 0 };
      let ours = 0;
      for (const [k, pids] of Object.entries(groups)) {
        own[k] = cpuOf(pids) - before[k];
        ours += own[k];
      }
      own.other = Math.max(0, machineBusySeconds() - machineBefore - ours);
      const sum = cpuSeries.get(series) ?? {
        seconds: 0,
        requests: 0,
        server: 0,
        db: 0,
        load: 0,
        bench: 0,
        other: 0,
      };
      for (const k of Object.keys(sum)) sum[k] += own[k];
      cpuSeries.set(series, sum);
      const figures = (of) => {
        const cores = (v) => Math.round((v / of.seconds) * 100) / 100;
        const perRequest = (v) =>
          of.requests ? Math.round(((v * 1000) / of.requests) * 100) / 100 : null;
        return {
          serverCores: cores(of.server),
          dbCores: enginePids.length ? cores(of.db) : null,
          loadCores: cores(of.load),
          benchCores: cores(of.bench),
          otherCores: cores(of.other),
          serverMsPerRequest: perRequest(of.server),
          dbMsPerRequest: enginePids.length ? perRequest(of.db) : null,
        };
      };
      return { ...figures(sum), round: figures(own) };
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
 * The median of the rounds' figures (the lower middle of an even number); null when a round has
 * none (no requests answered in it), so a target on it fails rather than pass on fewer rounds.
 */
export function median(values) {
  if (values.length === 0 || values.some((v) => v == null)) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)];
}

export const ratio = (a, b) => (a != null && b ? Math.round((a / b) * 1000) / 1000 : null);

/**
 * Sides measured in turn, in three rounds (A B A B A B): drift in the machine or the database over
 * the run weighs on every side alike, and a target's ratio is the median of its three rounds'
 * ratios, so one disturbed round can't decide it. A side: { target, label, spec, amount?,
 * around? } (amount: requests a round, in place of roundSeconds; around(measure): what each of its
 * rounds runs inside, e.g. subscribers connected). `tag` keeps
 * these rounds' series apart from other measurements of the same label. Returns, per side, its
 * row over all its rounds (the phase's answer) with `rounds`, each round's own figures.
 */
export async function interleaved(state, sides, roundSeconds, { tag, cpuTailMs = 0 } = {}) {
  const rows = sides.map(() => ({ rounds: [] }));
  for (let r = 0; r < state.settings.rounds; r++) {
    for (const [i, side] of sides.entries()) {
      const measure = () =>
        phase(state, side.target, side.label, side.spec, roundSeconds, {
          warmup: r === 0,
          series: `${side.label} @${side.target.name}${tag ? ` (${tag})` : ''}`,
          cpuTailMs,
          amount: side.amount,
        });
      const run = side.around ? await side.around(measure) : await measure();
      rows[i] = { ...run, rounds: [...rows[i].rounds, run.round] };
    }
  }
  return rows;
}

/**
 * Throughput and latency of a scenario on one server, or on both in three interleaved rounds
 * (`order`'s first server first in each): row.ratio is the median of the rounds' service/floor
 * throughput, row.cpuRatio of their service/floor CPU per request. Skipped when the scenario's
 * answers were wrong.
 */
export async function pair(state, label, roundSeconds, order) {
  const { settings, specs, verified } = state;
  if (!verified[label]) return;
  const row = {
    connections: settings.connections,
    roundSeconds,
    order: order.map((t) => t.name).join(' -> '),
  };
  if (order.length === 1) {
    row[order[0].name] = await phase(state, order[0], label, specs[label], roundSeconds);
  } else {
    const runs = await interleaved(
      state,
      order.map((target) => ({ target, label, spec: specs[label] })),
      roundSeconds,
    );
    order.forEach((target, i) => (row[target.name] = runs[i]));
    row.order = `${settings.rounds} rounds of ${roundSeconds} s: ${order.map((t) => t.name).join(', ')}, ...`;
    row.rounds = row.service.rounds.map((s, i) => ({
      ratio: ratio(s.rps, row.floor.rounds[i].rps),
      cpuRatio: ratio(s.cpuMsPerRequest, row.floor.rounds[i].cpuMsPerRequest),
    }));
    row.ratio = median(row.rounds.map((r) => r.ratio));
    row.cpuRatio = median(row.rounds.map((r) => r.cpuRatio));
  }
  state.results.scenarios[label] = row;
}

/**
 * A scenario of the service against another scenario of the service, in three interleaved rounds
 * (the other first in each): results.scenarios[label] holds the scenario's row as `service`, the
 * other's as `against`, and each round's ratios (throughput, CPU per request) with their medians.
 * Skipped when either's answers were wrong.
 */
export async function againstOther(state, label, other, roundSeconds) {
  const { settings, specs, verified, service } = state;
  if (!verified[label] || !verified[other]) return;
  const [otherRow, row] = await interleaved(
    state,
    [
      { target: service, label: other, spec: specs[other] },
      { target: service, label, spec: specs[label] },
    ],
    roundSeconds,
    { tag: `beside ${label}` },
  );
  const rounds = row.rounds.map((r, i) => ({
    ratio: ratio(r.rps, otherRow.rounds[i].rps),
    cpuRatio: ratio(r.cpuMsPerRequest, otherRow.rounds[i].cpuMsPerRequest),
  }));
  state.results.scenarios[label] = {
    connections: settings.connections,
    roundSeconds,
    order: `${settings.rounds} rounds of ${roundSeconds} s on the service: ${other}, ${label}, ...`,
    service: row,
    against: { label: other, service: otherRow },
    rounds,
    ratio: median(rounds.map((r) => r.ratio)),
    cpuRatio: median(rounds.map((r) => r.cpuRatio)),
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

/**
 * results.commands from the counts: per server and scenario, and the agents' conditional update
 * with the share of the wallet writes that are the outbox's pulls (each write's second write of the
 * wallet, which takes its events out of the outbox once they are in the trail), both as each
 * process sent them in the commands kept of its first writes.
 */
export function recordCommands({ results, counted, service, floor }) {
  const updates = {};
  for (const target of [service, floor]) {
    const captured = counted[target.name].updateAiManagedState?.captured ?? [];
    const walletWrites = captured.filter(
      (c) => (c.findAndModify ?? c.findandmodify ?? c.update) === 'user_wallets',
    );
    const changeOf = (c) => (typeof c.update === 'string' ? c.updates?.[0]?.u : c.update) ?? {};
    const filterOf = (c) => (typeof c.update === 'string' ? c.updates?.[0]?.q : c.query) ?? {};
    const isPull = (c) => Object.keys(changeOf(c).$pull ?? {}).includes('pending_events');
    const fam = walletWrites.find((c) => !isPull(c));
    updates[target.name] = fam
      ? {
          query: Object.keys(filterOf(fam)),
          update: Object.fromEntries(
            Object.entries(changeOf(fam)).map(([op, v]) => [op, Object.keys(v)]),
          ),
          pullShare: walletWrites.filter(isPull).length / walletWrites.length,
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
