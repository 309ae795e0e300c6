// Tracing (issue 24): what OpenTelemetry costs a deployment that traces everything. The single
// write (updateAiManagedState's load) on two instances of the build of their own, started for this
// scenario and stopped after it: `untraced`, with the service's environment as is (no OTLP
// endpoint: tracing off, the SDK not even loaded), and `traced`, with every trace sampled and
// exported over OTLP/HTTP in protobuf to a sink in the bench process. The service's CPU per write
// on each, in three interleaved rounds (untraced, traced, ...) after a phase's writes through each
// to warm them up, each round's CPU read once its last spans are exported. Each instance reaches
// the run's database through a counting proxy of its own, as the run's service does: settle() then
// waits for a round's last writes to land before the next round's versions are read (without it, a
// round's first writes carried stale versions).
//
// The sink answers every export at once with 200 and an empty body (an empty protobuf message is
// an OTLP success), so the traced instance pays for its instrumentations, span processor, batching,
// encoding and sending, and nothing for a collector's slowness; the sink's own CPU is the bench
// process's. It counts what arrives by sender (the process at the other end of the connection), so
// the comparison can be trusted only when spans came, all of them from the traced instance.

import { readFileSync } from 'node:fs';
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import { startDbProxy } from '../db-proxy.mjs';
import { mongoUri } from '../lib/database.mjs';
import { errorsIn } from '../lib/judge.mjs';
import { interleaved, median, ratio, settle, specFor } from '../lib/measure.mjs';
import { log, stopChild, tail } from '../lib/processes.mjs';
import { tcpClientPid } from '../lib/procfs.mjs';
import { spawnService } from '../lib/servers.mjs';

const LABEL = 'tracing';
const WRITE = 'updateAiManagedState';
/** OTEL_BSP_SCHEDULE_DELAY: the longest finished spans wait in the traced instance for export. */
const SCHEDULE_DELAY_MS = 1_000;
/** A round's CPU is read this long after its load stops: its last spans exported count for it. */
const EXPORT_TAIL_MS = SCHEDULE_DELAY_MS + 500;

const zero = () => ({ requests: 0, bytes: 0 });

/**
 * The OTLP/HTTP sink on 127.0.0.1: every POST answered 200 with an empty body once read; requests
 * and bytes counted by sender (`senders`, name -> pid, filled in by the caller; `unknown` for any
 * other process), and what was sent where (method, path, content type).
 */
async function startSink() {
  const senders = {};
  const bySender = {};
  const kinds = {};
  const nameOf = (pid) =>
    Object.entries(senders).find(([, senderPid]) => senderPid === pid)?.[0] ?? 'unknown';
  const server = http.createServer((req, res) => {
    let bytes = 0;
    req.on('data', (chunk) => (bytes += chunk.length));
    req.on('end', () => {
      const kind = `${req.method} ${req.url} ${req.headers['content-type']}`;
      kinds[kind] = (kinds[kind] ?? 0) + 1;
      if (req.method !== 'POST') {
        res.writeHead(405).end();
        return;
      }
      // Looked up at its first request, when the sender's end of the connection surely exists.
      const socket = req.socket;
      socket.sender ??= nameOf(
        tcpClientPid(socket.remotePort, server.address().port, Object.values(senders)),
      );
      const from = (bySender[socket.sender] ??= zero());
      from.requests++;
      from.bytes += bytes;
      res.writeHead(200).end();
    });
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    senders,
    bySender,
    kinds,
    /** Requests and bytes from anyone so far. */
    total: () =>
      Object.values(bySender).reduce(
        (sum, s) => ({ requests: sum.requests + s.requests, bytes: sum.bytes + s.bytes }),
        zero(),
      ),
    close() {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(resolve));
    },
  };
}

/** Spans the traced instance dropped, its queue full (the SDK's warning, in its log). */
function droppedSpans(logFile) {
  const text = readFileSync(logFile, 'utf8');
  return [...text.matchAll(/Dropped (\d+) spans/g)].reduce((n, m) => n + Number(m[1]), 0);
}

/**
 * A phase's length of writes through a fresh instance, not measured, before the rounds and their
 * own warm-up: else the first round is still the instance's warm-up (1.4 to 2.3 times the CPU per
 * write of the next two, on both instances, in the first three runs).
 */
async function warmUp(state, instance) {
  const { settings, load } = state;
  const spec = state.specs[WRITE];
  await settle(state);
  await load.run({
    url: `${instance.url}/graphql`,
    connections: settings.connections,
    label: `${WRITE} @${instance.name} (${LABEL}) fresh warm-up`,
    ...spec,
    ...(await specFor(state, spec)),
    duration: settings.phaseSeconds,
  });
}

async function measure(state) {
  const { settings, specs, db, results } = state;
  if (!state.verified[WRITE]) return;
  const started = performance.now();
  const tracedEnv = {
    OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf',
    OTEL_TRACES_SAMPLER: 'always_on',
    OTEL_BSP_SCHEDULE_DELAY: String(SCHEDULE_DELAY_MS),
  };
  const record = { roundSeconds: settings.roundSeconds, tracedEnv };
  results.tracing = record;
  // BENCH_SERVICE_OTEL_* would reach both instances: `untraced` would not be.
  const preset = Object.keys(state.serviceEnv).filter((k) => k.startsWith('OTEL_'));
  if (preset.length) {
    record.notMeasured = `the service's environment sets ${preset.join(', ')}`;
    log(`tracing: not measured: ${record.notMeasured}`);
    return;
  }
  log(
    `tracing: ${WRITE} on an untraced and a traced instance (every trace sampled, OTLP http/protobuf to a sink here), ${settings.rounds} rounds of ${settings.roundSeconds} s each`,
  );
  const { host, port } = db.target;
  const proxies = [
    await startDbProxy({ host, port, name: 'untraced' }),
    await startDbProxy({ host, port, name: 'traced' }),
  ];
  const through = (proxy) => mongoUri(db.target, '127.0.0.1', proxy.port, 'directConnection=true');
  const sink = await startSink();
  let untraced;
  let traced;
  try {
    untraced = await spawnService(state, 'untraced', through(proxies[0]));
    sink.senders.untraced = untraced.child.proc.pid;
    traced = await spawnService(state, 'traced', through(proxies[1]), {
      OTEL_EXPORTER_OTLP_ENDPOINT: sink.url,
      ...tracedEnv,
    });
    sink.senders.traced = traced.child.proc.pid;

    // What reached the sink during each instance's rounds (its warm-up included).
    const during = { untraced: zero(), traced: zero() };
    const counted = (name) => async (measureRound) => {
      const before = sink.total();
      try {
        return await measureRound();
      } finally {
        const after = sink.total();
        during[name].requests += after.requests - before.requests;
        during[name].bytes += after.bytes - before.bytes;
      }
    };
    // The instance not under test counts as the bench's, as the run's service and floor do (else
    // its CPU would be the machine's `other`); settle() waits for their proxies too.
    const measuring = {
      ...state,
      serverPids: [...state.serverPids, untraced.child.proc.pid, traced.child.proc.pid],
      counters: [...state.counters, ...proxies.map((proxy) => proxy.counter)],
    };
    for (const instance of [untraced, traced]) await warmUp(measuring, instance);
    const [off, on] = await interleaved(
      measuring,
      [
        { target: untraced, label: WRITE, spec: specs[WRITE], around: counted('untraced') },
        { target: traced, label: WRITE, spec: specs[WRITE], around: counted('traced') },
      ],
      settings.roundSeconds,
      { tag: LABEL, cpuTailMs: EXPORT_TAIL_MS },
    );
    const rounds = on.rounds.map((r, i) => ({
      traced: r.cpuMsPerRequest,
      untraced: off.rounds[i].cpuMsPerRequest,
      ratio: ratio(r.cpuMsPerRequest, off.rounds[i].cpuMsPerRequest),
      tracedRps: r.rps,
      untracedRps: off.rounds[i].rps,
    }));
    Object.assign(record, {
      untraced: off,
      traced: on,
      rounds,
      ratio: median(rounds.map((r) => r.ratio)),
      sink: { during },
    });
  } finally {
    // The traced instance sends what it still holds as it stops: the sink closes after it.
    for (const instance of [untraced, traced]) if (instance) await stopChild(instance.child);
    await sink.close();
    for (const proxy of proxies) await proxy.close();
    record.sink = { ...record.sink, bySender: sink.bySender, kinds: sink.kinds };
    if (traced) record.droppedSpans = droppedSpans(traced.child.logFile);
    // LOG_LEVEL=warn: whatever the instances logged is worth a look.
    record.logged = Object.fromEntries(
      [untraced, traced].filter(Boolean).map(({ name, child }) => [name, tail(child.logFile, 5)]),
    );
    for (const [name, lines] of Object.entries(record.logged))
      if (lines) log(`  ${name} logged (last lines): ${lines.slice(0, 1_000)}`);
    record.seconds = Math.round((performance.now() - started) / 1000);
  }
  const [, detail] = spansExported(record);
  log(
    `tracing: the service's CPU per write ${record.ratio} x traced (rounds ${record.rounds.map((r) => r.ratio).join(', ')}); ${detail}; ${record.seconds} s in all`,
  );
}

/** What every export should be: OTLP/HTTP in protobuf, to the traces' path. */
const EXPORT = 'POST /v1/traces application/x-protobuf';

/**
 * [whether spans were exported in the traced rounds, all by the traced instance, each as EXPORT,
 * none dropped; the detail].
 */
function spansExported(record) {
  if (!record?.sink?.during) return [false, record?.notMeasured ?? 'not measured'];
  const { during, kinds } = record.sink;
  const bySender = { traced: zero(), untraced: zero(), unknown: zero(), ...record.sink.bySender };
  const kb = (v) => Math.round(v / 1024);
  const sent = Object.entries(kinds)
    .map(([kind, n]) => `${n} x ${kind}`)
    .join(', ');
  return [
    during.traced.requests > 0 &&
      during.traced.bytes > 0 &&
      bySender.untraced.requests === 0 &&
      bySender.unknown.requests === 0 &&
      Object.keys(kinds).every((kind) => kind === EXPORT) &&
      record.droppedSpans === 0,
    `the sink got ${during.traced.requests} exports, ${kb(during.traced.bytes)} KB in the traced instance's rounds (warm-up included), ${during.untraced.requests} (${kb(during.untraced.bytes)} KB) in the untraced one's, from the traced instance not under test (its background jobs, the end of its warm-up); by sender over the scenario: traced ${bySender.traced.requests}, untraced ${bySender.untraced.requests}, other processes ${bySender.unknown.requests}; ${sent}; spans dropped (queue full) ${record.droppedSpans}`,
  ];
}

export default {
  name: LABEL,
  // The single write's load spec, once its answers are right.
  uses: [WRITE],
  steps: { measure },
  targets: {
    cpu(state, { target }) {
      const { thresholds } = state;
      target(
        "tracing: the single write's service CPU with every trace sampled and exported at most 1.25 x with tracing off (median of 3 interleaved rounds)",
        [WRITE],
        () => {
          const record = state.results.tracing;
          if (!record?.rounds) return [false, record?.notMeasured ?? 'not measured'];
          const [spansCame] = spansExported(record);
          const { untraced, traced } = record;
          return [
            spansCame &&
              record.ratio !== null &&
              record.ratio <= thresholds.tracingCpuFactor &&
              errorsIn(untraced, traced) === 0,
            `${record.ratio} x (rounds ${record.rounds.map((r) => `${r.ratio}: ${r.traced} vs ${r.untraced} CPU ms/write`).join(', ')}); all rounds ${traced.cpu.serverMsPerRequest} vs ${untraced.cpu.serverMsPerRequest} CPU ms/write, ${traced.rps} vs ${untraced.rps} writes/s (rounds ${record.rounds.map((r) => `${r.tracedRps} vs ${r.untracedRps}`).join(', ')}); errors ${errorsIn(traced)} / ${errorsIn(untraced)}${spansCame ? '' : '; spans not exported as they should be (see the instrument target)'}`,
          ];
        },
      );
    },
    exported(state, { target }) {
      target(
        '(instrument) tracing: spans reached the sink in the traced rounds, all from the traced instance in protobuf, none dropped',
        [WRITE],
        () => spansExported(state.results.tracing),
      );
    },
  },
};
