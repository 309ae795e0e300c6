// The database: MONGODB_URI when set (a single host; a fresh database in it, dropped at the end),
// else the service's own embedded engine (node dist/db/db-cli.js on a temporary DATA_DIR).

import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { MongoClient } from 'mongodb';
import { firstLine, log, onCleanup, startChild } from './processes.mjs';
import { processTree } from './procfs.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const env = process.env;
const DB_NAME = env.MONGODB_URI ? `wallet_bench_${Date.now().toString(36)}` : 'wallet_bench';

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

/** The bench's database on `host:port` (the database's own, or a counting proxy in front of it). */
export function mongoUri({ userinfo, query }, host, port, extra = '') {
  const params = [query, extra].filter(Boolean).join('&');
  return `mongodb://${userinfo ? `${userinfo}@` : ''}${host}:${port}/${DB_NAME}${params ? `?${params}` : ''}`;
}

/**
 * Starts or finds the database and connects to it directly; fills results.database. Returns
 * { target (parsed URI), uri (the bench's database, directly), direct (a Db of the plain driver on
 * it), enginePids (empty on MONGODB_URI) }.
 */
export async function startDatabase({ results, baseEnv, tmpDir }) {
  let target;
  let enginePids = [];
  if (env.MONGODB_URI) {
    target = parseMongoUri(env.MONGODB_URI);
    results.database = {
      kind: 'MONGODB_URI',
      host: `${target.host}:${target.port}`,
      name: DB_NAME,
    };
    log(`database: ${target.host}:${target.port}, database ${DB_NAME} (dropped at the end)`);
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
    target = parseMongoUri(uri);
    results.database = {
      kind: 'embedded engine (db-cli: mongo-java-server unless a mongod is installed)',
      host: `${target.host}:${target.port}`,
      name: DB_NAME,
      startSeconds: Math.round((performance.now() - started) / 100) / 10,
    };
    log(`database: ${uri} in ${results.database.startSeconds} s`);
  }
  const uri = mongoUri(target, target.host, target.port, 'directConnection=true');
  const directClient = new MongoClient(uri);
  await directClient.connect();
  const direct = directClient.db();
  onCleanup(async () => {
    if (env.MONGODB_URI) await direct.dropDatabase().catch(() => undefined);
    await directClient.close();
  });
  return { target, uri, direct, enginePids };
}
