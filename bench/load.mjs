// The load generator: a child of bench/run.mjs (fork, IPC), so the load never shares an event
// loop with the process that supervises the run. One autocannon run per message:
//   parent -> { id, spec }    child -> { id, result } | { id, error }
//
// spec: { url, connections, duration (s) | amount, token, kind, ...kind options, label, series? }
//   series: runs with the same series name are merged (pooled latencies, summed requests and time)
//   and the answer describes all of them: one scenario on one server measured in several rounds;
//   its `rounds` keep each run's own throughput, latency and errors.
//   kind 'static'  { body }                       the same request every time
//   kind 'cycle'   { bodies }                     round robin over bodies (managedWallets pages)
//   kind 'write'   { query, pool: [{id, version}] } updateAiManagedState: every request takes the
//                  wallet at the head of a FIFO with the version it last saw and puts it back at the
//                  tail with the version the server answered, so a wallet is in flight at most once
//                  and its expectedVersion is always current (pool >> connections)
//   kind 'batch'   { query, pool, size }          updateAiManagedStates: like 'write', `size` wallets
//                  from the head of the FIFO per request, each back at the tail with the version
//                  its outcome answered (a wallet whose write failed is left out)
//   kind 'mix'     { parts: [spec...] }           round robin over the parts' requests
//   check: { type: 'definitions'|'userWallets'|'write'|'batch'|'managed'|'changes', count } validates sampled bodies
//
// Every response is checked: non-2xx, or a body with a top-level "errors" key, is an error. The
// first responses and then every 50th are parsed and validated against the expected data.
// Latency is taken from autocannon's per-response timings (float ms), not its integer histogram.

import autocannon from 'autocannon';

const SAMPLE_FIRST = 5;
const SAMPLE_EVERY = 50;
const MAX_ERROR_SAMPLES = 5;

function percentile(sorted, p) {
  if (sorted.length === 0) return null;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank];
}

function validator(check) {
  if (!check) return () => null;
  switch (check.type) {
    case 'definitions':
      return (json) => {
        const list = json?.data?.walletDefinitions;
        if (!Array.isArray(list) || list.length !== check.count)
          return `expected ${check.count} definitions, got ${list?.length}`;
        return list.every((d) => typeof d.slug === 'string' && d.features?.leverage)
          ? null
          : 'a definition is incomplete';
      };
    case 'userWallets':
      return (json) => {
        const list = json?.data?.userWallets;
        if (!Array.isArray(list) || list.length !== check.count)
          return `expected ${check.count} wallets, got ${list?.length}`;
        const ok = list.every(
          (w) =>
            w.definition?.slug &&
            w.credential?.definition?.slug === w.definition.slug &&
            w.aiManagedState &&
            w.userLimits,
        );
        return ok ? null : 'a wallet lacks its definition, credential or state';
      };
    case 'write':
      return (json, context) => {
        const w = json?.data?.updateAiManagedState;
        if (!w) return 'no updateAiManagedState in the answer';
        if (
          context.wallet &&
          (w.id !== context.wallet.id || w.version !== context.sentVersion + 1)
        ) {
          return `wallet ${w.id} answered version ${w.version}, expected ${context.sentVersion + 1}`;
        }
        return w.aiManagedState?.currentRisk === context.input?.currentRisk
          ? null
          : 'the written state is not in the answer';
      };
    case 'batch':
      return (json, context) => {
        const outcomes = json?.data?.updateAiManagedStates;
        if (!Array.isArray(outcomes) || outcomes.length !== context.wallets.length)
          return `expected ${context.wallets.length} outcomes, got ${outcomes?.length}`;
        for (let i = 0; i < outcomes.length; i++) {
          const { wallet, error } = outcomes[i];
          if (error) return `write ${i} failed: ${error.code} ${error.message}`;
          if (
            wallet?.id !== context.wallets[i].id ||
            wallet.version !== context.sentVersions[i] + 1
          )
            return `write ${i}: wallet ${wallet?.id} answered version ${wallet?.version}, expected ${context.sentVersions[i] + 1}`;
          if (wallet.aiManagedState?.currentRisk !== context.inputs[i].currentRisk)
            return `write ${i}: the written state is not in the answer`;
        }
        return null;
      };
    case 'managed':
    case 'changes':
      return (json) => {
        const page =
          check.type === 'managed' ? json?.data?.managedWallets : json?.data?.managedWalletChanges;
        if (!page || !Array.isArray(page.edges)) return 'no managedWallets page';
        if (page.edges.length === 0 || page.edges.length > check.count)
          return `page of ${page.edges.length} wallets`;
        return page.edges.every((e) => e.node?.id && e.cursor) ? null : 'an edge is incomplete';
      };
    default:
      throw new Error(`unknown check ${check.type}`);
  }
}

/** The n-th agent write: inside every write-pool wallet's limits (no automatic pause). */
function writeInput(n) {
  return {
    currentRisk: 100 + (n % 997) * 10,
    currentMaxPositionSize: 200 + (n % 89) * 50,
    currentLeverage: 1 + (n % 3),
    riskScore: n % 101,
    marketSentiment: ['BULLISH', 'BEARISH', 'NEUTRAL', 'UNCERTAIN'][n % 4],
    confidenceLevel: (n * 7) % 101,
  };
}

/** A request source: next(context) -> body, and done(context, status, body) after its response. */
function sourceFor(spec, stats) {
  const headers = {
    'content-type': 'application/json',
    ...(spec.token ? { authorization: `Bearer ${spec.token}` } : {}),
  };
  const validate = validator(spec.check);
  let seen = 0;
  const inspect = (context, status, body) => {
    seen++;
    stats.responses++;
    let error = null;
    if (status < 200 || status >= 300) {
      stats.non2xx++;
      error = `HTTP ${status}`;
    } else if (body.startsWith('{"errors"') || body.includes(',"errors":')) {
      stats.graphqlErrors++;
      error = 'GraphQL errors';
    } else if (
      seen <= SAMPLE_FIRST ||
      seen % SAMPLE_EVERY === 0 ||
      spec.kind === 'write' ||
      spec.kind === 'batch'
    ) {
      // Writes are always parsed: the next expectedVersion comes from the answer.
      let json;
      try {
        json = JSON.parse(body);
      } catch {
        json = undefined;
      }
      if (spec.kind === 'write') context.answer = json?.data?.updateAiManagedState;
      if (spec.kind === 'batch') context.outcomes = json?.data?.updateAiManagedStates;
      if (seen <= SAMPLE_FIRST || seen % SAMPLE_EVERY === 0) {
        stats.validated++;
        const problem = validate(json, context);
        if (problem) {
          stats.invalid++;
          error = `invalid answer: ${problem}`;
        }
      }
    }
    if (error && stats.errorSamples.length < MAX_ERROR_SAMPLES) {
      stats.errorSamples.push({ label: spec.label, error, status, body: body.slice(0, 600) });
    }
    return error;
  };

  switch (spec.kind) {
    case 'static':
      return { headers, next: () => spec.body, done: inspect };
    case 'cycle': {
      let i = 0;
      return { headers, next: () => spec.bodies[i++ % spec.bodies.length], done: inspect };
    }
    case 'write': {
      const queue = spec.pool.map((w) => ({ id: w.id, version: w.version }));
      let head = 0;
      let n = 0;
      return {
        headers,
        next: (context) => {
          if (head >= queue.length)
            throw new Error('the write pool ran dry: more connections than wallets?');
          const wallet = queue[head++];
          if (head > 4096 && head * 2 > queue.length) {
            queue.splice(0, head);
            head = 0;
          }
          const input = writeInput(++n);
          context.wallet = wallet;
          context.sentVersion = wallet.version;
          context.input = input;
          return JSON.stringify({
            query: spec.query,
            variables: { walletId: wallet.id, expectedVersion: wallet.version, input },
          });
        },
        done: (context, status, body) => {
          const error = inspect(context, status, body);
          // An answered write moves the wallet to the tail with its new version; a failed one is
          // left out (its version is no longer known), so one failure cannot cascade into more.
          if (!error && context.answer && context.wallet) {
            context.wallet.version = context.answer.version;
            queue.push(context.wallet);
          }
        },
        remaining: () => queue.slice(head),
      };
    }
    case 'batch': {
      const queue = spec.pool.map((w) => ({ id: w.id, version: w.version }));
      let head = 0;
      let n = 0;
      return {
        headers,
        next: (context) => {
          if (queue.length - head < spec.size)
            throw new Error('the write pool ran dry: more connections x batch size than wallets?');
          const wallets = queue.slice(head, head + spec.size);
          head += spec.size;
          if (head > 4096 && head * 2 > queue.length) {
            queue.splice(0, head);
            head = 0;
          }
          const inputs = wallets.map(() => writeInput(++n));
          context.wallets = wallets;
          context.sentVersions = wallets.map((w) => w.version);
          context.inputs = inputs;
          context.outcomes = undefined;
          return JSON.stringify({
            query: spec.query,
            variables: {
              updates: wallets.map((w, i) => ({
                walletId: w.id,
                expectedVersion: w.version,
                input: inputs[i],
              })),
            },
          });
        },
        done: (context, status, body) => {
          inspect(context, status, body);
          // Each wallet whose write landed goes back to the tail with the version it answered.
          (context.outcomes ?? []).forEach((outcome, i) => {
            const wallet = context.wallets[i];
            if (outcome?.wallet && !outcome.error && outcome.wallet.id === wallet.id) {
              wallet.version = outcome.wallet.version;
              queue.push(wallet);
            }
          });
        },
        remaining: () => queue.slice(head),
      };
    }
    case 'mix': {
      const parts = spec.parts.map((part) =>
        sourceFor({ ...part, label: `${spec.label}/${part.label}` }, stats),
      );
      let i = 0;
      return {
        headers,
        next: (context) => {
          const part = parts[i++ % parts.length];
          context.part = part;
          context.headers = part.headers;
          return part.next(context);
        },
        done: (context, status, body) => context.part.done(context, status, body),
      };
    }
    default:
      throw new Error(`unknown kind ${spec.kind}`);
  }
}

async function run(spec) {
  const stats = {
    responses: 0,
    non2xx: 0,
    graphqlErrors: 0,
    invalid: 0,
    validated: 0,
    errorSamples: [],
  };
  const source = sourceFor(spec, stats);
  const latencies = [];
  const url = new URL(spec.url);

  const options = {
    url: url.origin,
    connections: spec.connections,
    pipelining: 1,
    timeout: spec.timeoutSeconds ?? 20,
    ...(spec.amount ? { amount: spec.amount } : { duration: spec.duration }),
    requests: [
      {
        method: 'POST',
        path: url.pathname,
        setupRequest: (req, context) => {
          const body = source.next(context);
          return {
            ...req,
            headers: { ...req.headers, ...(context.headers ?? source.headers) },
            body,
          };
        },
        onResponse: (status, body, context) => source.done(context, status, body),
      },
    ],
  };

  const started = process.hrtime.bigint();
  const result = await new Promise((resolve, reject) => {
    const instance = autocannon(options, (error, res) => (error ? reject(error) : resolve(res)));
    instance.on('response', (_client, _status, _bytes, responseTime) =>
      latencies.push(responseTime),
    );
  });
  const elapsed = Number(process.hrtime.bigint() - started) / 1e9;
  const raw = {
    latencies,
    elapsed,
    responses: stats.responses,
    non2xx: stats.non2xx,
    graphqlErrors: stats.graphqlErrors,
    invalid: stats.invalid,
    validated: stats.validated,
    // autocannon's `errors` counts socket errors and timeouts alike.
    socketErrors: result.errors - result.timeouts,
    timeouts: result.timeouts,
    errorSamples: stats.errorSamples,
    rounds: [
      {
        durationS: round3(elapsed),
        requests: stats.responses,
        rps: Math.round((stats.responses / elapsed) * 10) / 10,
        ...roundLatency(latencies),
        errors: stats.non2xx + stats.graphqlErrors + stats.invalid + result.errors,
      },
    ],
  };
  // Runs of one series (one scenario on one server, measured in several rounds) are merged:
  // their latencies pooled, their requests over their summed time.
  let merged = raw;
  if (spec.series) {
    const before = series.get(spec.series);
    if (before) {
      merged = {
        latencies: before.latencies.concat(raw.latencies),
        elapsed: before.elapsed + raw.elapsed,
        errorSamples: before.errorSamples.concat(raw.errorSamples).slice(0, MAX_ERROR_SAMPLES),
        rounds: before.rounds.concat(raw.rounds),
        ...Object.fromEntries(
          [
            'responses',
            'non2xx',
            'graphqlErrors',
            'invalid',
            'validated',
            'socketErrors',
            'timeouts',
          ].map((k) => [k, before[k] + raw[k]]),
        ),
      };
    }
    series.set(spec.series, merged);
  }
  return {
    ...summarize(spec, merged),
    autocannon: {
      rpsAverage: result.requests.average,
      p50: result.latency.p50,
      p99: result.latency.p99,
    },
    ...(source.remaining ? { pool: source.remaining() } : {}),
  };
}

const series = new Map();

function summarize(spec, raw) {
  const sorted = [...raw.latencies].sort((a, b) => a - b);
  const mean = sorted.reduce((sum, v) => sum + v, 0) / (sorted.length || 1);
  return {
    label: spec.label,
    connections: spec.connections,
    durationS: Math.round(raw.elapsed * 100) / 100,
    requests: raw.responses,
    rps: Math.round((raw.responses / raw.elapsed) * 10) / 10,
    latencyMs: {
      p50: round3(percentile(sorted, 50)),
      p90: round3(percentile(sorted, 90)),
      p97_5: round3(percentile(sorted, 97.5)),
      p99: round3(percentile(sorted, 99)),
      max: round3(sorted.at(-1) ?? null),
      mean: round3(mean),
    },
    errors: raw.non2xx + raw.graphqlErrors + raw.invalid + raw.socketErrors + raw.timeouts,
    errorDetail: {
      non2xx: raw.non2xx,
      graphqlErrors: raw.graphqlErrors,
      invalidAnswers: raw.invalid,
      socketErrors: raw.socketErrors,
      timeouts: raw.timeouts,
    },
    validatedAnswers: raw.validated,
    errorSamples: raw.errorSamples,
    rounds: raw.rounds,
  };
}

/** A round's own latency (a series' answer pools its rounds'). */
function roundLatency(latencies) {
  const sorted = [...latencies].sort((a, b) => a - b);
  return { p50: round3(percentile(sorted, 50)), p99: round3(percentile(sorted, 99)) };
}

function round3(v) {
  return v == null ? null : Math.round(v * 1000) / 1000;
}

process.on('message', async ({ id, spec }) => {
  try {
    process.send({ id, result: await run(spec) });
  } catch (error) {
    process.send({ id, error: error.stack ?? String(error) });
  }
});
process.on('disconnect', () => process.exit(0));
