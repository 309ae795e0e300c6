// The live events scenario of `npm run bench` (issue 13): subscribers over graphql-ws while agents
// write. Run by bench/run.mjs against the service it started; not a benchmark of its own.
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

const SUBSCRIPTION =
  'subscription { managedWalletEvents(kinds: [AI_STATE_CHANGED]) { id walletId version } }';
/** An agent's write that changes one number of a wallet's AI state: one event, nothing else. */
export const WRITE =
  'mutation LiveWrite($w: ObjectID!, $r: Int!) { updateAiManagedState(walletId: $w, input: { riskScore: $r }) { id version } }';

/** `count` agents' subscriptions, each on its own connection, all acknowledged. */
export async function connectSubscribers(baseUrl, token, count) {
  const subscribers = [];
  for (let i = 0; i < count; i++) {
    const received = new Map();
    let ready;
    const acknowledged = new Promise((resolve, reject) => (ready = { resolve, reject }));
    const client = createClient({
      url: baseUrl.replace(/^http/, 'ws') + '/graphql',
      webSocketImpl: WebSocket,
      connectionParams: { authorization: `Bearer ${token}` },
      lazy: false,
      retryAttempts: 0,
      on: {
        connected: () => ready.resolve(),
        closed: (e) => ready.reject(new Error(`subscriber closed: ${e?.code} ${e?.reason}`)),
      },
    });
    const errors = [];
    client.subscribe(
      { query: SUBSCRIPTION },
      {
        next: ({ data, errors: e }) => {
          if (e) errors.push(...e);
          const event = data?.managedWalletEvents;
          // The first time this subscriber saw the event (at least once: repeats are allowed).
          if (event && !received.has(`${event.walletId}:${event.version}`))
            received.set(`${event.walletId}:${event.version}`, performance.now());
        },
        error: (e) => errors.push(e),
        complete: () => undefined,
      },
    );
    await acknowledged;
    subscribers.push({ client, received, errors });
  }
  // A subscription is live once the server has taken it: give the last ones a moment.
  await sleep(500);
  return subscribers;
}

export async function disconnectSubscribers(subscribers) {
  await Promise.all(subscribers.map((s) => s.client.dispose()));
}

/** POST /graphql of `baseUrl` on `agent`: { status, text }. */
export function post(agent, baseUrl, token, body) {
  return new Promise((resolve, reject) => {
    const request = http.request(
      `${baseUrl}/graphql`,
      {
        method: 'POST',
        agent,
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      },
      (response) => {
        let text = '';
        response.setEncoding('utf8');
        response.on('data', (chunk) => (text += chunk));
        response.on('end', () => resolve({ status: response.statusCode, text }));
      },
    );
    request.on('error', reject);
    request.end(body);
  });
}

/**
 * Agents write at `perSecond` (paced, each write on the next wallet of `walletIds`) for `seconds`
 * while `subscribers` listen; then waits up to `drainMs` for the last deliveries. Latency is from
 * the moment a write was sent to a subscriber's first sight of its event, over every (write,
 * subscriber).
 */
/**
 * Agents' writes at `perSecond`, paced, each on the next of `walletIds`, for `seconds` through
 * `url`, all answered before it returns: `written` maps `walletId:version` to when each was sent
 * (what its event is matched by), `failures` holds what was refused.
 */
export async function writePaced({ agent, url, token, walletIds, perSecond, seconds }) {
  const written = new Map();
  const failures = [];
  const inFlight = new Set();
  const started = performance.now();
  const total = Math.round(perSecond * seconds);
  for (let i = 0; i < total; i++) {
    const wait = started + (i * 1000) / perSecond - performance.now();
    if (wait > 0) await sleep(wait);
    const walletId = walletIds[i % walletIds.length];
    const body = JSON.stringify({ query: WRITE, variables: { w: walletId, r: i % 100 } });
    const sentAt = performance.now();
    const write = post(agent, url, token, body).then(
      ({ status, text }) => {
        const answer = JSON.parse(text);
        if (status !== 200 || answer.errors) failures.push(text.slice(0, 200));
        else written.set(`${walletId}:${answer.data.updateAiManagedState.version}`, sentAt);
      },
      (error) => failures.push(String(error)),
    );
    inFlight.add(write);
    void write.finally(() => inFlight.delete(write));
  }
  await Promise.all(inFlight);
  return { written, failures, writeSeconds: (performance.now() - started) / 1000 };
}

export async function measureDelivery({
  baseUrl,
  token,
  walletIds,
  subscribers,
  perSecond,
  seconds,
  drainMs = 10_000,
}) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 32 });
  const { written, failures, writeSeconds } = await writePaced({
    agent,
    url: baseUrl,
    token,
    walletIds,
    perSecond,
    seconds,
  });
  const deadline = performance.now() + drainMs;
  const allIn = () =>
    subscribers.every((s) => [...written.keys()].every((key) => s.received.has(key)));
  while (!allIn() && performance.now() < deadline) await sleep(100);
  agent.destroy();

  const latencies = [];
  let missed = 0;
  for (const s of subscribers) {
    for (const [key, at] of written) {
      const seen = s.received.get(key);
      if (seen === undefined) missed++;
      else latencies.push(seen - at);
    }
  }
  latencies.sort((a, b) => a - b);
  const at = (q) =>
    latencies.length
      ? Math.round(
          latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] * 10,
        ) / 10
      : null;
  return {
    subscribers: subscribers.length,
    writes: written.size,
    writeErrors: failures.length,
    writesPerSecond: Math.round((written.size / writeSeconds) * 10) / 10,
    deliveries: latencies.length,
    missed,
    subscriberErrors: subscribers.reduce((n, s) => n + s.errors.length, 0),
    p50Ms: at(0.5),
    p99Ms: at(0.99),
    maxMs: latencies.length ? Math.round(latencies[latencies.length - 1]) : null,
  };
}
