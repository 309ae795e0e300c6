#!/usr/bin/env node
// What one idle subscription costs the service: its RSS and heap before and after N connections,
// each a user of its own with one `myWalletEvents` subscription, and the CPU the service spends
// while they sit idle. Runs the built service (npm run build first) as a process of its own on the
// embedded engine (or MONGODB_URI), with users inserted straight into its database and tokens
// signed with its secret (no argon2 per user).
//
//   node scripts/live-memory.mjs [N=2000] [--connections-only]
//
// --connections-only: acknowledged connections with no subscription, to tell what a connection
// costs from what its subscription adds.
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { MongoClient, ObjectId } from 'mongodb';
import WebSocket from 'ws';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const DIST = join(ROOT, 'dist');
const N = Number(process.argv.slice(2).find((a) => /^\d+$/.test(a)) ?? 2000);
const SUBSCRIBE = !process.argv.includes('--connections-only');
const SETTLE_MS = 3_000;
const IDLE_MS = 10_000;
const QUERY = 'subscription { myWalletEvents { id walletId version kind after } }';

const { startEmbeddedEngine } = await import(join(DIST, 'db', 'embedded.js'));
const { signUserToken } = await import(join(DIST, 'modules', 'auth', 'jwt.js'));
const { parseConfig } = await import(join(DIST, 'core', 'config.js'));

const env = {
  NODE_ENV: 'production',
  PORT: '0',
  HOST: '127.0.0.1',
  JWT_SECRET: randomBytes(48).toString('base64'),
  // A Fernet key: 32 bytes in URL-safe base64.
  ENCRYPTION_KEY: randomBytes(32).toString('base64').replace(/\+/g, '-').replace(/\//g, '_'),
  ADMIN_EMAIL: 'admin@live-memory.test',
  ADMIN_PASSWORD: randomBytes(12).toString('hex'),
  LOG_LEVEL: 'warn',
};
const { config } = parseConfig(env);

// On disk, as `npm start` and the benchmark run the embedded engine.
const dataDir = process.env.MONGODB_URI ? null : mkdtempSync(join(tmpdir(), 'live-memory-'));
const engine = dataDir
  ? await startEmbeddedEngine({ dataDir, searchPath: process.env.PATH })
  : null;
/** The engine's process (a child of this one), when this script started it. */
const enginePid = engine
  ? execFileSync('ps', ['--ppid', String(process.pid), '-o', 'pid='], { encoding: 'utf8' })
      .split('\n')
      .map(Number)
      .find((pid) => pid > 0)
  : undefined;
const base = new URL(process.env.MONGODB_URI ?? engine.uri);
base.pathname = `/live_memory_${randomBytes(4).toString('hex')}`;
env.MONGODB_URI = base.toString();

const mongo = await MongoClient.connect(base.toString());
const users = Array.from({ length: N }, (_, i) => ({
  _id: new ObjectId(),
  email: `live-memory-${i}@example.com`,
  name: null,
  role: 'user',
  password_hash: 'never used: the script signs its tokens',
  token_version: 0,
  created_at: new Date(),
  updated_at: new Date(),
}));
await mongo.db().collection('users').insertMany(users);
const tokens = users.map((u) => signUserToken(config.jwt, u._id, 'user', 0).token);

// SERVICE_NODE_OPTIONS: node's options for the service (--cpu-prof, say).
const nodeOptions = process.env.SERVICE_NODE_OPTIONS?.split(' ').filter(Boolean) ?? [];
const service = spawn(process.execPath, [...nodeOptions, join(DIST, 'main.js')], {
  cwd: ROOT,
  env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env, LOG_LEVEL: 'info' },
  stdio: ['ignore', 'pipe', 'inherit'],
});
const url = await new Promise((resolve, reject) => {
  let text = '';
  service.stdout.on('data', (chunk) => {
    text += chunk;
    const line = text.split('\n').find((l) => l.includes('wallet service listening'));
    if (line) resolve(JSON.parse(line).url.replace(/\/graphql$/, ''));
  });
  service.once('exit', (code) => reject(new Error(`the service exited with ${code}`)));
});

/** CPU time (ms) of a process, from /proc. */
function cpuOf(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  const [user, system] = [Number(stat[11]), Number(stat[12])].map((ticks) => ticks * 10);
  return { cpuMs: user + system, userMs: user, systemMs: system };
}

/** The service's resident set and CPU time (ms), and the engine's CPU time, from /proc. */
function processStats() {
  const status = readFileSync(`/proc/${service.pid}/status`, 'utf8');
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)[1]);
  return {
    rss: rssKb * 1024,
    ...cpuOf(service.pid),
    engineMs: enginePid ? cpuOf(enginePid).cpuMs : NaN,
  };
}

async function heapUsed() {
  const text = await (await fetch(`${url}/metrics`)).text();
  return Number(/^nodejs_heap_size_used_bytes (\S+)/m.exec(text)[1]);
}

/** One connection with one subscription, acknowledged and taken. */
function connect(token) {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url.replace(/^http/, 'ws') + '/graphql', 'graphql-transport-ws');
    socket.once('error', reject);
    socket.once('open', () =>
      socket.send(
        JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${token}` } }),
      ),
    );
    socket.on('message', (data) => {
      const message = JSON.parse(String(data));
      if (message.type === 'connection_ack') {
        if (SUBSCRIBE)
          socket.send(JSON.stringify({ id: '1', type: 'subscribe', payload: { query: QUERY } }));
        resolve(socket);
      } else if (message.type === 'error') reject(new Error(JSON.stringify(message.payload)));
    });
    socket.once('close', (code, reason) => reject(new Error(`closed: ${code} ${reason}`)));
  });
}

const sockets = [];
try {
  await sleep(SETTLE_MS);
  const quiet = processStats();
  await sleep(IDLE_MS);
  const before = { ...processStats(), heap: await heapUsed() };
  for (let i = 0; i < N; i += 100)
    sockets.push(...(await Promise.all(tokens.slice(i, i + 100).map(connect))));
  await sleep(SETTLE_MS);
  const after = { ...processStats(), heap: await heapUsed() };
  // Twice: the first window may still hold the collection of what connecting left behind.
  await sleep(IDLE_MS);
  const idle1 = processStats();
  await sleep(IDLE_MS);
  const idle = processStats();
  const rate = (a, b) =>
    `${((a.cpuMs - b.cpuMs) / (IDLE_MS / 1000)).toFixed(1)} (${((a.userMs - b.userMs) / (IDLE_MS / 1000)).toFixed(1)} + ${((a.systemMs - b.systemMs) / (IDLE_MS / 1000)).toFixed(1)})`;
  const engineRate = (a, b) => ((a.engineMs - b.engineMs) / (IDLE_MS / 1000)).toFixed(1);
  const perSocket = (a, b) => ((a - b) / N / 1024).toFixed(1);
  process.stdout.write(
    (SUBSCRIBE
      ? `${N} idle subscriptions (one connection and one user each):\n`
      : `${N} idle connections (one user each), no subscription:\n`) +
      `  RSS  ${(before.rss / 2 ** 20).toFixed(0)} -> ${(after.rss / 2 ** 20).toFixed(0)} MiB: ${perSocket(after.rss, before.rss)} KiB per connection\n` +
      `  heap ${(before.heap / 2 ** 20).toFixed(0)} -> ${(after.heap / 2 ** 20).toFixed(0)} MiB: ${perSocket(after.heap, before.heap)} KiB per connection\n` +
      `  CPU with no connection: ${rate(before, quiet)} ms a second\n` +
      `  CPU while idle: ${rate(idle1, after)} then ${rate(idle, idle1)} ms a second (user + system)\n` +
      `  the engine's CPU: ${engineRate(before, quiet)} with no connection, ${engineRate(idle, idle1)} while they wait, ms a second\n`,
  );
} finally {
  for (const socket of sockets) socket.terminate();
  service.kill('SIGTERM');
  await new Promise((resolve) => service.once('exit', resolve));
  await mongo.db().dropDatabase();
  await mongo.close();
  await engine?.stop();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
}
