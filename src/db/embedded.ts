import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { delimiter, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import type { Config, MongodDownload } from '../core/config';
import type { Logger } from '../core/logger';

/**
 * The database a developer gets when MONGODB_URI is unset:
 *  1. a real mongod through mongodb-memory-server, when a binary is on this machine (MONGOD_BINARY,
 *     the search path, mongodb-memory-server's download cache);
 *  2. a real mongod that mongodb-memory-server downloads, on a machine with no JDK (a developer's
 *     laptop with internet: MONGOD_DOWNLOAD=auto), or first whatever the machine has
 *     (MONGOD_DOWNLOAD=true);
 *  3. otherwise mongo-java-server (MongoDB wire protocol in a JVM, H2 data file), resolved from
 *     Maven Central into .cache/ on first use and started by src/db/java/MongoLauncher.java: a
 *     machine with a JDK and Maven and no network (ours).
 * Both listen on 127.0.0.1 only.
 */

export interface EmbeddedEngine {
  uri: string;
  kind: 'mongod' | 'mongo-java-server' | 'shared';
  stop(): Promise<void>;
}

export interface EmbeddedOptions {
  /** Where data lives across restarts; null keeps it in memory (tests). */
  dataDir: string | null;
  port?: number;
  /**
   * A mongod binary to use; else one is looked for on the search path and in the download cache.
   */
  mongodBinary?: string;
  searchPath?: string;
  /** Whether mongodb-memory-server may download a mongod (default auto: when no JDK is here). */
  download?: MongodDownload;
  logger?: Logger;
}

const execFileAsync = promisify(execFile);
const PROJECT_ROOT = resolve(__dirname, '..', '..');
const JAVA_DIR = join(PROJECT_ROOT, 'src', 'db', 'java');
const CACHE_DIR = join(PROJECT_ROOT, '.cache');
const STARTUP_TIMEOUT_MS = 120_000;
const DOWNLOAD_TIMEOUT_MS = 60_000;

export async function startEmbeddedEngine(options: EmbeddedOptions): Promise<EmbeddedEngine> {
  const shared = options.dataDir ? findRunningEngine(options.dataDir) : undefined;
  if (shared) {
    options.logger?.info(
      { uri: shared.uri, engine: shared.kind },
      'using the embedded database already running on this data directory',
    );
    return { uri: shared.uri, kind: 'shared', stop: () => Promise.resolve() };
  }
  const engine = await startOwnEngine(options);
  if (!options.dataDir) return engine;
  // Other processes on the same data (npm run seed, rotate-keys, a second npm start) join this
  // engine through the note instead of fighting over its data file.
  const dataDir = options.dataDir;
  writeEngineNote(dataDir, engine.uri, engine.kind);
  return {
    ...engine,
    stop: async () => {
      removeEngineNote(dataDir);
      await engine.stop();
    },
  };
}

async function startOwnEngine(options: EmbeddedOptions): Promise<EmbeddedEngine> {
  const mongod = options.mongodBinary ?? (await locateMongod(options.searchPath));
  const jdk = hasJdk(options.searchPath);
  const download = options.download ?? 'auto';
  if (mongod || download === 'true' || (download === 'auto' && !jdk)) {
    try {
      return await startMongod(options, mongod);
    } catch (error) {
      if (!jdk)
        throw new Error(
          'no database engine could be started: mongod could not be ' +
            (mongod ? 'started' : 'downloaded (is there internet?)') +
            ', and mongo-java-server needs a JDK 17+ and Maven; or set MONGODB_URI',
          { cause: error },
        );
      options.logger?.warn(
        { err: error },
        'mongod could not be started; falling back to mongo-java-server',
      );
    }
  }
  return startJavaServer(options);
}

/** java and mvn on the search path: what mongo-java-server needs. */
function hasJdk(searchPath: string | undefined): boolean {
  const dirs = (searchPath ?? '').split(delimiter).filter(Boolean);
  return ['java', 'mvn'].every((tool) => dirs.some((dir) => existsSync(join(dir, tool))));
}

/** A running engine leaves a note with its URI (and its owner's pid) beside its data. */
export function engineNotePath(dataDir: string): string {
  return join(dataDir, 'mongo', 'engine.json');
}

export function writeEngineNote(
  dataDir: string,
  uri: string,
  kind: EmbeddedEngine['kind'] = 'shared',
): void {
  mkdirSync(join(dataDir, 'mongo'), { recursive: true });
  writeFileSync(engineNotePath(dataDir), JSON.stringify({ uri, kind, pid: process.pid }));
}

export function removeEngineNote(dataDir: string): void {
  rmSync(engineNotePath(dataDir), { force: true });
}

function findRunningEngine(
  dataDir: string,
): { uri: string; kind: EmbeddedEngine['kind'] } | undefined {
  const file = engineNotePath(dataDir);
  if (!existsSync(file)) return undefined;
  try {
    const note = JSON.parse(readFileSync(file, 'utf8')) as {
      uri: string;
      kind?: EmbeddedEngine['kind'];
      pid: number;
    };
    process.kill(note.pid, 0);
    return { uri: note.uri, kind: note.kind ?? 'shared' };
  } catch {
    // A note left by a process that is gone: it no longer describes a running engine.
    rmSync(file, { force: true });
    return undefined;
  }
}

async function locateMongod(searchPath: string | undefined): Promise<string | undefined> {
  for (const dir of (searchPath ?? '').split(delimiter)) {
    if (dir && existsSync(join(dir, 'mongod'))) return join(dir, 'mongod');
  }
  const { DryMongoBinary } = await import('mongodb-memory-server-core/lib/util/DryMongoBinary');
  return DryMongoBinary.locateBinary(await DryMongoBinary.generateOptions());
}

async function startMongod(
  options: EmbeddedOptions,
  binary: string | undefined,
): Promise<EmbeddedEngine> {
  const { MongoMemoryServer } = await import('mongodb-memory-server-core');
  const dbPath = options.dataDir ? join(options.dataDir, 'mongod') : undefined;
  if (dbPath) mkdirSync(dbPath, { recursive: true });
  const create = MongoMemoryServer.create({
    instance: {
      ip: '127.0.0.1',
      port: options.port || undefined,
      dbPath,
      storageEngine: 'wiredTiger',
    },
    binary: binary ? { systemBinary: binary } : {},
  });
  const server = await withTimeout(create, DOWNLOAD_TIMEOUT_MS, 'mongod did not start in time');
  options.logger?.info({ dbPath: dbPath ?? 'memory' }, 'embedded mongod started');
  return {
    uri: server.getUri(),
    kind: 'mongod',
    stop: async () => {
      // doCleanup false: a persistent dbPath must survive the stop.
      await server.stop({ doCleanup: !dbPath, force: false });
    },
  };
}

async function javaClasspath(logger?: Logger): Promise<string> {
  const file = join(CACHE_DIR, 'mongo-java-server.classpath');
  if (existsSync(file)) {
    const cached = readFileSync(file, 'utf8').trim();
    if (cached && cached.split(delimiter).every((jar) => existsSync(jar))) return cached;
  }
  logger?.info('resolving mongo-java-server from Maven Central into .cache/ (first use only)');
  mkdirSync(CACHE_DIR, { recursive: true });
  try {
    await execFileAsync(
      'mvn',
      [
        '-q',
        '-B',
        '-f',
        join(JAVA_DIR, 'pom.xml'),
        `-Dmaven.repo.local=${join(CACHE_DIR, 'maven')}`,
        'dependency:build-classpath',
        `-Dmdep.outputFile=${file}`,
      ],
      { timeout: 600_000, maxBuffer: 16 * 1024 * 1024 },
    );
  } catch (error) {
    const output = (error as { stdout?: string }).stdout ?? '';
    throw new Error(
      `could not resolve mongo-java-server with Maven (is mvn installed?)\n${output.slice(-2000)}`,
      { cause: error },
    );
  }
  return readFileSync(file, 'utf8').trim();
}

async function startJavaServer(options: EmbeddedOptions): Promise<EmbeddedEngine> {
  const classpath = await javaClasspath(options.logger);
  let dataFile = '-';
  if (options.dataDir) {
    mkdirSync(join(options.dataDir, 'mongo'), { recursive: true });
    dataFile = join(options.dataDir, 'mongo', 'wallet-service.mv');
  }
  const child = spawn(
    'java',
    [
      // The JVM's full JIT (not stopped at C1): a little more CPU while it warms, twice the speed
      // after.
      // G1 with a short pause goal: the serial collector's full collections stopped the engine
      // for about 300 ms now and then (every command waiting), where G1's pauses stayed under
      // 70 ms in the benchmark's 10,000-subscriber scenario; its heap bounded to 1 GB (the engine's
      // live data there: about 250 MB).
      '-XX:+UseG1GC',
      '-XX:MaxGCPauseMillis=30',
      '-Xmx1g',
      '-Xshare:auto',
      '-cp',
      classpath,
      join(JAVA_DIR, 'MongoLauncher.java'),
      String(options.port ?? 0),
      dataFile,
      '--exit-on-stdin-close',
    ],
    { stdio: ['pipe', 'pipe', 'pipe'] },
  );
  const uri = await readUri(child);
  options.logger?.info(
    { dataFile: dataFile === '-' ? 'memory' : dataFile },
    'embedded mongo-java-server started',
  );
  return { uri, kind: 'mongo-java-server', stop: () => stopChild(child) };
}

function readUri(child: ChildProcess): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error('mongo-java-server did not start in time'));
    }, STARTUP_TIMEOUT_MS);
    child.stdout!.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      const line = stdout.split('\n').find((l) => l.startsWith('mongodb://'));
      if (line) {
        clearTimeout(timer);
        resolvePromise(line.trim());
      }
    });
    child.stderr!.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-4000);
    });
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(new Error(`could not start java (is a JDK 17+ installed?): ${error.message}`));
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      const locked = /locked/i.test(stderr)
        ? ' (its data file is in use by another process: stop it, or use its URI as MONGODB_URI)'
        : '';
      reject(new Error(`mongo-java-server exited with code ${code}${locked}\n${stderr}`));
    });
  });
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolvePromise) => {
    const kill = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.once('exit', () => {
      clearTimeout(kill);
      resolvePromise();
    });
    // SIGTERM runs the JVM's shutdown hook, which closes the H2 store cleanly.
    child.kill('SIGTERM');
  });
}

function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(message)), ms);
    }),
  ]);
}

export const EMBEDDED_DATABASE_NAME = 'wallet_service';

/**
 * MONGODB_URI when set; otherwise an embedded engine on DATA_DIR (or the one `npm run db`
 * already runs there), with the service's database name.
 */
export async function resolveDatabase(
  config: Pick<Config, 'mongodbUri' | 'dataDir' | 'embedded'>,
  logger: Logger,
): Promise<{ uri: string; engine: EmbeddedEngine | undefined }> {
  if (config.mongodbUri) return { uri: config.mongodbUri, engine: undefined };
  const engine = await startEmbeddedEngine({ dataDir: config.dataDir, ...config.embedded, logger });
  const url = new URL(engine.uri);
  url.pathname = `/${EMBEDDED_DATABASE_NAME}`;
  return { uri: url.toString(), engine };
}
