// Users' frontends for the 10,000-subscriber scenario (scenarios/userSubscriptions.mjs): a child of
// bench/run.mjs (fork, IPC, lib/workers.mjs) holding one graphql-ws connection per user, each
// subscribed to its user's wallet, and the agents' paced writes whose events they wait for. The
// connections are opened once and kept across the scenario's rounds: opened again for each round,
// 10,000 of them from one process would run out of ephemeral ports in TIME_WAIT. Writes go from
// here too, so a write's send and its event's sight are read off one clock.
//   { cmd: 'connect', url, users: [{ token, walletId }], concurrency } -> how many connected
//   { cmd: 'round', url, token, walletIds, perSecond, seconds, drainMs, delivered, tag } -> the round
//   { cmd: 'late', drainMs } -> of the rounds' writes whose events had not come by their round's
//     end, per tag: the latencies of those that came since, and the keys of those that never did
//   { cmd: 'close' } -> every connection closed by this side

import http from 'node:http';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import WebSocket from 'ws';
import { writePaced } from './live.mjs';

// A frontend's view of one wallet: only what the benchmark needs to match the event to its write.
const SUBSCRIPTION =
  'subscription Mine($w: ObjectID!) { myWalletEvents(walletId: $w) { id walletId version } }';
const MAX_SAMPLES = 5;

/** Open connections: { socket, walletId }. */
const connections = [];
/** `${walletId}:${version}` -> when its wallet's subscriber first saw it (at least once). */
const seen = new Map();
/** Writes whose event had not come when their round ended: key -> { sentAt, tag }. */
const outstanding = new Map();
/** Since the last round's answer: what went wrong on open connections. */
let trouble = freshTrouble();
let closing = false;

function freshTrouble() {
  // foreign: an event on a connection subscribed to another wallet.
  return { errors: 0, closed: 0, foreign: 0, samples: [] };
}

function note(kind, detail) {
  trouble[kind]++;
  if (trouble.samples.length < MAX_SAMPLES) trouble.samples.push(`${kind}: ${detail}`);
}

/** One user's connection: resolves once acknowledged and its subscription sent. */
function open(url, { token, walletId }) {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, 'graphql-transport-ws', { perMessageDeflate: false });
    let acknowledged = false;
    const send = (message) => socket.send(JSON.stringify(message));
    socket.on('open', () =>
      send({ type: 'connection_init', payload: { authorization: `Bearer ${token}` } }),
    );
    socket.on('message', (data) => {
      const message = JSON.parse(data);
      switch (message.type) {
        case 'connection_ack':
          acknowledged = true;
          send({
            id: '1',
            type: 'subscribe',
            payload: { query: SUBSCRIPTION, variables: { w: walletId } },
          });
          connections.push({ socket, walletId });
          resolve();
          break;
        case 'next': {
          if (message.payload.errors) note('errors', JSON.stringify(message.payload.errors));
          const event = message.payload.data?.myWalletEvents;
          if (!event) break;
          if (event.walletId !== walletId) {
            note('foreign', `${event.walletId} on ${walletId}'s connection`);
            break;
          }
          const key = `${event.walletId}:${event.version}`;
          if (!seen.has(key)) seen.set(key, performance.now());
          break;
        }
        case 'ping':
          send({ type: 'pong' });
          break;
        case 'pong':
          break;
        case 'error':
          note('errors', JSON.stringify(message.payload));
          break;
        case 'complete':
          note('errors', `the server completed ${walletId}'s subscription`);
          break;
        default:
          note('errors', `unexpected message ${String(data).slice(0, 200)}`);
      }
    });
    // An error is followed by a close: the close is what counts once acknowledged.
    socket.on('error', (error) => {
      if (!acknowledged) reject(error);
    });
    socket.on('close', (code, reason) => {
      if (!acknowledged) reject(new Error(`closed before its acknowledgement: ${code} ${reason}`));
      else if (!closing) note('closed', `${code} ${reason}`);
    });
  });
}

/** Every user's connection, at most `concurrency` handshakes at a time. */
async function connect({ url, users, concurrency }) {
  const started = performance.now();
  let next = 0;
  let failed = 0;
  const failures = [];
  const worker = async () => {
    while (next < users.length) {
      const user = users[next++];
      try {
        await open(url, user);
      } catch (error) {
        failed++;
        if (failures.length < MAX_SAMPLES) failures.push(String(error?.message ?? error));
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return {
    connected: connections.length,
    failed,
    failures,
    seconds: Math.round((performance.now() - started) / 100) / 10,
  };
}

/**
 * Agents' writes at `perSecond` (paced, each on the next of `walletIds`) for `seconds` through
 * `url`; then, when `delivered` (subscribers are connected), waits up to `drainMs` for every
 * write's event to reach its wallet's subscriber. Latency: from a write's send to that sight.
 */
async function round({ url, token, walletIds, perSecond, seconds, drainMs, delivered, tag }) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 32 });
  const { written, failures, writeSeconds } = await writePaced({
    agent,
    url,
    token,
    walletIds,
    perSecond,
    seconds,
  });
  agent.destroy();
  const deadline = performance.now() + drainMs;
  const allIn = () => [...written.keys()].every((key) => seen.has(key));
  if (delivered) while (!allIn() && performance.now() < deadline) await sleep(20);

  const latencies = [];
  const undeliveredKeys = [];
  for (const [key, sentAt] of written) {
    const at = seen.get(key);
    if (at !== undefined) latencies.push(Math.round((at - sentAt) * 10) / 10);
    else if (delivered) {
      undeliveredKeys.push(key);
      outstanding.set(key, { sentAt, tag });
    }
  }
  const problems = trouble;
  trouble = freshTrouble();
  return {
    writes: written.size,
    writeErrors: failures.length,
    writeErrorSamples: failures.slice(0, MAX_SAMPLES),
    writesPerSecond: Math.round((written.size / writeSeconds) * 10) / 10,
    latencies,
    // Not in by the round's end: `late` says which came after all.
    undelivered: delivered ? undeliveredKeys.length : null,
    undeliveredKeys: undeliveredKeys.slice(0, 100),
    open: connections.filter((c) => c.socket.readyState === WebSocket.OPEN).length,
    ...problems,
  };
}

/** Waits up to `drainMs` more for the events the rounds missed: late, or never delivered. */
async function late({ drainMs }) {
  const deadline = performance.now() + drainMs;
  const allIn = () => [...outstanding.keys()].every((key) => seen.has(key));
  while (!allIn() && performance.now() < deadline) await sleep(50);
  const byTag = {};
  for (const [key, { sentAt, tag }] of outstanding) {
    byTag[tag] ??= { latencies: [], missing: [] };
    const at = seen.get(key);
    if (at === undefined) byTag[tag].missing.push(key);
    else byTag[tag].latencies.push(Math.round((at - sentAt) * 10) / 10);
  }
  outstanding.clear();
  return byTag;
}

/** Closes every connection from this side (the server ends the TCP connection after it). */
async function close() {
  closing = true;
  const closed = connections.map(
    ({ socket }) =>
      new Promise((resolve) => {
        if (socket.readyState === WebSocket.CLOSED) return resolve();
        socket.once('close', resolve);
        socket.close(1000, 'done');
      }),
  );
  await Promise.race([Promise.all(closed), sleep(10_000)]);
  const left = connections.filter((c) => c.socket.readyState !== WebSocket.CLOSED).length;
  for (const { socket } of connections) socket.terminate();
  return { closed: connections.length - left, left };
}

const COMMANDS = { connect, round, late, close };

process.on('message', async ({ id, spec }) => {
  try {
    process.send({ id, result: await COMMANDS[spec.cmd](spec) });
  } catch (error) {
    process.send({ id, error: error.stack ?? String(error) });
  }
});
process.on('disconnect', () => process.exit(0));
