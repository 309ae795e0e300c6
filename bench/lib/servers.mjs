// The two servers under test, each behind its own counting proxy on the MongoDB wire protocol
// (bench/db-proxy.mjs), so database commands per request are counted for both without touching
// either: the service (node dist/main.js, NODE_ENV=production), timed from spawn to /ready
// answering 200, and the floor (bench/floor/server.mjs).

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { startDbProxy } from '../db-proxy.mjs';
import { mongoUri } from './database.mjs';
import { firstLine, freePort, log, onCleanup, startChild, waitReady } from './processes.mjs';
import { rssMB } from './procfs.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const require = createRequire(import.meta.url);
const env = process.env;

/** One counting proxy per server: { service, floor }. */
export async function startProxies({ db }) {
  const { host, port } = db.target;
  const service = await startDbProxy({ host, port, name: 'service' });
  const floor = await startDbProxy({ host, port, name: 'floor' });
  onCleanup(
    () => service.close(),
    () => floor.close(),
  );
  return { service, floor };
}

/**
 * The service's environment but for its port and its database, which are known only when it
 * starts: the bench reads the service's Config from it (the JWT settings its tokens need).
 */
export function serviceEnvironment({ baseEnv, tmpDir, keys }) {
  return {
    ...baseEnv,
    NODE_ENV: 'production',
    HOST: '127.0.0.1',
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
  };
}

/**
 * An instance of the service (node dist/main.js) on a free port and the database at `databaseUri`,
 * once /ready answers 200: { name, url, child, readyMs }. `extraEnv`: added to the service's
 * environment for this instance alone.
 */
export async function spawnService({ serviceEnv, tmpDir }, name, databaseUri, extraEnv = {}) {
  const port = await freePort();
  const started = performance.now();
  const nodeArgs = (env.BENCH_NODE_ARGS ?? '').split(/\s+/).filter(Boolean);
  const child = startChild(name, process.execPath, [...nodeArgs, join(ROOT, 'dist', 'main.js')], {
    env: { ...serviceEnv, ...extraEnv, PORT: String(port), MONGODB_URI: databaseUri },
    // Not the repository: no .env of a developer's can reach the run.
    cwd: tmpDir,
    logFile: join(tmpDir, `${name}.log`),
  });
  const readyMs = Math.round(await waitReady(child, port, started));
  return { name, url: `http://127.0.0.1:${port}`, child, readyMs };
}

/** The service: spawn -> /ready 200 (results.startup.serviceMs), then its idle RSS. */
export async function startService(state, proxy) {
  const { results, db } = state;
  const { url, child, readyMs } = await spawnService(
    state,
    'service',
    mongoUri(db.target, '127.0.0.1', proxy.port, 'directConnection=true'),
  );
  results.startup.serviceMs = readyMs;
  log(`service ready in ${results.startup.serviceMs} ms (pid ${child.proc.pid})`);
  await sleep(2_000);
  results.rss.idleMB = rssMB(child.proc.pid);
  log(`service idle RSS ${results.rss.idleMB} MB`);
  return { name: 'service', url, proxy, child };
}

/** The floor, once it answers /ready; its idle RSS, and both servers' database drivers. */
export async function startFloor({ results, baseEnv, tmpDir, config, db }, proxy) {
  const port = await freePort();
  const started = performance.now();
  const child = startChild(
    'floor',
    process.execPath,
    [join(ROOT, 'bench', 'floor', 'server.mjs')],
    {
      env: {
        ...baseEnv,
        PORT: String(port),
        HOST: '127.0.0.1',
        MONGODB_URI: mongoUri(db.target, '127.0.0.1', proxy.port, 'directConnection=true'),
        // The service's token settings, so both honour the same tokens.
        JWT_SECRET: config.jwt.secret,
        JWT_ISSUER: config.jwt.issuer,
        JWT_AUDIENCE: config.jwt.audience,
        NODE_ENV: 'production',
      },
      cwd: tmpDir,
      logFile: join(tmpDir, 'floor.log'),
    },
  );
  const [, floorDriver] = await firstLine(child, /^listening \S+ mongodb-driver (\S+)/, 30_000);
  results.startup.floorMs = Math.round(await waitReady(child, port, started));
  await sleep(500);
  results.rss.floorIdleMB = rssMB(child.proc.pid);
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
  return { name: 'floor', url: `http://127.0.0.1:${port}`, proxy, child };
}
