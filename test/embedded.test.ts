import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MongoClient } from 'mongodb';
import { engineNotePath, resolveDatabase, startEmbeddedEngine } from '../src/db/embedded';
import { createLogger } from '../src/logger';

const logger = createLogger({ logLevel: 'silent' });
const noMongod = { mongodBinary: undefined, allowDownload: false, searchPath: '' };

describe('the embedded engine', () => {
  it('falls back to mongo-java-server when no mongod is on this machine, and stops cleanly', async () => {
    const engine = await startEmbeddedEngine({ dataDir: null, searchPath: '/nonexistent', logger });
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
    const engine = await startEmbeddedEngine({ dataDir, mongodBinary: '/bin/false', logger });
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
      expect(note).toEqual({ uri: engine!.uri, pid: process.pid });
      // A second process on the same data joins the running engine instead of starting one.
      const joined = await startEmbeddedEngine({ dataDir, searchPath: '', logger });
      expect(joined).toMatchObject({ kind: 'shared', uri: engine!.uri });
      await joined.stop();
      expect(existsSync(engineNotePath(dataDir))).toBe(true);
    } finally {
      await engine!.stop();
    }
    expect(existsSync(engineNotePath(dataDir))).toBe(false);
  });
});
