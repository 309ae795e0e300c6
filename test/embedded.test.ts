import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MongoClient } from 'mongodb';
import { engineNotePath, resolveDatabase, startEmbeddedEngine } from '../src/db/embedded';
import { createLogger } from '../src/core/logger';

const logger = createLogger({ logLevel: 'silent' });
const noMongod = { mongodBinary: undefined, download: 'false', searchPath: '' } as const;
// The machine's PATH: java and mvn for mongo-java-server.
const PATH = process.env.PATH ?? '';

describe('the embedded engine', () => {
  it('falls back to mongo-java-server when no mongod is on this machine, and stops cleanly', async () => {
    const engine = await startEmbeddedEngine({
      dataDir: null,
      searchPath: '/nonexistent',
      download: 'false',
      logger,
    });
    expect(engine.kind).toBe('mongo-java-server');
    expect(engine.uri).toMatch(/^mongodb:\/\/127\.0\.0\.1:\d+\/$/);
    const client = await MongoClient.connect(engine.uri);
    expect(await client.db('x').command({ ping: 1 })).toMatchObject({ ok: 1 });
    await client.close();
    await engine.stop();
    await engine.stop();
    await expect(
      MongoClient.connect(engine.uri, { serverSelectionTimeoutMS: 500 }),
    ).rejects.toThrow();
  });

  it('falls back to mongo-java-server when the mongod it was given does not start', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'wallet-mongod-'));
    const engine = await startEmbeddedEngine({
      dataDir,
      mongodBinary: '/bin/false',
      searchPath: PATH,
      logger,
    });
    try {
      expect(engine.kind).toBe('mongo-java-server');
      expect(existsSync(join(dataDir, 'mongo', 'wallet-service.mv'))).toBe(true);
    } finally {
      await engine.stop();
    }
  });

  it('uses MONGODB_URI as given, starting nothing', async () => {
    const { uri, engine } = await resolveDatabase(
      { mongodbUri: 'mongodb://127.0.0.1:1/x', dataDir: '/nonexistent', embedded: noMongod },
      logger,
    );
    expect(uri).toBe('mongodb://127.0.0.1:1/x');
    expect(engine).toBeUndefined();
  });

  it('replaces a note left by an engine that is gone with its own, and removes it on stop', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'wallet-note-'));
    mkdirSync(join(dataDir, 'mongo'), { recursive: true });
    // A pid that no process has: 2^22 is above Linux's pid_max default.
    writeFileSync(
      engineNotePath(dataDir),
      JSON.stringify({ uri: 'mongodb://127.0.0.1:1/', pid: 4_194_304 }),
    );
    const { uri, engine } = await resolveDatabase(
      { mongodbUri: undefined, dataDir, embedded: noMongod },
      logger,
    );
    try {
      expect(engine!.kind).toBe('mongo-java-server');
      expect(uri).toMatch(/^mongodb:\/\/127\.0\.0\.1:\d+\/wallet_service$/);
      const note = JSON.parse(readFileSync(engineNotePath(dataDir), 'utf8')) as {
        uri: string;
        pid: number;
      };
      expect(note).toEqual({ uri: engine!.uri, kind: 'mongo-java-server', pid: process.pid });
      // A second process on the same data joins the running engine instead of starting one.
      const joined = await startEmbeddedEngine({
        dataDir,
        searchPath: '',
        download: 'false',
        logger,
      });
      expect(joined).toMatchObject({ kind: 'shared', uri: engine!.uri });
      await joined.stop();
      expect(existsSync(engineNotePath(dataDir))).toBe(true);
    } finally {
      await engine!.stop();
    }
    expect(existsSync(engineNotePath(dataDir))).toBe(false);
  });

  /**
   * mongodb-memory-server's download pointed at a mirror on 127.0.0.1 (HTTPS, as it insists, with a
   * certificate made for the test) that has nothing: what was asked of it tells whether a download
   * was tried. Nothing leaves the machine.
   */
  async function withMirror(run: (asked: string[]) => Promise<void>): Promise<void> {
    const dir = mkdtempSync(join(tmpdir(), 'wallet-mirror-'));
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-subj',
        '/CN=127.0.0.1',
        '-days',
        '1',
        '-keyout',
        join(dir, 'key.pem'),
        '-out',
        join(dir, 'cert.pem'),
      ],
      { stdio: 'ignore' },
    );
    const asked: string[] = [];
    const mirror = createHttpsServer(
      { key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) },
      (req, res) => {
        asked.push(req.url ?? '');
        res.writeHead(404).end();
      },
    );
    await new Promise<void>((resolve) => mirror.listen(0, '127.0.0.1', resolve));
    const { port } = mirror.address() as AddressInfo;
    const saved = {
      url: process.env.MONGOMS_DOWNLOAD_URL,
      tls: process.env.NODE_TLS_REJECT_UNAUTHORIZED,
    };
    process.env.MONGOMS_DOWNLOAD_URL = `https://127.0.0.1:${port}/mongodb-linux-x86_64-debian12-7.0.14.tgz`;
    // The test's own certificate: accepted for the mirror on 127.0.0.1 only, for this test only.
    process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';
    try {
      await run(asked);
    } finally {
      for (const [name, value] of [
        ['MONGOMS_DOWNLOAD_URL', saved.url],
        ['NODE_TLS_REJECT_UNAUTHORIZED', saved.tls],
      ] as const) {
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      }
      mirror.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }

  it('downloads a mongod on a machine with no JDK (MONGOD_DOWNLOAD=auto), and says so when it cannot', async () => {
    await withMirror(async (asked) => {
      // No java and no mvn on this search path.
      await expect(
        startEmbeddedEngine({ dataDir: null, searchPath: '/nonexistent', logger }),
      ).rejects.toThrow(
        /no database engine could be started: mongod could not be downloaded .*needs a JDK 17\+ and Maven; or set MONGODB_URI/,
      );
      expect(asked).toContain('/mongodb-linux-x86_64-debian12-7.0.14.tgz');
      // With MONGOD_DOWNLOAD=false nothing is downloaded: java is tried (here it runs).
      asked.length = 0;
      const engine = await startEmbeddedEngine({
        dataDir: null,
        searchPath: '/nonexistent',
        download: 'false',
        logger,
      });
      await engine.stop();
      expect(engine.kind).toBe('mongo-java-server');
      expect(asked).toEqual([]);
    });
  });

  it('with a JDK and no mongod, starts mongo-java-server without trying a download', async () => {
    await withMirror(async (asked) => {
      const engine = await startEmbeddedEngine({ dataDir: null, searchPath: PATH, logger });
      await engine.stop();
      expect(engine.kind).toBe('mongo-java-server');
      expect(asked).toEqual([]);
    });
  });
});
