#!/usr/bin/env node
// `npm run bench`: the wallet service against a hand-written floor, in one run (issue 5).
//
// What it does, in order:
//   1. the database: MONGODB_URI when set (a single host; a fresh database in it, dropped at the
//      end), else its own embedded engine (node dist/db/db-cli.js on a temporary DATA_DIR);
//   2. seeds it with the plain mongodb driver: 4 active exchange definitions (Binance- and
//      Hyperliquid-like) and 1 inactive; users with 10, 100 and 1,000 wallets; 2,000 wallets for
//      the agents' writes; more users' wallets up to 10,000 in all; every wallet on its own
//      credential, encrypted with the service's Keyring;
//   3. puts a counting TCP proxy (bench/db-proxy.mjs) between each server and the database, so
//      database commands per request are counted for both without touching either;
//   4. starts the service (node dist/main.js, NODE_ENV=production, LOG_LEVEL=warn, per-token
//      request budgets raised out of the way) and times it from spawn to /ready answering 200,
//      then reads its idle RSS; starts the floor (bench/floor/server.mjs);
//   5. checks every scenario's answers once on both: the same data from both, 100 wallets for the
//      100-wallet user, each with its definition and credential, writes that land with the
//      version they should and their audit event, a stale expectedVersion refused;
//   6. measures with autocannon from a child process (bench/load.mjs), 16 connections, service
//      and floor alternating ABBA (the first server's time split around the other's, the order
//      flipping every scenario), a warm-up before each server's first run of a scenario:
//      walletDefinitions, userWallets at 100, updateAiManagedState (every request on a different
//      wallet with its current version), userWallets at 10, managedWallets paging through 10,000
//      wallets, updateAiManagedStates with 100 writes a request, managedWalletChanges paging
//      through the 1,000 wallets changed of 10,000 (the last three service only: their targets
//      compare the service with itself);
//   7. 60 s of constant mixed load on the service for its RSS growth;
//   8. counts database commands per request in sequential runs (1 connection) through the
//      proxies, with the database's share of each request's time, and captures the agents'
//      conditional update as each server sent it;
//   9. userWallets at 1,000 wallets (last: its megabyte answers would blur the RSS phase); the
//      service's RSS at the end; an admin write to the catalog followed at once by a read (a
//      cached catalog must not answer stale);
//  10. writes bench/results/latest.json, prints the table and PASS/FAIL for each target (issue 5's
//      section 2, issue 12's section 3), and exits 1 when one fails (2 when the run itself broke).
//      Everything it started is stopped, also on an error or Ctrl-C.
//
// Knobs (environment): MONGODB_URI; BENCH_SECONDS (a measured phase, default 10);
// BENCH_WARMUP_SECONDS (3); BENCH_CONNECTIONS (16); BENCH_RSS_SECONDS (60); BENCH_SERVICE_<NAME>
// passes <NAME> to the service's environment; BENCH_NODE_ARGS, node flags for the service (for a
// diagnosis only, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof": a profiler skews the numbers).
// Errors: a non-2xx answer, or a 200 whose body has GraphQL errors, or a sampled answer whose
// data is not the expected data. A target passes only when its phases had no errors.

import { fork, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  createWriteStream,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { createRequire } from 'node:module';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import jwt from 'jsonwebtoken';
import { MongoClient, ObjectId } from 'mongodb';
import { startDbProxy, waitQuiet } from './db-proxy.mjs';
import { connectSubscribers, disconnectSubscribers, measureDelivery } from './live.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const { Keyring } = require('../dist/crypto/keyring.js');

const env = process.env;
const SETTINGS = {
  phaseSeconds: Number(env.BENCH_SECONDS ?? 10),
  warmupSeconds: Number(env.BENCH_WARMUP_SECONDS ?? 3),
  connections: Number(env.BENCH_CONNECTIONS ?? 16),
  rssSeconds: Number(env.BENCH_RSS_SECONDS ?? 60),
  rssSettleSeconds: 5,
  totalWallets: 10_000,
  writePool: 2_000,
  /** Wallets a user changed lately, for managedWalletChanges (every tenth). */
  changedWallets: 1_000,
  batchSize: 100,
  /**
   * The live events scenario (issue 13): agents' subscriptions, and the paced writes they follow.
   */
  liveSubscribers: 50,
  liveWritesPerSecond: 100,
  /**
   * The largest allowed request (issue 17): one credential's balanceHistory(first: 500) of 100
   * assets each, looping on this many connections while another user asks for `me`.
   */
  heavyConnections: 2,
  heavySnapshots: 500,
  heavyAssets: 100,
};
const TARGETS = {
  maxCommandsPerList: 4,
  listThroughputShare: 0.7,
  listTailFactor: 3,
  catalogThroughputShare: 1.0,
  writeThroughputShare: 0.6,
  batchWriteFactor: 5,
  changesThroughputShare: 1.0,
  listCpuFactor: 1.25,
  idleRssMB: 150,
  rssGrowth: 0.1,
  startupMs: 3_000,
  liveP99Ms: 2_000,
  liveWriteShare: 0.9,
  meP99WithHeavyMs: 200,
};
const DB_NAME = env.MONGODB_URI ? `wallet_bench_${Date.now().toString(36)}` : 'wallet_bench';
const JWT_ISSUER = 'wallet-service';
const JWT_AUDIENCE = 'wallet-platform';

// ---------------------------------------------------------------------------------------------
// The operations, as a frontend and an agent would send them.

const Q = {
  catalog: `query Catalog { walletDefinitions { id name slug type description logo authFields { key label type required encrypted placeholder helpText } features { spot futures perpetuals leverage { min max } supportedAssets } isActive order } }`,
  userWallets: `query MyWallets { userWallets { id name status version userLimits { maxTotalRisk allowedSymbols tradingMode } aiManagedState { currentRisk dailyPnl openPositions currentMaxPositionSize currentLeverage adaptiveStopLoss riskScore marketSentiment confidenceLevel lastAiDecision } definition { name slug features { leverage { max } } } credential { name isConnected definition { slug } } } }`,
  write: `mutation AgentWrite($walletId: ObjectID!, $expectedVersion: Int, $input: AiManagedStateInput!) { updateAiManagedState(walletId: $walletId, expectedVersion: $expectedVersion, input: $input) { id version status aiManagedState { currentRisk currentMaxPositionSize currentLeverage riskScore marketSentiment confidenceLevel lastAiDecision } } }`,
  managed: `query Managed($after: String) { managedWallets(first: 100, after: $after) { edges { cursor node { id name status version userLimits { maxTotalRisk tradingMode } aiManagedState { currentRisk currentLeverage riskScore marketSentiment } } } pageInfo { hasNextPage endCursor } } }`,
  changes: `query Changes($since: DateTimeISO!, $after: String) { managedWalletChanges(since: $since, first: 100, after: $after) { edges { cursor node { id name status version userChangedAt userLimits { maxTotalRisk tradingMode } aiManagedState { currentRisk currentLeverage riskScore marketSentiment } } } pageInfo { hasNextPage endCursor } } }`,
  heavy: `query Heavy($id: ObjectID!) { credential(id: $id) { id name balanceHistory(first: 500) { at balances { asset free used total } } } }`,
  me: `query Me { me { id } }`,
  batch: `mutation AgentWrites($updates: [AiStateUpdateInput!]!) { updateAiManagedStates(updates: $updates) { walletId wallet { id version status aiManagedState { currentRisk currentMaxPositionSize currentLeverage riskScore marketSentiment confidenceLevel lastAiDecision } } error { code message currentVersion } } }`,
  updateDefinition: `mutation Touch($slug: String!, $input: UpdateWalletDefinitionInput!) { updateWalletDefinition(slug: $slug, input: $input) { slug description } }`,
};

// ---------------------------------------------------------------------------------------------
// Processes we start, and stopping them whatever happens.

const children = [];
const cleanups = [];
let tmpDir;
let cleaning;

function log(message) {
  process.stdout.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}

function startChild(name, command, args, { env: childEnv, cwd, logFile }) {
  const proc = spawn(command, args, { env: childEnv, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  const out = createWriteStream(logFile);
  proc.stdout.pipe(out);
  proc.stderr.pipe(out);
  const child = { name, proc, logFile, exited: false };
  proc.on('exit', (code, signal) => {
    child.exited = true;
    child.exitCode = code;
    child.exitSignal = signal;
  });
  children.push(child);
  return child;
}

async function stopChild(child, graceMs = 8_000) {
  if (child.exited || child.proc.exitCode !== null) return;
  const exited = new Promise((resolve) => child.proc.once('exit', resolve));
  child.proc.kill('SIGTERM');
  const timer = setTimeout(() => {
    if (!child.exited) child.proc.kill('SIGKILL');
  }, graceMs);
  await exited;
  clearTimeout(timer);
}

async function cleanup() {
  cleaning ??= (async () => {
    for (const fn of cleanups.reverse()) await fn().catch(() => undefined);
    // The servers first, the database last.
    for (const child of [...children].reverse()) await stopChild(child).catch(() => undefined);
    if (tmpDir) rmSync(tmpDir, { recursive: true, force: true });
  })();
  return cleaning;
}

let interrupted = false;
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    interrupted = true;
    log(`${signal}: stopping everything`);
    cleanup().finally(() => process.exit(130));
  });
}

function tail(file, lines = 20) {
  try {
    return readFileSync(file, 'utf8').trim().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

function firstLine(child, pattern, timeoutMs) {
  return new Promise((resolve, reject) => {
    let buffer = '';
    const onData = (chunk) => {
      buffer += chunk.toString();
      for (const line of buffer.split('\n')) {
        const match = pattern.exec(line);
        if (match) {
          child.proc.stdout.off('data', onData);
          clearTimeout(timer);
          resolve(match);
          return;
        }
      }
    };
    const timer = setTimeout(
      () =>
        reject(
          new Error(`${child.name} did not start in ${timeoutMs} ms:\n${tail(child.logFile)}`),
        ),
      timeoutMs,
    );
    child.proc.stdout.on('data', onData);
    child.proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(
        new Error(`${child.name} exited (${code}) before it was ready:\n${tail(child.logFile)}`),
      );
    });
  });
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** VmRSS of a process, in MB (Linux /proc). */
function rssMB(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmRSS:\s+(\d+)\s+kB/.exec(status)[1]);
  return Math.round((kb / 1024) * 10) / 10;
}

const CLOCK_TICKS = 100; // USER_HZ: the unit of utime/stime in /proc/<pid>/stat on Linux

/** [ppid, cpu seconds (user + system)] of a process from /proc/<pid>/stat; null when it is gone. */
function procStat(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return {
      ppid: Number(fields[1]),
      cpuSeconds: (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS,
    };
  } catch {
    return null;
  }
}

/** A process and all its descendants (the engine is node db-cli plus its JVM). */
function processTree(root) {
  const parentOf = new Map();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = procStat(entry);
    if (stat) parentOf.set(Number(entry), stat.ppid);
  }
  const tree = [root];
  for (let i = 0; i < tree.length; i++) {
    for (const [pid, ppid] of parentOf) if (ppid === tree[i]) tree.push(pid);
  }
  return tree;
}

const cpuOf = (pids) => pids.reduce((sum, pid) => sum + (procStat(pid)?.cpuSeconds ?? 0), 0);

/** CPU seconds the whole machine spent busy (all cores), from /proc/stat. */
function machineBusySeconds() {
  const [, user, nice, system, , , irq, softirq, steal] = readFileSync('/proc/stat', 'utf8')
    .split('\n')[0]
    .trim()
    .split(/\s+/)
    .map(Number);
  return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS;
}

/** GET /ready once; resolves with the status code, or 0 when nothing answers. */
function readyStatus(port) {
  return new Promise((resolve) => {
    const req = http.get(
      { host: '127.0.0.1', port, path: '/ready', agent: false, timeout: 1_000 },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode));
      },
    );
    req.on('error', () => resolve(0));
    req.on('timeout', () => {
      req.destroy();
      resolve(0);
    });
  });
}

async function waitReady(child, port, started, timeoutMs = 60_000) {
  for (;;) {
    if (child.exited)
      throw new Error(
        `${child.name} exited (${child.exitCode ?? child.exitSignal}):\n${tail(child.logFile)}`,
      );
    if ((await readyStatus(port)) === 200) return performance.now() - started;
    if (performance.now() - started > timeoutMs)
      throw new Error(`${child.name} not ready after ${timeoutMs} ms:\n${tail(child.logFile)}`);
    await sleep(10);
  }
}

// ---------------------------------------------------------------------------------------------
// GraphQL from this process: only for the one-off checks, never for load.

async function gql(target, query, variables, token) {
  const res = await fetch(`${target.url}/graphql`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: JSON.stringify({ query, variables }),
  });
  const text = await res.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    throw new Error(`${target.name}: HTTP ${res.status}, not JSON: ${text.slice(0, 300)}`);
  }
  return { status: res.status, ...json };
}

async function gqlData(target, query, variables, token) {
  const result = await gql(target, query, variables, token);
  if (result.status !== 200 || result.errors)
    throw new Error(`${target.name}: ${JSON.stringify(result).slice(0, 600)}`);
  return result.data;
}

function check(condition, message) {
  if (!condition) throw new Error(`check failed: ${message}`);
}

// ---------------------------------------------------------------------------------------------
// The load child.

let loadChild;
let loadSeq = 0;
const loadWaiting = new Map();

function startLoadChild() {
  loadChild = fork(join(ROOT, 'bench', 'load.mjs'), [], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    execArgv: [],
  });
  loadChild.on('message', ({ id, result, error }) => {
    const waiter = loadWaiting.get(id);
    loadWaiting.delete(id);
    if (error) waiter?.reject(new Error(`load: ${error}`));
    else waiter?.resolve(result);
  });
  loadChild.on('exit', (code) => {
    for (const waiter of loadWaiting.values())
      waiter.reject(new Error(`the load process exited (${code})`));
    loadWaiting.clear();
  });
  children.push({
    name: 'load',
    proc: loadChild,
    get exited() {
      return loadChild.exitCode !== null || loadChild.signalCode !== null;
    },
  });
}

function runLoad(spec) {
  const id = ++loadSeq;
  return new Promise((resolve, reject) => {
    loadWaiting.set(id, { resolve, reject });
    loadChild.send({ id, spec });
  });
}

// ---------------------------------------------------------------------------------------------
// Seed data.

const DAY = 86_400_000;

const DEFINITIONS = [
  {
    name: 'Binance',
    slug: 'binance',
    ccxt_id: 'binance',
    type: 'cex',
    description: 'Leading cryptocurrency exchange with spot and futures trading',
    logo: null,
    auth_fields: [
      {
        key: 'api_key',
        label: 'API Key',
        type: 'string',
        required: true,
        encrypted: false,
        placeholder: 'Enter your Binance API key',
        help_text: 'Find this in your Binance account settings',
        ccxt_credential: 'apiKey',
      },
      {
        key: 'api_secret',
        label: 'API Secret',
        type: 'password',
        required: true,
        encrypted: true,
        placeholder: 'Enter your API secret',
        help_text: 'Keep this secret and never share it',
        ccxt_credential: 'secret',
      },
    ],
    features: {
      spot: true,
      futures: true,
      perpetuals: true,
      leverage: { min: 1, max: 125 },
      supported_assets: ['BTC', 'ETH', 'BNB', 'SOL', 'USDT'],
    },
    api_config: {
      base_url: 'https://api.binance.com',
      testnet_url: 'https://testnet.binance.vision',
      websocket_url: 'wss://stream.binance.com:9443',
      rate_limit: 1200,
    },
    is_active: true,
    order: 1,
  },
  {
    name: 'Hyperliquid',
    slug: 'hyperliquid',
    ccxt_id: 'hyperliquid',
    type: 'perpetuals',
    description: 'Decentralized perpetuals exchange',
    logo: null,
    auth_fields: [
      {
        key: 'private_key',
        label: 'Private Key',
        type: 'password',
        required: true,
        encrypted: true,
        placeholder: 'Enter your wallet private key',
        help_text: 'Your Ethereum private key for signing transactions',
        ccxt_credential: 'privateKey',
      },
      {
        key: 'wallet_address',
        label: 'Wallet Address',
        type: 'string',
        required: false,
        encrypted: false,
        placeholder: '0x...',
        help_text:
          'The address of your main account; needed when the private key belongs to an API wallet',
        ccxt_credential: 'walletAddress',
      },
    ],
    features: {
      spot: false,
      futures: false,
      perpetuals: true,
      leverage: { min: 1, max: 50 },
      supported_assets: ['BTC', 'ETH', 'SOL'],
    },
    api_config: {
      base_url: 'https://api.hyperliquid.xyz',
      testnet_url: 'https://api.hyperliquid-testnet.xyz',
      websocket_url: 'wss://api.hyperliquid.xyz/ws',
      rate_limit: 300,
    },
    is_active: true,
    order: 2,
  },
  {
    name: 'OKX',
    slug: 'okx',
    ccxt_id: 'okx',
    type: 'cex',
    description: 'Spot, futures and perpetual swaps',
    logo: 'https://static.okx.example/logo.svg',
    auth_fields: [
      {
        key: 'api_key',
        label: 'API Key',
        type: 'string',
        required: true,
        encrypted: false,
        placeholder: 'Enter your OKX API key',
        help_text: null,
        ccxt_credential: 'apiKey',
      },
      {
        key: 'api_secret',
        label: 'Secret Key',
        type: 'password',
        required: true,
        encrypted: true,
        placeholder: null,
        help_text: 'Shown once when the key is created',
        ccxt_credential: 'secret',
      },
      {
        key: 'passphrase',
        label: 'Passphrase',
        type: 'password',
        required: true,
        encrypted: true,
        placeholder: null,
        help_text: 'The passphrase chosen for this API key',
        ccxt_credential: 'password',
      },
    ],
    features: {
      spot: true,
      futures: true,
      perpetuals: true,
      leverage: { min: 1, max: 100 },
      supported_assets: ['BTC', 'ETH', 'SOL', 'XRP', 'USDT'],
    },
    api_config: {
      base_url: 'https://www.okx.com',
      testnet_url: null,
      websocket_url: 'wss://ws.okx.com:8443/ws/v5/public',
      rate_limit: 600,
    },
    is_active: true,
    order: 3,
  },
  {
    name: 'dYdX',
    slug: 'dydx',
    ccxt_id: 'dydx',
    type: 'perpetuals',
    description: 'Decentralized perpetuals on its own chain',
    logo: null,
    auth_fields: [
      {
        key: 'mnemonic',
        label: 'Mnemonic',
        type: 'password',
        required: true,
        encrypted: true,
        placeholder: 'twelve or twenty-four words',
        help_text: 'The seed phrase of the trading account',
        ccxt_credential: null,
      },
    ],
    features: {
      spot: false,
      futures: false,
      perpetuals: true,
      leverage: { min: 1, max: 20 },
      supported_assets: ['BTC', 'ETH'],
    },
    api_config: {
      base_url: 'https://indexer.dydx.trade',
      testnet_url: 'https://indexer.v4testnet.dydx.exchange',
      websocket_url: null,
      rate_limit: 300,
    },
    is_active: true,
    order: 4,
  },
  {
    name: 'Legacy DEX',
    slug: 'legacy-dex',
    ccxt_id: null,
    type: 'dex',
    description: 'No longer offered',
    logo: null,
    auth_fields: [
      {
        key: 'private_key',
        label: 'Private Key',
        type: 'password',
        required: true,
        encrypted: true,
        placeholder: null,
        help_text: null,
        ccxt_credential: 'privateKey',
      },
    ],
    features: {
      spot: true,
      futures: false,
      perpetuals: false,
      leverage: { min: 1, max: 1 },
      supported_assets: ['ETH'],
    },
    api_config: {
      base_url: 'https://legacy.example',
      testnet_url: null,
      websocket_url: null,
      rate_limit: 60,
    },
    is_active: false,
    order: 5,
  },
];
const ACTIVE_DEFINITIONS = DEFINITIONS.filter((d) => d.is_active).length;

const MODES = ['conservative', 'moderate', 'aggressive'];
const INITIAL_STOP_LOSS = { conservative: 2, moderate: 5, aggressive: 10 };

function leverageMin(definition) {
  const { futures, perpetuals, leverage } = definition.features;
  return !futures && !perpetuals ? 1 : leverage.min;
}

const hex = (bytes) => randomBytes(bytes).toString('hex');

function credentialValues(slug, keyring) {
  switch (slug) {
    case 'binance':
      return { api_key: `bk${hex(16)}`, api_secret: keyring.encrypt(`bs${hex(24)}`) };
    case 'hyperliquid':
      return { private_key: keyring.encrypt(`0x${hex(32)}`), wallet_address: `0x${hex(20)}` };
    case 'okx':
      return {
        api_key: `ok${hex(16)}`,
        api_secret: keyring.encrypt(hex(16)),
        passphrase: keyring.encrypt(hex(8)),
      };
    default:
      return { mnemonic: keyring.encrypt(Array.from({ length: 12 }, () => hex(3)).join(' ')) };
  }
}

async function seed(db, keyring) {
  const started = performance.now();
  const base = Date.now() - 30 * DAY;
  let clock = 0;
  const at = () => new Date(base + clock++ * 1_000);
  // After every creation time (10,000 wallets' clock ticks are well under a day).
  const changedSince = new Date(base + DAY);

  // Every index the models declare, under mongoose's names and options, so the service starts as
  // on a database it has run on before: its own createIndexes finds them all and builds nothing
  // (the start-up target is a restart's, not a first start's on 10,000 wallets).
  const DAY_S = 86_400;
  const indexes = [
    ['users', { email: 1 }, { unique: true }],
    ['wallets', { slug: 1 }, { unique: true }],
    ['wallets', { is_active: 1, order: 1 }],
    ['credentials', { user_id: 1, wallet_id: 1 }],
    ['credentials', { user_id: 1, is_active: 1 }],
    ['credentials', { cap_slot: 1 }, { unique: true, sparse: true }],
    ['credentials', { next_check_at: 1 }],
    ['credential_balances', { credential_id: 1, at: -1 }],
    ['credential_balances', { at: 1 }, { expireAfterSeconds: 30 * DAY_S }],
    ['user_wallets', { user_id: 1, status: 1 }],
    ['user_wallets', { credential_id: 1 }],
    ['user_wallets', { wallet_id: 1 }],
    ['user_wallets', { live_key: 1 }, { unique: true }],
    ['user_wallets', { cap_slot: 1 }, { unique: true, sparse: true }],
    ['user_wallets', { user_changed_at: 1, _id: 1 }],
    ['user_wallets', { 'pending_events.at': 1 }],
    ['user_wallet_events', { wallet_id: 1, at: -1 }],
    ['user_wallet_events', { recorded_at: 1 }],
    ['user_wallet_events', { at: 1 }, { expireAfterSeconds: 400 * DAY_S }],
    ['rate_limits', { expires_at: 1 }, { expireAfterSeconds: 0 }],
    ['agent_tokens', { created_at: -1 }],
    ['agent_tokens', { revoked_at: 1, expires_at: 1 }],
  ];
  for (const [collection, keys, options = {}] of indexes) {
    const name = Object.entries(keys)
      .map(([k, v]) => `${k}_${v}`)
      .join('_');
    await db.collection(collection).createIndex(keys, { ...options, name });
  }

  const definitions = DEFINITIONS.map((d) => {
    const created = at();
    return { _id: new ObjectId(), ...d, created_at: created, updated_at: created, __v: 0 };
  });
  await db.collection('wallets').insertMany(definitions);
  const active = definitions.filter((d) => d.is_active);
  const bySlug = Object.fromEntries(definitions.map((d) => [d.slug, d]));

  const users = [];
  const newUser = (label, role = 'user') => {
    const created = at();
    const user = {
      _id: new ObjectId(),
      email: `bench-${label}@example.com`,
      name: `Bench ${label}`,
      role,
      // Never used to log in: the benchmark signs its tokens.
      password_hash: `$argon2id$v=19$m=19456,t=2,p=1$${randomBytes(16).toString('base64')}$${randomBytes(32).toString('base64')}`,
      created_at: created,
      updated_at: created,
      __v: 0,
    };
    users.push(user);
    return user;
  };

  const credentials = [];
  const wallets = [];
  let n = 0;
  const addWallets = (user, count, { definitionsFor, limitsFor }) => {
    const ids = [];
    for (let i = 0; i < count; i++, n++) {
      const definition = definitionsFor(i);
      const created = at();
      const credential = {
        _id: new ObjectId(),
        user_id: user._id,
        wallet_id: definition._id,
        name: `${definition.name} key ${i + 1}`,
        credentials: credentialValues(definition.slug, keyring),
        environment: i % 7 === 6 ? 'testnet' : 'mainnet',
        is_connected: i % 3 !== 2,
        // As the service's own tests leave them, mid-interval: none due during the run (a due one
        // would load ccxt and call an exchange the benchmark doesn't have).
        connection_state: i % 3 !== 2 ? 'connected' : 'unreachable',
        last_checked_at: created,
        last_verified_at: i % 3 !== 2 ? created : null,
        connection_error: i % 3 === 2 ? 'the exchange could not be reached' : null,
        check_failures: i % 3 === 2 ? 1 : 0,
        check_due_at: null,
        next_check_at: null,
        is_active: true,
        version: 0,
        deleting_at: null,
        last_test_at: null,
        created_at: created,
        updated_at: created,
        __v: 0,
      };
      credentials.push(credential);
      const limits = limitsFor(i, definition);
      const paused = limits.status === 'user_paused';
      const _id = new ObjectId();
      if (!paused)
        credential.next_check_at = credential.check_due_at = new Date(
          Date.now() + 6 * 3_600_000 * (0.9 + Math.random() * 0.2),
        );
      wallets.push({
        _id,
        user_id: user._id,
        credential_id: credential._id,
        wallet_id: definition._id,
        name: `${definition.name} wallet ${i + 1}`,
        user_limits: {
          max_total_risk: limits.max_total_risk,
          allowed_symbols: limits.allowed_symbols,
          trading_mode: limits.trading_mode,
        },
        ai_managed_state: {
          current_risk: 0,
          daily_pnl: 0,
          open_positions: 0,
          current_max_position_size: 0,
          current_leverage: leverageMin(definition),
          adaptive_stop_loss: INITIAL_STOP_LOSS[limits.trading_mode],
          risk_score: 50,
          market_sentiment: 'neutral',
          confidence_level: 0,
          last_ai_decision: null,
        },
        status: limits.status,
        pause_reason: paused ? 'paused by the user' : null,
        live_key: paused ? _id : credential._id,
        version: 0,
        // Every tenth wallet was changed by its user lately (managedWalletChanges finds those).
        user_changed_at:
          n % (SETTINGS.totalWallets / SETTINGS.changedWallets) === 0
            ? new Date(changedSince.getTime() + n * 1_000)
            : created,
        created_at: created,
        updated_at: created,
        __v: 0,
      });
      ids.push(_id);
    }
    return ids;
  };

  const mixed = {
    definitionsFor: (i) => active[i % active.length],
    limitsFor: (i, definition) => ({
      max_total_risk: 1_000 + (i % 50) * 250,
      allowed_symbols:
        i % 2 === 0
          ? null
          : definition.features.supported_assets.slice(0, 2).map((a) => `${a}/USDT`),
      trading_mode: MODES[i % 3],
      status: i % 10 === 9 ? 'user_paused' : 'active',
    }),
  };
  // Agents write inside these limits: leverage 1-3 fits every mode on both exchanges, position
  // sizes stay under max_total_risk, risk stays under it (no automatic pause).
  const writable = {
    definitionsFor: (i) => (i % 2 === 0 ? bySlug.binance : bySlug.hyperliquid),
    limitsFor: (i) => ({
      max_total_risk: 50_000,
      allowed_symbols: null,
      trading_mode: MODES[i % 3],
      status: 'active',
    }),
  };

  const admin = newUser('admin', 'admin');
  const listUsers = {};
  for (const size of [10, 100, 1_000]) {
    listUsers[size] = newUser(`wallets-${size}`);
    addWallets(listUsers[size], size, mixed);
  }
  const writePool = [];
  for (let u = 0; u < SETTINGS.writePool / 100; u++)
    writePool.push(...addWallets(newUser(`agent-managed-${u}`), 100, writable));
  for (let u = 0; n < SETTINGS.totalWallets; u++)
    addWallets(newUser(`other-${u}`), Math.min(100, SETTINGS.totalWallets - n), mixed);

  // The largest allowed request's data: 500 snapshots of 100 assets on one credential of the
  // 10-wallet user.
  const heavyCredential = credentials.find((c) => c.user_id.equals(listUsers[10]._id));
  const snapshotAt = Date.now();
  await db.collection('credential_balances').insertMany(
    Array.from({ length: SETTINGS.heavySnapshots }, (_, i) => ({
      credential_id: heavyCredential._id,
      at: new Date(snapshotAt - i * 60_000),
      balances: Array.from({ length: SETTINGS.heavyAssets }, (_, a) => ({
        asset: `ASSET${a}`,
        free: 1_000 + a + i / 1_000,
        used: a / 7,
        total: 1_000 + a + a / 7 + i / 1_000,
      })),
    })),
  );
  await db.collection('users').insertMany(users);
  for (let i = 0; i < credentials.length; i += 1_000)
    await db.collection('credentials').insertMany(credentials.slice(i, i + 1_000));
  for (let i = 0; i < wallets.length; i += 1_000)
    await db.collection('user_wallets').insertMany(wallets.slice(i, i + 1_000));
  // The service honours an agent token only while its record is here
  // (src/auth/agent-token.model.ts).
  const agentTokenId = new ObjectId();
  // Now, not on the seed's clock (30 days back): the record must not have expired.
  const issued = new Date();
  await db.collection('agent_tokens').insertOne({
    _id: agentTokenId,
    name: 'bench-risk-agent',
    issued_by: admin._id,
    created_at: issued,
    expires_at: new Date(issued.getTime() + 86_400_000),
    revoked_at: null,
  });

  const counts = {
    definitions: await db.collection('wallets').countDocuments(),
    users: await db.collection('users').countDocuments(),
    credentials: await db.collection('credentials').countDocuments(),
    wallets: await db.collection('user_wallets').countDocuments(),
  };
  check(
    counts.wallets === SETTINGS.totalWallets && counts.credentials === SETTINGS.totalWallets,
    `seeded ${JSON.stringify(counts)}`,
  );
  return {
    counts,
    seconds: Math.round((performance.now() - started) / 100) / 10,
    admin,
    listUsers,
    heavyCredentialId: heavyCredential._id.toHexString(),
    agentTokenId,
    writePool: writePool.map((id) => id.toHexString()),
    changedSince,
  };
}

// ---------------------------------------------------------------------------------------------
// Tokens, as src/auth/jwt.ts signs them.

function userToken(secret, user) {
  return jwt.sign({ typ: 'user', role: user.role, iat: Math.floor(Date.now() / 1000) }, secret, {
    algorithm: 'HS256',
    expiresIn: 3_600,
    issuer: JWT_ISSUER,
    audience: JWT_AUDIENCE,
    subject: user._id.toHexString(),
  });
}

function agentToken(secret, name, id) {
  return jwt.sign(
    {
      typ: 'agent',
      role: 'agent',
      name,
      jti: id.toHexString(),
      iat: Math.floor(Date.now() / 1000),
    },
    secret,
    {
      algorithm: 'HS256',
      expiresIn: 3_600,
      issuer: JWT_ISSUER,
      audience: JWT_AUDIENCE,
      subject: `agent:${id.toHexString()}`,
    },
  );
}

// ---------------------------------------------------------------------------------------------
// Database location.

/** { authority (userinfo@host:port), host, port, query } of a single-host mongodb:// URI. */
function parseMongoUri(uri) {
  const match = /^mongodb:\/\/(?:([^@/]*)@)?([^/?,]+)(?:\/([^?]*))?(?:\?(.*))?$/.exec(uri);
  if (!match)
    throw new Error(
      'MONGODB_URI: the benchmark needs a single-host mongodb:// URI (its proxy sits in front of that host)',
    );
  const [, userinfo, hostPort, , query] = match;
  const [, host, port] = /^\[?([^\]]+?)\]?(?::(\d+))?$/.exec(hostPort);
  return { userinfo, host, port: Number(port ?? 27017), query: query ?? '' };
}

function mongoUri({ userinfo, query }, host, port, extra = '') {
  const params = [query, extra].filter(Boolean).join('&');
  return `mongodb://${userinfo ? `${userinfo}@` : ''}${host}:${port}/${DB_NAME}${params ? `?${params}` : ''}`;
}

// ---------------------------------------------------------------------------------------------
// Measuring.

const results = {
  date: new Date().toISOString(),
  machine: {
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model,
    memoryGB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    platform: `${os.platform()} ${os.release()}`,
    loadAverageAtStart: os.loadavg().map((v) => Math.round(v * 100) / 100),
  },
  settings: SETTINGS,
  thresholds: TARGETS,
  database: {},
  startup: {},
  rss: {},
  correctness: {},
  commands: {},
  scenarios: {},
  targets: [],
};

function summary(run) {
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
let counters = [];
async function settle(ms = 300) {
  if (!(await waitQuiet(counters, ms))) log('warning: the database traffic did not settle in 15 s');
}

/**
 * One measured run of a scenario on one server, after a warm-up unless told otherwise. Runs with
 * the same series (scenario and server) add up: the answer describes all of them so far.
 */
async function phase(target, label, spec, seconds, { warmup = true } = {}) {
  const series = `${label} @${target.name}`;
  const base = {
    url: `${target.url}/graphql`,
    connections: SETTINGS.connections,
    label: series,
    ...spec,
  };
  if (warmup && SETTINGS.warmupSeconds > 0) {
    await settle();
    await runLoad({
      ...base,
      ...(await specFor(spec)),
      duration: SETTINGS.warmupSeconds,
      label: `${series} warm-up`,
    });
  }
  const extra = await specFor(spec);
  await settle();
  const cpu = cpuProbe(target, series);
  const run = await runLoad({ ...base, ...extra, duration: seconds, series });
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
let enginePids = [];
const cpuSeries = new Map();
let serverPids = [];
function cpuProbe(target, series) {
  // `bench`: this process (the proxies) and the server not under test; `other`: everything else
  // on the machine, which should be nothing: a busy machine makes the numbers unreliable.
  const groups = {
    server: [target.child.proc.pid],
    db: enginePids,
    load: [loadChild.pid],
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
// run's in-flight writes have landed), so every expectedVersion is current.
let direct;
let writePoolIds;
async function currentPool() {
  // Longer than a gap between two commands of a batch of writes on a busy machine.
  await settle(1_000);
  const ids = writePoolIds.map((id) => new ObjectId(id));
  const docs = await direct
    .collection('user_wallets')
    .find({ _id: { $in: ids } }, { projection: { version: 1 } })
    .toArray();
  const version = new Map(docs.map((d) => [d._id.toHexString(), d.version]));
  return writePoolIds.map((id) => ({ id, version: version.get(id) }));
}

async function specFor(spec) {
  if (spec.kind === 'write' || spec.kind === 'batch') return { pool: await currentPool() };
  if (spec.kind === 'mix' && spec.parts.some((p) => p.kind === 'write')) {
    const pool = await currentPool();
    return { parts: spec.parts.map((p) => (p.kind === 'write' ? { ...p, pool } : p)) };
  }
  return {};
}

/**
 * Database commands per request: a sequential run of `amount` requests through the counting proxy.
 */
async function countCommands(target, label, spec, amount) {
  const counter = target.proxy.counter;
  const extra = await specFor(spec);
  await settle(1_000);
  counter.reset();
  counter.detail(true);
  const run = await runLoad({
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

// ---------------------------------------------------------------------------------------------

async function main() {
  tmpDir = mkdtempSync(join(os.tmpdir(), 'wallet-bench-'));
  const keys = {
    jwtSecret: randomBytes(48).toString('base64url'),
    encryptionKey: `${randomBytes(32).toString('base64url')}=`,
  };
  const baseEnv = {
    PATH: env.PATH,
    HOME: env.HOME ?? tmpDir,
    LANG: env.LANG ?? 'C.UTF-8',
    ...(env.JAVA_HOME ? { JAVA_HOME: env.JAVA_HOME } : {}),
  };

  // 1. The database.
  let dbTarget;
  if (env.MONGODB_URI) {
    dbTarget = parseMongoUri(env.MONGODB_URI);
    results.database = {
      kind: 'MONGODB_URI',
      host: `${dbTarget.host}:${dbTarget.port}`,
      name: DB_NAME,
    };
    log(`database: ${dbTarget.host}:${dbTarget.port}, database ${DB_NAME} (dropped at the end)`);
  } else {
    log('database: starting the embedded engine (node dist/db/db-cli.js)');
    const started = performance.now();
    const engine = startChild('engine', process.execPath, [join(ROOT, 'dist', 'db', 'db-cli.js')], {
      env: {
        ...baseEnv,
        DATA_DIR: join(tmpDir, 'engine'),
        LOG_LEVEL: 'warn',
        NODE_ENV: 'development',
      },
      cwd: tmpDir,
      logFile: join(tmpDir, 'engine.log'),
    });
    const [uri] = await firstLine(engine, /^mongodb:\/\/\S+$/, 180_000);
    enginePids = processTree(engine.proc.pid);
    dbTarget = parseMongoUri(uri);
    results.database = {
      kind: 'embedded engine (db-cli: mongo-java-server unless a mongod is installed)',
      host: `${dbTarget.host}:${dbTarget.port}`,
      name: DB_NAME,
      startSeconds: Math.round((performance.now() - started) / 100) / 10,
    };
    log(`database: ${uri} in ${results.database.startSeconds} s`);
  }
  const directUri = mongoUri(dbTarget, dbTarget.host, dbTarget.port, 'directConnection=true');
  const directClient = new MongoClient(directUri);
  await directClient.connect();
  direct = directClient.db();
  cleanups.push(async () => {
    if (env.MONGODB_URI) await direct.dropDatabase().catch(() => undefined);
    await directClient.close();
  });

  // 2. Seed.
  log('seeding');
  const fixtures = await seed(direct, new Keyring([keys.encryptionKey]));
  writePoolIds = fixtures.writePool;
  results.database.seed = {
    ...fixtures.counts,
    seconds: fixtures.seconds,
    listUsers: [10, 100, 1_000],
    writePool: SETTINGS.writePool,
  };
  log(`seeded ${JSON.stringify(fixtures.counts)} in ${fixtures.seconds} s`);

  // 3. One counting proxy per server.
  const serviceProxy = await startDbProxy({
    host: dbTarget.host,
    port: dbTarget.port,
    name: 'service',
  });
  const floorProxy = await startDbProxy({
    host: dbTarget.host,
    port: dbTarget.port,
    name: 'floor',
  });
  cleanups.push(
    () => serviceProxy.close(),
    () => floorProxy.close(),
  );
  counters = [serviceProxy.counter, floorProxy.counter];

  // 4. The service: spawn -> /ready 200, then idle RSS; then the floor.
  const servicePort = await freePort();
  const serviceStarted = performance.now();
  const serviceNodeArgs = (env.BENCH_NODE_ARGS ?? '').split(/\s+/).filter(Boolean);
  const serviceChild = startChild(
    'service',
    process.execPath,
    [...serviceNodeArgs, join(ROOT, 'dist', 'main.js')],
    {
      env: {
        ...baseEnv,
        NODE_ENV: 'production',
        HOST: '127.0.0.1',
        PORT: String(servicePort),
        MONGODB_URI: mongoUri(dbTarget, '127.0.0.1', serviceProxy.port, 'directConnection=true'),
        JWT_SECRET: keys.jwtSecret,
        ENCRYPTION_KEY: keys.encryptionKey,
        LOG_LEVEL: 'warn',
        DATA_DIR: join(tmpDir, 'service'),
        SHUTDOWN_GRACE_MS: '2000',
        // The per-token request budgets are a policy, not a capacity: raised out of the way so the
        // run measures what the service can serve. Their bookkeeping still runs on every request.
        RATE_LIMIT_USER_PER_MINUTE: '1000000000',
        RATE_LIMIT_AGENT_PER_MINUTE: '1000000000',
        // BENCH_SERVICE_<NAME>=value reaches the service as <NAME>=value (e.g. a rate budget to
        // raise).
        ...Object.fromEntries(
          Object.entries(env)
            .filter(([k]) => k.startsWith('BENCH_SERVICE_'))
            .map(([k, v]) => [k.slice('BENCH_SERVICE_'.length), v]),
        ),
      },
      // Not the repository: no .env of a developer's can reach the run.
      cwd: tmpDir,
      logFile: join(tmpDir, 'service.log'),
    },
  );
  const serviceStartupMs = await waitReady(serviceChild, servicePort, serviceStarted);
  results.startup.serviceMs = Math.round(serviceStartupMs);
  log(`service ready in ${results.startup.serviceMs} ms (pid ${serviceChild.proc.pid})`);
  await sleep(2_000);
  results.rss.idleMB = rssMB(serviceChild.proc.pid);
  log(`service idle RSS ${results.rss.idleMB} MB`);

  const floorPort = await freePort();
  const floorStarted = performance.now();
  const floorChild = startChild(
    'floor',
    process.execPath,
    [join(ROOT, 'bench', 'floor', 'server.mjs')],
    {
      env: {
        ...baseEnv,
        PORT: String(floorPort),
        HOST: '127.0.0.1',
        MONGODB_URI: mongoUri(dbTarget, '127.0.0.1', floorProxy.port, 'directConnection=true'),
        JWT_SECRET: keys.jwtSecret,
        NODE_ENV: 'production',
      },
      cwd: tmpDir,
      logFile: join(tmpDir, 'floor.log'),
    },
  );
  const [, floorDriver] = await firstLine(
    floorChild,
    /^listening \S+ mongodb-driver (\S+)/,
    30_000,
  );
  results.startup.floorMs = Math.round(await waitReady(floorChild, floorPort, floorStarted));
  await sleep(500);
  results.rss.floorIdleMB = rssMB(floorChild.proc.pid);
  const serviceDriver = JSON.parse(
    readFileSync(
      join(ROOT, 'node_modules', 'mongoose', 'node_modules', 'mongodb', 'package.json'),
      'utf8',
    ),
  ).version;
  results.database.drivers = {
    service: `mongoose ${require('mongoose/package.json').version} (mongodb ${serviceDriver})`,
    floor: `mongodb ${floorDriver}`,
  };
  log(
    `floor ready in ${results.startup.floorMs} ms (mongodb driver ${floorDriver}); service uses ${results.database.drivers.service}`,
  );

  serverPids = [serviceChild.proc.pid, floorChild.proc.pid];
  const service = {
    name: 'service',
    url: `http://127.0.0.1:${servicePort}`,
    proxy: serviceProxy,
    child: serviceChild,
  };
  const floor = {
    name: 'floor',
    url: `http://127.0.0.1:${floorPort}`,
    proxy: floorProxy,
    child: floorChild,
  };

  startLoadChild();

  // Tokens.
  const tokens = {
    admin: userToken(keys.jwtSecret, fixtures.admin),
    list: Object.fromEntries(
      Object.entries(fixtures.listUsers).map(([size, user]) => [
        size,
        userToken(keys.jwtSecret, user),
      ]),
    ),
    agent: agentToken(keys.jwtSecret, 'bench-risk-agent', fixtures.agentTokenId),
  };

  // 5. Correctness, once, on both. A scenario whose answers are wrong is reported and not
  // measured; the others still are.
  log('checking answers');
  const verified = {};
  const verify = async (name, fn) => {
    try {
      results.correctness[name] = await fn();
      verified[name] = true;
    } catch (error) {
      verified[name] = false;
      results.correctness[name] = { wrong: error.message };
      log(`WRONG ANSWERS ${name}: ${error.message.slice(0, 500)} (not measured)`);
    }
  };

  await verify('walletDefinitions', async () => {
    const s = await gqlData(service, Q.catalog);
    const f = await gqlData(floor, Q.catalog);
    check(
      s.walletDefinitions.length === ACTIVE_DEFINITIONS,
      `service catalog has ${s.walletDefinitions.length} definitions, expected ${ACTIVE_DEFINITIONS}`,
    );
    check(
      s.walletDefinitions.map((d) => d.slug).join() === 'binance,hyperliquid,okx,dydx',
      'catalog order',
    );
    check(
      JSON.stringify(s) === JSON.stringify(f),
      'service and floor answer the catalog identically',
    );
    return `${ACTIVE_DEFINITIONS} active definitions in order; identical answers from service and floor`;
  });

  for (const size of [10, 100, 1_000]) {
    await verify(`userWallets (${size})`, async () => {
      const s = await gqlData(service, Q.userWallets, undefined, tokens.list[size]);
      const f = await gqlData(floor, Q.userWallets, undefined, tokens.list[size]);
      check(
        s.userWallets.length === size,
        `service userWallets: ${s.userWallets.length} wallets, expected ${size}`,
      );
      check(
        s.userWallets.every(
          (w) =>
            w.definition.slug === w.credential.definition.slug &&
            w.definition.features.leverage.max > 0,
        ),
        'every wallet has its definition and its credential',
      );
      check(
        JSON.stringify(s) === JSON.stringify(f),
        `service and floor answer userWallets (${size}) identically`,
      );
      return `${size} wallets, each with its definition and credential; identical answers from service and floor`;
    });
  }

  await verify('updateAiManagedState', async () => {
    const [a, b] = (await currentPool()).slice(0, 2);
    const input = {
      currentRisk: 1234.5,
      currentMaxPositionSize: 2000,
      currentLeverage: 2,
      riskScore: 40,
      marketSentiment: 'BULLISH',
      confidenceLevel: 70,
    };
    const ws = await gqlData(
      service,
      Q.write,
      { walletId: a.id, expectedVersion: a.version, input },
      tokens.agent,
    );
    const wf = await gqlData(
      floor,
      Q.write,
      { walletId: b.id, expectedVersion: b.version, input },
      tokens.agent,
    );
    for (const [w, before] of [
      [ws.updateAiManagedState, a],
      [wf.updateAiManagedState, b],
    ]) {
      check(
        w.id === before.id && w.version === before.version + 1 && w.status === 'ACTIVE',
        `write answered ${JSON.stringify(w)}`,
      );
      check(
        w.aiManagedState.currentRisk === 1234.5 &&
          w.aiManagedState.currentLeverage === 2 &&
          w.aiManagedState.marketSentiment === 'BULLISH',
        'written state answered',
      );
      const stored = await direct.collection('user_wallets').findOne({ _id: new ObjectId(w.id) });
      check(
        stored.version === before.version + 1 &&
          stored.ai_managed_state.current_risk === 1234.5 &&
          stored.ai_managed_state.market_sentiment === 'bullish',
        'written state stored',
      );
      const event = await direct
        .collection('user_wallet_events')
        .findOne({ wallet_id: new ObjectId(w.id), version: before.version + 1 });
      check(
        event?.kind === 'ai_state_changed' && event.actor === 'bench-risk-agent',
        'audit event written',
      );
    }
    const staleS = await gql(
      service,
      Q.write,
      { walletId: a.id, expectedVersion: a.version, input },
      tokens.agent,
    );
    const staleF = await gql(
      floor,
      Q.write,
      { walletId: b.id, expectedVersion: b.version, input },
      tokens.agent,
    );
    check(
      staleS.errors?.[0]?.extensions?.code === 'CONFLICT' &&
        staleF.errors?.[0]?.extensions?.code === 'CONFLICT',
      'a stale expectedVersion is a CONFLICT on both',
    );
    const tooMuch = await gql(
      service,
      Q.write,
      { walletId: a.id, expectedVersion: a.version + 1, input: { currentMaxPositionSize: 60_000 } },
      tokens.agent,
    );
    check(
      tooMuch.errors?.[0]?.extensions?.code === 'BAD_USER_INPUT',
      'a position size over maxTotalRisk is refused',
    );
    return 'version +1, state stored, audit event written, stale version CONFLICT (both); over-limit refused (service)';
  });

  const managedBodies = [];
  await verify('managedWallets (first: 100)', async () => {
    let after = null;
    const ids = [];
    let pages = 0;
    for (;;) {
      managedBodies.push(JSON.stringify({ query: Q.managed, variables: { after } }));
      const page = (await gqlData(service, Q.managed, { after }, tokens.agent)).managedWallets;
      pages++;
      ids.push(...page.edges.map((e) => e.node.id));
      if (!page.pageInfo.hasNextPage) break;
      after = page.pageInfo.endCursor;
      check(pages <= 200, 'managedWallets paging ends');
    }
    check(
      ids.length === SETTINGS.totalWallets && new Set(ids).size === ids.length,
      `managedWallets paged ${ids.length} wallets (${new Set(ids).size} distinct), expected ${SETTINGS.totalWallets}`,
    );
    check(
      ids.every((id, i) => i === 0 || ids[i - 1] < id),
      'managedWallets pages in id order',
    );
    return `${pages} pages of at most 100: ${ids.length} distinct wallets in id order`;
  });
  const batchLabel = `updateAiManagedStates (${SETTINGS.batchSize})`;
  await verify(batchLabel, async () => {
    const pool = (await currentPool()).slice(0, SETTINGS.batchSize);
    const input = (i) => ({
      currentRisk: 100 + i,
      currentMaxPositionSize: 300,
      currentLeverage: 1 + (i % 3),
      riskScore: i % 101,
      marketSentiment: 'BEARISH',
      confidenceLevel: 60,
    });
    const updates = pool.map((w, i) => ({
      walletId: w.id,
      expectedVersion: w.version,
      input: input(i),
    }));
    const outcomes = (await gqlData(service, Q.batch, { updates }, tokens.agent))
      .updateAiManagedStates;
    check(
      outcomes.length === pool.length &&
        outcomes.every(
          (o, i) =>
            !o.error &&
            o.walletId === pool[i].id &&
            o.wallet.version === pool[i].version + 1 &&
            o.wallet.aiManagedState.currentRisk === 100 + i,
        ),
      `batch answered ${JSON.stringify(outcomes.find((o) => o.error) ?? outcomes[0]).slice(0, 300)}`,
    );
    const ids = pool.map((w) => new ObjectId(w.id));
    const stored = await direct
      .collection('user_wallets')
      .find({ _id: { $in: ids } })
      .toArray();
    const byId = new Map(stored.map((w) => [w._id.toHexString(), w]));
    check(
      pool.every(
        (w, i) =>
          byId.get(w.id)?.version === w.version + 1 &&
          byId.get(w.id).ai_managed_state.current_risk === 100 + i &&
          byId.get(w.id).pending_events.length === 0,
      ),
      'every write stored, its outbox emptied',
    );
    const events = await direct.collection('user_wallet_events').countDocuments({
      $or: pool.map((w) => ({
        wallet_id: new ObjectId(w.id),
        version: w.version + 1,
        kind: 'ai_state_changed',
        actor: 'bench-risk-agent',
      })),
    });
    check(events === pool.length, `${events} audit events for ${pool.length} writes`);
    const stale = (await gqlData(service, Q.batch, { updates: updates.slice(0, 2) }, tokens.agent))
      .updateAiManagedStates;
    check(
      stale.every(
        (o, i) => o.error?.code === 'CONFLICT' && o.error.currentVersion === pool[i].version + 1,
      ),
      "a stale expectedVersion in a batch is that write's CONFLICT, with the version now",
    );
    return `${pool.length} writes: each version +1, stored, its audit event in the trail; stale versions CONFLICT with currentVersion`;
  });

  const changesBodies = [];
  const since = fixtures.changedSince.toISOString();
  await verify('managedWalletChanges (first: 100)', async () => {
    let after = null;
    const seen = [];
    for (;;) {
      changesBodies.push(JSON.stringify({ query: Q.changes, variables: { since, after } }));
      const page = (await gqlData(service, Q.changes, { since, after }, tokens.agent))
        .managedWalletChanges;
      seen.push(...page.edges.map((e) => [e.node.userChangedAt, e.node.id]));
      if (!page.pageInfo.hasNextPage) break;
      after = page.pageInfo.endCursor;
      check(changesBodies.length <= 20, 'managedWalletChanges paging ends');
    }
    const expected = await direct
      .collection('user_wallets')
      .find(
        { user_changed_at: { $gte: fixtures.changedSince } },
        { projection: { _id: 1, user_changed_at: 1 } },
      )
      .sort({ user_changed_at: 1, _id: 1 })
      .toArray();
    check(
      expected.length === SETTINGS.changedWallets,
      `${expected.length} wallets changed since, expected ${SETTINGS.changedWallets}`,
    );
    check(
      JSON.stringify(seen) ===
        JSON.stringify(expected.map((w) => [w.user_changed_at.toISOString(), w._id.toHexString()])),
      'the feed pages every changed wallet once, oldest change first',
    );
    return `${changesBodies.length} pages of at most 100: the ${seen.length} wallets changed since, in (userChangedAt, id) order`;
  });
  log(
    Object.values(verified).every(Boolean)
      ? 'answers are right on both'
      : `answers wrong for: ${Object.keys(verified)
          .filter((k) => !verified[k])
          .join(', ')}`,
  );

  // Specs of the scenarios.
  const S = {
    walletDefinitions: {
      kind: 'static',
      body: JSON.stringify({ query: Q.catalog }),
      check: { type: 'definitions', count: ACTIVE_DEFINITIONS },
    },
    ...Object.fromEntries(
      [10, 100, 1_000].map((size) => [
        `userWallets (${size})`,
        {
          kind: 'static',
          token: tokens.list[size],
          body: JSON.stringify({ query: Q.userWallets }),
          check: { type: 'userWallets', count: size },
        },
      ]),
    ),
    updateAiManagedState: {
      kind: 'write',
      token: tokens.agent,
      query: Q.write,
      check: { type: 'write' },
    },
    'managedWallets (first: 100)': {
      kind: 'cycle',
      token: tokens.agent,
      bodies: managedBodies,
      check: { type: 'managed', count: 100 },
    },
    [batchLabel]: {
      kind: 'batch',
      token: tokens.agent,
      query: Q.batch,
      size: SETTINGS.batchSize,
      check: { type: 'batch' },
    },
    'managedWalletChanges (first: 100)': {
      kind: 'cycle',
      token: tokens.agent,
      bodies: changesBodies,
      check: { type: 'changes', count: 100 },
    },
  };

  // 6. Throughput and latency, service and floor alternating (the order flips every scenario).
  const measured = (results.scenarios = {});
  // ABBA: the first server runs half its time before the other's whole run and half after it,
  // so drift in the machine or the database over the run weighs on both alike.
  const pair = async (label, seconds, order) => {
    if (!verified[label]) return;
    const row = {
      connections: SETTINGS.connections,
      seconds,
      order: order.map((t) => t.name).join(' -> '),
    };
    if (order.length === 1) {
      row[order[0].name] = await phase(order[0], label, S[label], seconds);
    } else {
      const [a, b] = order;
      const halfA = seconds / 2;
      await phase(a, label, S[label], halfA);
      row[b.name] = await phase(b, label, S[label], seconds);
      row[a.name] = await phase(a, label, S[label], halfA, { warmup: false });
      row.order = `${a.name} ${halfA} s, ${b.name} ${seconds} s, ${a.name} ${halfA} s`;
    }
    if (row.service && row.floor?.rps > 0)
      row.ratio = Math.round((row.service.rps / row.floor.rps) * 1000) / 1000;
    measured[label] = row;
  };
  const half = Math.max(3, Math.round(SETTINGS.phaseSeconds / 2));
  await pair('walletDefinitions', SETTINGS.phaseSeconds, [service, floor]);
  await pair('userWallets (100)', SETTINGS.phaseSeconds, [floor, service]);
  await pair('updateAiManagedState', SETTINGS.phaseSeconds, [service, floor]);
  await pair('userWallets (10)', half, [floor, service]);
  await pair('managedWallets (first: 100)', SETTINGS.phaseSeconds, [service]);
  await pair(batchLabel, SETTINGS.phaseSeconds, [service]);
  await pair('managedWalletChanges (first: 100)', SETTINGS.phaseSeconds, [service]);

  // 6b. Live events (issue 13): 50 agents' subscriptions over graphql-ws. First the delivery of
  // events to all of them while agents write at a steady 100 writes/s (write to first sight, every
  // write and subscriber counted); then the write path's throughput with them connected, against
  // the same write scenario without them, ABBA (without, with, without).
  if (verified.updateAiManagedState) {
    log(
      `live events: ${SETTINGS.liveSubscribers} subscribers, ${SETTINGS.liveWritesPerSecond} writes/s for ${SETTINGS.phaseSeconds} s`,
    );
    const label = 'updateAiManagedState';
    const halfWithout = SETTINGS.phaseSeconds / 2;
    const before = await phase(service, label, S[label], halfWithout);
    const subscribers = await connectSubscribers(
      service.url,
      tokens.agent,
      SETTINGS.liveSubscribers,
    );
    let delivery;
    let withSubscribers;
    try {
      delivery = await measureDelivery({
        baseUrl: service.url,
        token: tokens.agent,
        walletIds: writePoolIds,
        subscribers,
        perSecond: SETTINGS.liveWritesPerSecond,
        seconds: SETTINGS.phaseSeconds,
      });
      withSubscribers = await phase(
        service,
        `${label} (with ${SETTINGS.liveSubscribers} subscribers)`,
        S[label],
        SETTINGS.phaseSeconds,
        { warmup: false },
      );
    } finally {
      await disconnectSubscribers(subscribers);
    }
    const after = await phase(service, label, S[label], halfWithout, { warmup: false });
    const withoutRps = Math.round(((before.rps + after.rps) / 2) * 10) / 10;
    results.live = {
      delivery,
      withoutSubscribers: { rps: withoutRps, errors: before.errors + after.errors },
      withSubscribers,
      ratio: Math.round((withSubscribers.rps / withoutRps) * 1000) / 1000,
    };
    log(
      `live events: p50 ${delivery.p50Ms} ms, p99 ${delivery.p99Ms} ms, ${delivery.missed} missed of ${delivery.writes * delivery.subscribers}; writes ${withSubscribers.rps} req/s with subscribers vs ${withoutRps} without`,
    );
  }

  // 6c. The largest allowed request in a loop (issue 17), and another user's `me` meanwhile: the
  // cost limit must leave the service answering everyone else.
  {
    const heavyBody = JSON.stringify({
      query: Q.heavy,
      variables: { id: fixtures.heavyCredentialId },
    });
    const sample = await gqlData(
      service,
      Q.heavy,
      { id: fixtures.heavyCredentialId },
      tokens.list[10],
    );
    const snapshots = sample.credential.balanceHistory;
    check(
      snapshots.length === SETTINGS.heavySnapshots &&
        snapshots.every((b) => b.balances.length === SETTINGS.heavyAssets),
      `the largest allowed request answers ${SETTINGS.heavySnapshots} snapshots of ${SETTINGS.heavyAssets} assets`,
    );
    log(
      `largest allowed request (${JSON.stringify(sample).length} bytes) on ${SETTINGS.heavyConnections} connections, me on 1, ${SETTINGS.phaseSeconds} s`,
    );
    const [heavy, me] = await Promise.all([
      runLoad({
        url: `${service.url}/graphql`,
        connections: SETTINGS.heavyConnections,
        duration: SETTINGS.phaseSeconds,
        kind: 'static',
        token: tokens.list[10],
        body: heavyBody,
        label: 'heavy @service',
      }),
      runLoad({
        url: `${service.url}/graphql`,
        connections: 1,
        duration: SETTINGS.phaseSeconds,
        kind: 'static',
        token: tokens.list[100],
        body: JSON.stringify({ query: Q.me }),
        label: 'me beside heavy @service',
      }),
    ]);
    results.heavy = { heavy: summary(heavy), me: summary(me) };
    log(
      `largest allowed request ${heavy.rps} req/s p99 ${heavy.latencyMs.p99} ms; me beside it ${me.rps} req/s p50 ${me.latencyMs.p50} ms p99 ${me.latencyMs.p99} ms, errors ${heavy.errors + me.errors}`,
    );
  }

  // 7. RSS over a constant mixed load (the four operations, round robin) on the service. RSS
  // saw-tooths with garbage collection, so the start and the end are the medians of 10 s windows:
  // the first after a settling time, and the last.
  const mixed = [
    'userWallets (100)',
    'walletDefinitions',
    'updateAiManagedState',
    'managedWallets (first: 100)',
  ].filter((k) => verified[k]);
  if (mixed.length > 0) {
    const runSeconds = SETTINGS.rssSettleSeconds + SETTINGS.rssSeconds;
    log(`RSS: ${runSeconds} s of constant mixed load on the service (${mixed.join(', ')})`);
    const samples = [];
    const mix = { kind: 'mix', parts: mixed.map((k) => ({ ...S[k], label: k })) };
    await settle();
    const mixSpec = {
      url: `${service.url}/graphql`,
      connections: SETTINGS.connections,
      duration: runSeconds,
      label: 'rss mix @service',
      ...mix,
      ...(await specFor(mix)),
    };
    const mixStarted = performance.now();
    const sampler = setInterval(() => {
      try {
        samples.push({
          t: Math.round((performance.now() - mixStarted) / 100) / 10,
          rssMB: rssMB(serviceChild.proc.pid),
        });
      } catch {
        // The process is gone: the run reports it.
      }
    }, 500);
    const mixRun = await runLoad(mixSpec);
    clearInterval(sampler);
    if (serviceChild.exited)
      throw new Error(
        `the service exited (code ${serviceChild.exitCode}, signal ${serviceChild.exitSignal}) under constant load:\n${tail(serviceChild.logFile)}`,
      );
    const median = (values) => {
      const sorted = [...values].sort((a, b) => a - b);
      return sorted[Math.floor(sorted.length / 2)];
    };
    const windowS = Math.min(10, SETTINGS.rssSeconds / 2);
    const last = samples.at(-1)?.t ?? 0;
    const startWindow = samples
      .filter((x) => x.t >= SETTINGS.rssSettleSeconds && x.t < SETTINGS.rssSettleSeconds + windowS)
      .map((x) => x.rssMB);
    const endWindow = samples.filter((x) => x.t > last - windowS).map((x) => x.rssMB);
    const startMB = median(startWindow);
    const endMB = median(endWindow);
    results.rss.constantLoad = {
      operations: `${mixed.join(', ')}: round robin`,
      connections: SETTINGS.connections,
      seconds: SETTINGS.rssSeconds,
      settleSeconds: SETTINGS.rssSettleSeconds,
      startMB,
      startWindow: `median of ${startWindow.length} samples in ${SETTINGS.rssSettleSeconds}-${SETTINGS.rssSettleSeconds + windowS} s`,
      endMB,
      endWindow: `median of ${endWindow.length} samples in the last ${windowS} s`,
      minMB: Math.min(...samples.map((x) => x.rssMB)),
      maxMB: Math.max(...samples.map((x) => x.rssMB)),
      growth: Math.round(((endMB - startMB) / startMB) * 1000) / 1000,
      rps: mixRun.rps,
      p50: mixRun.latencyMs.p50,
      p99: mixRun.latencyMs.p99,
      requests: mixRun.requests,
      errors: mixRun.errors,
      errorSamples: mixRun.errorSamples,
      samples,
    };
    log(
      `RSS ${startMB} MB -> ${endMB} MB (growth ${(results.rss.constantLoad.growth * 100).toFixed(1)} %, min ${results.rss.constantLoad.minMB}, max ${results.rss.constantLoad.maxMB}), ${mixRun.rps} req/s, errors ${mixRun.errors}`,
    );
  }

  // 8. Commands per request, one request at a time, everything warm by now.
  const counted = { service: {}, floor: {} };
  const countBoth = async (label, amount, targets = [service, floor]) => {
    if (!verified[label]) return;
    for (const target of targets)
      counted[target.name][label] = await countCommands(target, label, S[label], amount);
  };
  await countBoth('walletDefinitions', 50);
  await countBoth('userWallets (10)', 50);
  await countBoth('userWallets (100)', 30);
  await countBoth('userWallets (1000)', 10);
  await countBoth('updateAiManagedState', 50);
  await countBoth('managedWallets (first: 100)', 20, [service]);
  await countBoth(batchLabel, 10, [service]);
  await countBoth('managedWalletChanges (first: 100)', 20, [service]);
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

  // 9. The 1,000-wallet list last: its answers are megabytes, and the RSS they leave behind
  // would otherwise blur the constant-load phase.
  await pair('userWallets (1000)', SETTINGS.phaseSeconds, [service, floor]);
  await sleep(1_000);
  results.rss.endMB = rssMB(serviceChild.proc.pid);
  results.rss.floorEndMB = rssMB(floorChild.proc.pid);

  // The catalog after an admin write: the next read must show it (a cache must be dropped).
  await verify('walletDefinitions after an admin write', async () => {
    const stale = [];
    for (let i = 0; i < 3; i++) {
      for (let r = 0; r < 5; r++) await gqlData(service, Q.catalog);
      const description = `bench check ${i} ${hex(4)}`;
      await gqlData(
        service,
        Q.updateDefinition,
        { slug: 'okx', input: { description } },
        tokens.admin,
      );
      const read = await gqlData(service, Q.catalog);
      const okx = read.walletDefinitions.find((d) => d.slug === 'okx');
      if (okx?.description !== description)
        stale.push({ wrote: description, read: okx?.description });
    }
    await gqlData(
      service,
      Q.updateDefinition,
      { slug: 'okx', input: { description: DEFINITIONS[2].description } },
      tokens.admin,
    );
    check(stale.length === 0, `stale reads after an admin write: ${JSON.stringify(stale)}`);
    return '3 of 3 reads right after an admin write showed it';
  });

  // 10. Targets. A target whose scenario answered wrongly, or was not measured, fails.
  const commandsS = results.commands.service;
  const t = (name, pass, detail) =>
    results.targets.push({ target: name, pass: Boolean(pass), detail });
  const pct = (v) => `${Math.round(v * 1000) / 10} %`;
  const errorsIn = (...rows) => rows.reduce((sum, r) => sum + (r?.errors ?? 0), 0);
  const missing = (...labels) => {
    const wrong = labels.filter((l) => !verified[l]);
    return wrong.length
      ? `not measured: wrong answers from ${wrong.join(', ')} (see correctness)`
      : null;
  };
  const target = (name, labels, evaluate) => {
    const why = missing(...labels);
    if (why) return t(name, false, why);
    const [pass, detail] = evaluate();
    t(name, pass, detail);
  };

  const sizes = [10, 100, 1_000];
  target(
    'userWallets: DB commands per request the same at 10, 100 and 1,000 wallets, at most 4',
    sizes.map((n) => `userWallets (${n})`),
    () => {
      const counts = sizes.map((n) => commandsS[`userWallets (${n})`].perRequest);
      return [
        counts.every((c) => c === counts[0]) &&
          counts[0] <= TARGETS.maxCommandsPerList &&
          sizes.every((n) => commandsS[`userWallets (${n})`].errors === 0),
        `${counts.join(' / ')} (10 / 100 / 1,000 wallets); ${JSON.stringify(commandsS['userWallets (1000)'].byCommand)} at 1,000`,
      ];
    },
  );
  target(
    'userWallets (100 wallets): throughput at least 70 % of the floor',
    ['userWallets (100)'],
    () => {
      const list = measured['userWallets (100)'];
      return [
        list.ratio >= TARGETS.listThroughputShare && errorsIn(list.service, list.floor) === 0,
        `${list.service.rps} vs ${list.floor.rps} req/s = ${pct(list.ratio)}; errors ${errorsIn(list.service)} / ${errorsIn(list.floor)}`,
      ];
    },
  );
  target(
    `userWallets (100 wallets): p99 at most 3 x p50 at ${SETTINGS.connections} connections`,
    ['userWallets (100)'],
    () => {
      const { service: s } = measured['userWallets (100)'];
      return [
        s.p99 <= TARGETS.listTailFactor * s.p50 && s.errors === 0,
        `p50 ${s.p50} ms, p99 ${s.p99} ms = ${Math.round((s.p99 / s.p50) * 100) / 100} x`,
      ];
    },
  );
  target("walletDefinitions: at least the floor's throughput", ['walletDefinitions'], () => {
    const c = measured.walletDefinitions;
    return [
      c.ratio >= TARGETS.catalogThroughputShare && errorsIn(c.service, c.floor) === 0,
      `${c.service.rps} vs ${c.floor.rps} req/s = ${pct(c.ratio)}; errors ${errorsIn(c.service)} / ${errorsIn(c.floor)}`,
    ];
  });
  target(
    'walletDefinitions: no stale read after an admin write',
    ['walletDefinitions', 'walletDefinitions after an admin write'],
    () => [true, results.correctness['walletDefinitions after an admin write']],
  );
  target(
    "updateAiManagedState: at least 60 % of the floor's throughput, every limit check in the one conditional update",
    ['updateAiManagedState'],
    () => {
      const w = measured.updateAiManagedState;
      const limitKeys = [
        '_id',
        'version',
        'user_limits.max_total_risk',
        'user_limits.trading_mode',
      ];
      const byCommand = commandsS.updateAiManagedState.byCommand;
      // The state's one conditional update; the audit outbox's pull (an `update` that changes no
      // state: the events are already stored with the change) is counted apart.
      const updatesPerWrite = byCommand['findAndModify user_wallets'] ?? 0;
      const pullsPerWrite = byCommand['update user_wallets'] ?? 0;
      const onFilter = updates.service?.query ?? [];
      const pushesEvents = (updates.service?.update.$push ?? []).includes('pending_events');
      return [
        w.ratio >= TARGETS.writeThroughputShare &&
          errorsIn(w.service, w.floor) === 0 &&
          updatesPerWrite === 1 &&
          pushesEvents &&
          limitKeys.every((k) => onFilter.includes(k)),
        `${w.service.rps} vs ${w.floor.rps} req/s = ${pct(w.ratio)}; errors ${errorsIn(w.service)} / ${errorsIn(w.floor)}; ${updatesPerWrite} conditional update per write on {${onFilter.join(', ')}}, carrying its audit events${pushesEvents ? '' : ' (MISSING)'}; ${pullsPerWrite} outbox pull`,
      ];
    },
  );
  target(
    `${batchLabel}: wallet writes per second at least 5 x updateAiManagedState's`,
    [batchLabel, 'updateAiManagedState'],
    () => {
      const batchRow = measured[batchLabel].service;
      const single = measured.updateAiManagedState.service;
      const writesPerSecond = batchRow.rps * SETTINGS.batchSize;
      const counted = commandsS[batchLabel];
      return [
        writesPerSecond >= TARGETS.batchWriteFactor * single.rps &&
          errorsIn(batchRow, single) === 0 &&
          counted.errors === 0,
        `${Math.round(writesPerSecond)} writes/s (${batchRow.rps} req/s x ${SETTINGS.batchSize}) vs ${single.rps} = ${Math.round((writesPerSecond / single.rps) * 100) / 100} x; errors ${errorsIn(batchRow)}; ${counted.perRequest} commands per batch ${JSON.stringify(counted.byCommand)}`,
      ];
    },
  );
  target(
    "managedWalletChanges (first: 100): at least managedWallets (first: 100)'s throughput",
    ['managedWalletChanges (first: 100)', 'managedWallets (first: 100)'],
    () => {
      const changes = measured['managedWalletChanges (first: 100)'].service;
      const managed = measured['managedWallets (first: 100)'].service;
      return [
        changes.rps >= TARGETS.changesThroughputShare * managed.rps &&
          errorsIn(changes, managed) === 0,
        `${changes.rps} vs ${managed.rps} req/s = ${pct(changes.rps / managed.rps)} (${SETTINGS.changedWallets} of ${SETTINGS.totalWallets} wallets changed); errors ${errorsIn(changes)}`,
      ];
    },
  );
  for (const size of [100, 1_000]) {
    const label = `userWallets (${size})`;
    target(`${label}: the service's CPU per request at most 1.25 x the floor's`, [label], () => {
      const { service: s, floor: f } = measured[label];
      const ratio = s.cpu.serverMsPerRequest / f.cpu.serverMsPerRequest;
      return [
        ratio <= TARGETS.listCpuFactor && errorsIn(s, f) === 0,
        `${s.cpu.serverMsPerRequest} vs ${f.cpu.serverMsPerRequest} CPU ms/req = ${Math.round(ratio * 100) / 100} x`,
      ];
    });
  }
  const live = results.live;
  t(
    `live events: ${SETTINGS.liveSubscribers} subscribers, ${SETTINGS.liveWritesPerSecond} writes/s: p99 write to delivery under 2 s, none missed`,
    live &&
      live.delivery.p99Ms !== null &&
      live.delivery.p99Ms < TARGETS.liveP99Ms &&
      live.delivery.missed === 0 &&
      live.delivery.writeErrors === 0 &&
      live.delivery.subscriberErrors === 0,
    live
      ? `p50 ${live.delivery.p50Ms} ms, p99 ${live.delivery.p99Ms} ms, max ${live.delivery.maxMs} ms; ${live.delivery.deliveries} deliveries of ${live.delivery.writes} writes, ${live.delivery.missed} missed; ${live.delivery.writesPerSecond} writes/s`
      : 'not measured',
  );
  t(
    `live events: updateAiManagedState with ${SETTINGS.liveSubscribers} subscribers at least 90 % of its throughput without`,
    live &&
      live.ratio >= TARGETS.liveWriteShare &&
      live.withSubscribers.errors === 0 &&
      live.withoutSubscribers.errors === 0,
    live
      ? `${live.withSubscribers.rps} vs ${live.withoutSubscribers.rps} req/s = ${pct(live.ratio)}`
      : 'not measured',
  );
  const heavy = results.heavy;
  t(
    `another user's me at p99 within 200 ms while the largest allowed request runs on ${SETTINGS.heavyConnections} connections`,
    heavy &&
      heavy.me.p99 <= TARGETS.meP99WithHeavyMs &&
      heavy.me.errors === 0 &&
      heavy.heavy.errors === 0,
    heavy
      ? `me p50 ${heavy.me.p50} ms, p99 ${heavy.me.p99} ms (${heavy.me.rps} req/s); the large request ${heavy.heavy.rps} req/s, p99 ${heavy.heavy.p99} ms`
      : 'not measured',
  );
  t(
    'idle RSS after start-up at most 150 MB',
    results.rss.idleMB <= TARGETS.idleRssMB,
    `${results.rss.idleMB} MB`,
  );
  const rl = results.rss.constantLoad;
  t(
    `RSS growth over ${SETTINGS.rssSeconds} s of constant load under 10 %`,
    rl && rl.growth < TARGETS.rssGrowth && rl.errors === 0,
    rl
      ? `${rl.startMB} -> ${rl.endMB} MB (${pct(rl.growth)}; min ${rl.minMB}, max ${rl.maxMB} MB) at ${rl.rps} req/s, errors ${rl.errors}`
      : 'not measured',
  );
  t(
    'process start to /ready 200 under 3 s (database running)',
    results.startup.serviceMs < TARGETS.startupMs,
    `${results.startup.serviceMs} ms`,
  );
  const wrong = Object.keys(verified).filter((k) => !verified[k]);
  t(
    '(instrument) every scenario answered right before it was measured',
    wrong.length === 0,
    wrong.length ? `wrong: ${wrong.join(', ')}` : `${Object.keys(verified).length} checks`,
  );
  const allRows = Object.values(measured)
    .flatMap((r) => [r.service, r.floor])
    .filter(Boolean);
  const totalErrors = allRows.reduce((s, r) => s + r.errors, 0);
  t(
    '(instrument) every measured phase answered without errors',
    totalErrors === 0,
    `${totalErrors} errors in ${allRows.reduce((s, r) => s + r.requests, 0)} requests`,
  );

  results.pass = results.targets.every((x) => x.pass);
  results.warnings = [];
  const busy = Object.entries(measured).flatMap(([scenario, row]) =>
    ['service', 'floor']
      .filter((n) => row[n]?.cpu?.otherCores > 0.2)
      .map((n) => `${scenario} @${n}: ${row[n].cpu.otherCores} cores`),
  );
  if (busy.length) {
    results.warnings.push(
      `other processes used CPU during measured phases (${busy.join('; ')}): this machine was not quiet, compare with care and run again`,
    );
  }
  return { service, floor };
}

// ---------------------------------------------------------------------------------------------
// Output.

function printTable() {
  const rows = [];
  const commands = results.commands;
  const fmt = (v, d = 1) => (v == null ? '-' : Number(v).toFixed(d));
  for (const [scenario, row] of Object.entries(results.scenarios)) {
    for (const name of ['service', 'floor']) {
      const r = row[name];
      if (!r) continue;
      rows.push([
        name === 'service' ? scenario : '',
        name,
        fmt(r.rps),
        fmt(r.p50, 2),
        fmt(r.p99, 2),
        String(r.errors),
        fmt(commands[name]?.[scenario]?.perRequest, 2),
        fmt(r.cpu?.serverMsPerRequest, 2),
        fmt(r.cpu?.dbMsPerRequest, 2),
        fmt(r.cpu?.otherCores, 2),
        fmt(commands[name]?.[scenario]?.sequential.meanMs, 2),
        fmt(commands[name]?.[scenario]?.sequential.dbMs, 2),
        name === 'floor' && row.ratio != null ? `${fmt(row.ratio * 100)} %` : '',
      ]);
    }
  }
  const head = [
    `scenario (${SETTINGS.connections} connections)`,
    'server',
    'req/s',
    'p50 ms',
    'p99 ms',
    'errors',
    'cmds/req',
    'CPU ms/req',
    'DB CPU ms/req',
    'other cores',
    '1-conn ms',
    'of it DB ms',
    'service/floor',
  ];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells) =>
    `| ${cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join(' | ')} |`;
  const out = [
    line(head),
    `|${widths.map((w, i) => (i < 2 ? `:${'-'.repeat(w + 1)}` : `${'-'.repeat(w + 1)}:`)).join('|')}|`,
    ...rows.map(line),
  ];
  for (const [scenario, outcome] of Object.entries(results.correctness)) {
    if (outcome?.wrong)
      out.push(
        `| ${scenario} | wrong answers, not measured: ${outcome.wrong.slice(0, 200).replace(/\n/g, ' ')} |`,
      );
  }
  out.push('');
  out.push(
    `service start to /ready: ${results.startup.serviceMs} ms; RSS idle ${results.rss.idleMB} MB, end ${results.rss.endMB} MB; ${SETTINGS.rssSeconds} s constant load ${results.rss.constantLoad?.startMB} -> ${results.rss.constantLoad?.endMB} MB (${fmt((results.rss.constantLoad?.growth ?? 0) * 100)} %)`,
  );
  out.push(
    `floor: start ${results.startup.floorMs} ms, RSS idle ${results.rss.floorIdleMB} MB, end ${results.rss.floorEndMB} MB`,
  );
  out.push(
    'CPU ms/req: CPU time of the server (DB CPU: of the database engine) over the phase, per request; other cores: CPU used meanwhile by processes not in the run (should be ~0).',
  );
  out.push(
    "1-conn ms: mean time of one request alone (sequential run); of it DB ms: the database commands' share (proxy to engine and back).",
  );
  results.table = out.join('\n');
  process.stdout.write(`\n${results.table}\n\n`);
  for (const x of results.targets)
    process.stdout.write(`${x.pass ? 'PASS' : 'FAIL'}  ${x.target}: ${x.detail}\n`);
  for (const warning of results.warnings ?? []) process.stdout.write(`WARN  ${warning}\n`);
  process.stdout.write(
    `\n${results.pass ? 'PASS' : 'FAIL'}: ${results.targets.filter((x) => x.pass).length} of ${results.targets.length} targets met\n`,
  );
}

function writeResults() {
  const dir = join(ROOT, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'latest.json');
  writeFileSync(`${file}.tmp`, `${JSON.stringify(results, null, 2)}\n`);
  renameSync(`${file}.tmp`, file);
  log(`wrote ${file}`);
}

const runStarted = performance.now();
let exitCode;
try {
  await main();
  results.totalSeconds = Math.round((performance.now() - runStarted) / 1000);
  printTable();
  writeResults();
  exitCode = results.pass ? 0 : 1;
} catch (error) {
  if (interrupted) await new Promise(() => undefined); // the signal handler exits once all is stopped
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
