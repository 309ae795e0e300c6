// 10,000 subscribers (issue 23): every one-wallet user of the seed signed in on one instance of
// the service, each keeping a graphql-ws subscription to its wallet's events (myWalletEvents), as
// a platform's frontends do, while agents write 100 writes/s over those wallets.
//
// Two instances of the build of their own on the run's database (straight to it, no counting
// proxy), started for this scenario and stopped after it, so the run's service and its RSS phase
// are left alone: `subscribed`, which the users connect to, and `second`, with no subscribers.
// The connections are opened once, from a child process (bench/subscribers.mjs), and kept through
// every round. In order:
//   1. a warm-up of writes through each instance, then a round through each before any socket is
//      open (their CPU per write then, figures: how far the two compare without subscribers);
//   2. `subscribed` idle before and after connecting them, 5 s each: its RSS (the median of
//      samples), the difference per socket; its CPU and the engine's (figures: what the open
//      sockets cost with nothing written);
//   3. a short round of writes through each instance, its latencies left out (the delivery
//      path's first events are its warm-up);
//   4. three rounds of each kind, interleaved: writes through `second` (its CPU per write is the
//      service's without subscribers; their events reach the subscribers across instances), then
//      through `subscribed` (its CPU per write with the 10,000 connected; its own writes' events).
//      A round's CPU runs from its first write until every event is in (or the drain gives up).
// Delivery: from a write's send to the first sight of its event on its wallet's subscriber, pooled
// per kind of round; every write of every round with subscribers counted for what is missed.

import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { ObjectId } from 'mongodb';
import { WRITE } from '../live.mjs';
import { check, gqlData, Q } from '../lib/graphql.mjs';
import { median, ratio, verify } from '../lib/measure.mjs';
import { log, stopChild, tail } from '../lib/processes.mjs';
import { cpuOf, machineBusySeconds, rssMB } from '../lib/procfs.mjs';
import { spawnService } from '../lib/servers.mjs';
import { userToken } from '../lib/service-code.mjs';
import { startSubscribers } from '../lib/workers.mjs';

const LABEL = 'userSubscriptions';
/** How long a round waits for its last events once its writes are answered. */
const DRAIN_MS = 10_000;
/** After connecting, before RSS is read: the last subscribes' work done. */
const SETTLE_MS = 3_000;
const IDLE_MS = 5_000;
/** Events never delivered looked into, at most, per kind of round. */
const PROBED = 10;

const round2 = (v) => Math.round(v * 100) / 100;

function percentile(sorted, q) {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

/**
 * Where some of the events never delivered are (a diagnosis, not a measurement): in the trail, with
 * how long after the write its copy reached it, or still in the wallet's outbox, or nowhere; and
 * whether a later write's event reached the wallet's subscriber (`probed`: wallet id -> whether),
 * which tells a lost event from a subscription that was not there.
 */
async function whereMissed(state, keys, probed) {
  const direct = state.db.direct;
  const found = [];
  for (const key of keys) {
    const [walletId, version] = key.split(':');
    const later = probed.has(walletId)
      ? `; a later write's event ${probed.get(walletId) ? 'reached' : 'did not reach'} its subscriber`
      : '';
    const wallet_id = new ObjectId(walletId);
    const event = await direct
      .collection('user_wallet_events')
      .findOne({ wallet_id, version: Number(version) });
    if (event) {
      const lag = event.recorded_at ? event.recorded_at - event.at : null;
      found.push(`${key} in the trail, recorded ${lag} ms after its write${later}`);
      continue;
    }
    const wallet = await direct
      .collection('user_wallets')
      .findOne({ _id: wallet_id, 'pending_events.version': Number(version) });
    found.push(
      `${key} ${wallet ? "still in its wallet's outbox" : 'in neither the trail nor the outbox'}${later}`,
    );
  }
  return found;
}

/** A one-wallet user's token answers its one wallet; an agent's write on a user-paused one lands. */
async function checkUsers(state) {
  const { service, config, fixtures, settings, tokens } = state;
  const users = fixtures.oneWalletUsers;
  check(
    users.length >= settings.userSubscribers,
    `${users.length} users of one wallet in the seed, ${settings.userSubscribers} wanted`,
  );
  // The tenth wallet past the write pool is user-paused in the seed's mix.
  const user = users[settings.writePool + 9];
  const mine = (await gqlData(service, Q.userWallets, undefined, userToken(config, user.user)))
    .userWallets;
  check(
    mine.length === 1 && mine[0].id === user.walletId && mine[0].status === 'USER_PAUSED',
    `a one-wallet user's userWallets: ${JSON.stringify(mine.map((w) => [w.id, w.status]))}`,
  );
  const written = (await gqlData(service, WRITE, { w: user.walletId, r: 7 }, tokens.agent))
    .updateAiManagedState;
  check(
    written.id === user.walletId && written.version === mine[0].version + 1,
    `an agent's write on it answered ${JSON.stringify(written)}`,
  );
  const trail = await state.db.direct
    .collection('user_wallet_events')
    .countDocuments({ wallet_id: new ObjectId(user.walletId), version: written.version });
  check(trail === 1, `${trail} events in the trail for the write`);
  return `${users.length} users of one wallet: a user's token answers its one wallet; an agent's write on a user-paused one lands (version +1, its event in the trail)`;
}

async function measure(state) {
  const { settings, config, fixtures, tokens, db, results } = state;
  if (!state.verified[LABEL]) return;
  const started = performance.now();
  const users = fixtures.oneWalletUsers.slice(0, settings.userSubscribers);
  const perSecond = settings.userSubscriptionWritesPerSecond;
  const record = {
    subscribers: users.length,
    writesPerSecond: perSecond,
    roundSeconds: settings.phaseSeconds,
  };
  results.userSubscriptions = record;
  log(
    `user subscriptions: ${users.length} users on one instance, ${perSecond} writes/s, ${settings.rounds} rounds of ${settings.phaseSeconds} s through each of two instances`,
  );
  const subscribed = await spawnService(state, 'subscribed', db.uri);
  const second = await spawnService(state, 'second', db.uri);
  const frontends = startSubscribers();
  const instances = { subscribed, second };
  const alive = (during) => {
    for (const instance of Object.values(instances)) {
      const child = instance.child;
      if (child.exited)
        throw new Error(
          `${instance.name} exited (code ${child.exitCode}, signal ${child.exitSignal}) during ${during}:\n${tail(child.logFile)}`,
        );
    }
  };

  // CPU seconds so far of everything that runs during a round; `other`: the rest of the machine.
  const groups = {
    subscribed: [subscribed.child.proc.pid],
    second: [second.child.proc.pid],
    engine: db.enginePids,
    frontends: [frontends.pid],
    bench: [process.pid, ...state.serverPids, state.load.pid],
  };
  const cpuNow = () => ({
    at: performance.now(),
    machine: machineBusySeconds(),
    ...Object.fromEntries(Object.entries(groups).map(([k, pids]) => [k, cpuOf(pids)])),
  });
  const cpuSince = (before) => {
    const now = cpuNow();
    const used = Object.fromEntries(Object.keys(groups).map((k) => [k, now[k] - before[k]]));
    const ours = Object.values(used).reduce((sum, v) => sum + v, 0);
    used.other = Math.max(0, now.machine - before.machine - ours);
    return { seconds: (now.at - before.at) / 1000, used };
  };

  // Each round's writes on the next wallets, round after round: a wallet is written again only
  // once all 10,000 have been.
  let cursor = 0;
  const nextWallets = (count) =>
    Array.from({ length: count }, () => users[cursor++ % users.length].walletId);
  const latencies = { subscribed: [], second: [] };
  const writeRound = async (
    through,
    { delivered, warmup = false, seconds = settings.phaseSeconds },
  ) => {
    const before = cpuNow();
    const { latencies: own, ...outcome } = await frontends.run({
      cmd: 'round',
      url: through.url,
      token: tokens.agent,
      walletIds: nextWallets(Math.round(perSecond * seconds)),
      perSecond,
      seconds,
      drainMs: DRAIN_MS,
      delivered,
      tag: warmup ? `${through.name} warm-up` : through.name,
    });
    const { seconds: windowS, used } = cpuSince(before);
    alive(`a round through ${through.name}`);
    if (delivered && !warmup) latencies[through.name].push(...own);
    const sorted = own.sort((a, b) => a - b);
    const cores = Object.fromEntries(
      Object.entries(used).map(([k, v]) => [k, round2(v / windowS)]),
    );
    const run = {
      through: through.name,
      ...outcome,
      windowS: round2(windowS),
      cpuMsPerWrite: outcome.writes ? round2((used[through.name] * 1000) / outcome.writes) : null,
      cores,
      ...(delivered ? { p50Ms: percentile(sorted, 0.5), p99Ms: percentile(sorted, 0.99) } : {}),
    };
    log(
      `  ${seconds} s through ${through.name}: ${run.writes} writes (${run.writesPerSecond}/s), ${run.cpuMsPerWrite} CPU ms/write${delivered ? `, p50 ${run.p50Ms} ms, p99 ${run.p99Ms} ms, ${run.undelivered} not in by its end` : ''}; errors: writes ${run.writeErrors}, subscribers ${run.errors}, closed ${run.closed}, foreign ${run.foreign}; cores ${JSON.stringify(cores)}`,
    );
    if (run.writeErrorSamples.length || run.samples.length)
      log(
        `  samples: ${JSON.stringify([...run.writeErrorSamples, ...run.samples]).slice(0, 1_000)}`,
      );
    return run;
  };

  let connected = false;
  try {
    await writeRound(subscribed, { delivered: false, seconds: settings.warmupSeconds });
    await writeRound(second, { delivered: false, seconds: settings.warmupSeconds });
    record.before = {};
    for (const instance of [subscribed, second]) {
      const { writes, cpuMsPerWrite } = await writeRound(instance, { delivered: false });
      record.before[instance.name] = { writes, cpuMsPerWrite };
    }

    // Nothing written: RSS (the median of samples, as it saw-tooths with garbage collection) and
    // the cores `subscribed` and the engine use.
    const idle = async () => {
      const samples = [];
      const before = cpuNow();
      const end = performance.now() + IDLE_MS;
      while (performance.now() < end) {
        samples.push(rssMB(subscribed.child.proc.pid));
        await sleep(250);
      }
      const { seconds, used } = cpuSince(before);
      return {
        rssMB: median(samples),
        cores: round2(used.subscribed / seconds),
        engineCores: round2(used.engine / seconds),
      };
    };
    record.idle = { before: await idle() };
    const signed = users.map(({ user, walletId }) => ({
      token: userToken(config, user),
      walletId,
    }));
    const cpuBefore = cpuNow();
    connected = true;
    const connect = await frontends.run({
      cmd: 'connect',
      url: `${subscribed.url.replace(/^http/, 'ws')}/graphql`,
      users: signed,
      concurrency: settings.userSubscriptionConnecting,
    });
    const connectCpu = cpuSince(cpuBefore).used.subscribed;
    alive('connecting');
    record.connect = {
      ...connect,
      cpuMsPerConnection: connect.connected
        ? round2((connectCpu * 1000) / connect.connected)
        : null,
    };
    log(
      `  connected ${connect.connected} of ${users.length} in ${connect.seconds} s (${record.connect.cpuMsPerConnection} CPU ms each)${connect.failed ? `; ${connect.failed} failed: ${connect.failures.join('; ')}` : ''}`,
    );
    await sleep(SETTLE_MS);
    record.idle.after = await idle();
    const { before: quiet, after: open } = record.idle;
    record.rss = {
      beforeMB: quiet.rssMB,
      afterMB: open.rssMB,
      kbPerSocket: connect.connected
        ? Math.round(((open.rssMB - quiet.rssMB) * 1024) / connect.connected)
        : null,
    };
    log(
      `  RSS ${quiet.rssMB} -> ${open.rssMB} MB (${record.rss.kbPerSocket} KB a socket); idle before and after: ${quiet.cores} -> ${open.cores} cores, the engine ${quiet.engineCores} -> ${open.engineCores}`,
    );

    const seconds = settings.warmupSeconds;
    record.warmup = [
      await writeRound(second, { delivered: true, warmup: true, seconds }),
      await writeRound(subscribed, { delivered: true, warmup: true, seconds }),
    ];
    record.rounds = [];
    for (let r = 0; r < settings.rounds; r++) {
      record.rounds.push(await writeRound(second, { delivered: true }));
      record.rounds.push(await writeRound(subscribed, { delivered: true }));
    }
    // Events not in by their round's end: late (their latency counts), or never delivered.
    const late = await frontends.run({ cmd: 'late', drainMs: DRAIN_MS });
    // Per kind of round (its warm-up's last), the events never delivered that are looked into.
    const missing = (name) =>
      [name, `${name} warm-up`].flatMap((tag) => late[tag]?.missing ?? []).slice(0, PROBED);
    // A write on each of their wallets, through `subscribed`: whether their subscribers still get
    // events (a diagnosis; not counted).
    const probed = new Map();
    const walletIds = [
      ...new Set(
        ['subscribed', 'second'].flatMap((name) => missing(name).map((key) => key.split(':')[0])),
      ),
    ];
    if (walletIds.length) {
      const probe = await frontends.run({
        cmd: 'round',
        url: subscribed.url,
        token: tokens.agent,
        walletIds,
        perSecond: 10,
        seconds: walletIds.length / 10,
        drainMs: DRAIN_MS,
        delivered: true,
        tag: 'probe',
      });
      const lost = new Set(probe.undeliveredKeys.map((key) => key.split(':')[0]));
      if (probe.writeErrors === 0) for (const id of walletIds) probed.set(id, !lost.has(id));
    }
    const of = (name) => record.rounds.filter((run) => run.through === name);
    const delivered = [...record.warmup, ...record.rounds];
    const pooled = async (name) => {
      const sorted = [...latencies[name], ...(late[name]?.latencies ?? [])].sort((a, b) => a - b);
      const runs = delivered.filter((run) => run.through === name);
      const sum = (k) => runs.reduce((n, run) => n + run[k], 0);
      const tags = [name, `${name} warm-up`];
      return {
        // Latency from the measured rounds; what was missed from the warm-up's writes too.
        timed: sorted.length,
        writes: sum('writes'),
        writeErrors: sum('writeErrors'),
        late: tags.reduce((n, tag) => n + (late[tag]?.latencies.length ?? 0), 0),
        missed: tags.reduce((n, tag) => n + (late[tag]?.missing.length ?? 0), 0),
        missedWhere: await whereMissed(state, missing(name), probed),
        slowestPace: Math.min(...of(name).map((run) => run.writesPerSecond)),
        p50Ms: percentile(sorted, 0.5),
        p99Ms: percentile(sorted, 0.99),
        maxMs: sorted.at(-1) ?? null,
      };
    };
    record.sameInstance = await pooled('subscribed');
    record.secondInstance = await pooled('second');
    const cpuRounds = of('subscribed').map((run, i) => ({
      withThem: run.cpuMsPerWrite,
      without: of('second')[i].cpuMsPerWrite,
      ratio: ratio(run.cpuMsPerWrite, of('second')[i].cpuMsPerWrite),
    }));
    record.cpu = { rounds: cpuRounds, ratio: median(cpuRounds.map((r) => r.ratio)) };
    const sum = (k) => delivered.reduce((n, run) => n + run[k], 0);
    record.trouble = {
      errors: sum('errors'),
      closed: sum('closed'),
      foreign: sum('foreign'),
      // Open at the end of every round, of those connected.
      allOpen: delivered.every((run) => run.open === connect.connected),
      samples: delivered.flatMap((run) => run.samples).slice(0, 5),
    };
  } finally {
    if (connected) record.close = await frontends.run({ cmd: 'close' }).catch(String);
    await stopChild(subscribed.child);
    await stopChild(second.child);
    await frontends.stop();
    // LOG_LEVEL=warn: whatever the instances logged is worth a look.
    record.logged = Object.fromEntries(
      Object.values(instances).map(({ name, child }) => [name, tail(child.logFile, 5)]),
    );
    for (const [name, lines] of Object.entries(record.logged))
      if (lines) log(`  ${name} logged (last lines): ${lines.slice(0, 1_000)}`);
    record.seconds = Math.round((performance.now() - started) / 1000);
  }
  log(
    `user subscriptions: through the same instance p99 ${record.sameInstance.p99Ms} ms, through a second p99 ${record.secondInstance.p99Ms} ms; missed ${record.sameInstance.missed} + ${record.secondInstance.missed}; CPU per write ${record.cpu.ratio} x (rounds ${record.cpu.rounds.map((r) => r.ratio).join(', ')}); ${record.seconds} s in all`,
  );
}

/** Every user connected, and nothing went wrong on a connection in any round. */
function healthy(record) {
  return (
    record.connect?.connected === record.subscribers &&
    record.trouble?.errors === 0 &&
    record.trouble.closed === 0 &&
    record.trouble.foreign === 0 &&
    record.trouble.allOpen
  );
}

function connections(record) {
  const trouble = record.trouble ?? {};
  return `${record.connect?.connected} of ${record.subscribers} connected; on them ${trouble.errors} errors, ${trouble.closed} closed, ${trouble.foreign} events of another wallet${trouble.samples?.length ? ` (${trouble.samples.join('; ')})` : ''}`;
}

function deliveryTarget(state, t, kind, through, limitMs) {
  const record = state.results.userSubscriptions;
  const d = record?.[kind];
  t(
    `${state.settings.userSubscribers} user subscriptions on one instance, ${state.settings.userSubscriptionWritesPerSecond} writes/s through ${through}: p99 write to delivery under ${limitMs} ms, none missed`,
    d &&
      healthy(record) &&
      d.p99Ms !== null &&
      d.p99Ms < limitMs &&
      d.missed === 0 &&
      d.writeErrors === 0,
    d
      ? `p50 ${d.p50Ms} ms, p99 ${d.p99Ms} ms, max ${d.maxMs} ms (${d.timed} deliveries in ${state.settings.rounds} rounds, the slowest at ${d.slowestPace} writes/s); ${d.missed} of ${d.writes} writes missed (warm-up included${d.missed ? `: ${d.missedWhere.join('; ')}` : ''}), ${d.late} came after their round's ${DRAIN_MS / 1000} s drain, ${d.writeErrors} write errors; ${connections(record)}`
      : 'not measured',
  );
}

export default {
  name: LABEL,
  steps: {
    verify: (state) => verify(state, LABEL, () => checkUsers(state)),
    measure,
  },
  targets: {
    sameInstance(state, { t }) {
      deliveryTarget(
        state,
        t,
        'sameInstance',
        'the same instance',
        state.thresholds.subscriptionsSameInstanceP99Ms,
      );
    },
    secondInstance(state, { t }) {
      deliveryTarget(
        state,
        t,
        'secondInstance',
        'a second instance',
        state.thresholds.subscriptionsSecondInstanceP99Ms,
      );
    },
    cpuPerWrite(state, { t }) {
      const record = state.results.userSubscriptions;
      const cpu = record?.cpu;
      const writeErrors = record?.rounds?.reduce((n, run) => n + run.writeErrors, 0);
      t(
        `${state.settings.userSubscribers} user subscriptions: the service's CPU per write with them connected at most 1.3 x without subscribers (median of 3 rounds; without: a second instance of the build on the same database)`,
        cpu &&
          healthy(record) &&
          cpu.ratio !== null &&
          cpu.ratio <= state.thresholds.subscriptionsCpuFactor &&
          writeErrors === 0,
        cpu
          ? `${cpu.ratio} x (rounds ${cpu.rounds.map((r) => `${r.withThem} vs ${r.without} CPU ms/write`).join(', ')}); before any socket was open ${record.before.subscribed.cpuMsPerWrite} vs ${record.before.second.cpuMsPerWrite} CPU ms/write; idle ${record.idle.before.cores} cores before the sockets, ${record.idle.after.cores} with them (the engine ${record.idle.before.engineCores} -> ${record.idle.after.engineCores}); write errors ${writeErrors}`
          : 'not measured',
      );
    },
    rssPerSocket(state, { t }) {
      const record = state.results.userSubscriptions;
      const rss = record?.rss;
      t(
        `${state.settings.userSubscribers} user subscriptions: connecting them costs at most 64 KB of RSS each`,
        rss &&
          record.connect.connected === record.subscribers &&
          rss.kbPerSocket !== null &&
          rss.kbPerSocket <= state.thresholds.rssPerSocketKB,
        rss
          ? `${rss.kbPerSocket} KB a socket: ${rss.beforeMB} -> ${rss.afterMB} MB idle, before and after connecting ${record.connect.connected} (in ${record.connect.seconds} s, ${record.connect.cpuMsPerConnection} CPU ms each)`
          : 'not measured',
      );
    },
  },
};
