import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startEmbeddedEngine, type EmbeddedEngine } from '../src/db/embedded';
import { createLogger } from '../src/core/logger';
import { startTestApp, type TestApp } from './helpers/app';
import { registerUser, type TestUser } from './helpers/factories';

/** The database goes away under a running service, and comes back. */
let engine: EmbeddedEngine;
let t: TestApp;
let user: TestUser;
const dataDir = mkdtempSync(join(tmpdir(), 'wallet-outage-'));
const logger = createLogger({ logLevel: 'silent' });

const ready = async () => (await fetch(`${t.url}/ready`)).status;
const port = () => Number(new URL(engine.uri).port);

beforeAll(async () => {
  // An engine of this file's own, on a data file, so it can be stopped and started again.
  engine = await startEmbeddedEngine({ dataDir, searchPath: '', download: 'false', logger });
  t = await startTestApp({ MONGODB_URI: `${engine.uri}outage` });
  user = await registerUser(t);
});

afterAll(async () => {
  await t.close().catch(() => undefined);
  await engine.stop();
});

describe('a database outage', () => {
  it('fails requests with "database unavailable", answers /ready 503, and recovers by itself', async () => {
    expect(await ready()).toBe(200);
    const address = port();
    await engine.stop();

    const started = Date.now();
    const during = await t.raw('{ me { id } }', {}, user.token);
    expect(during.errors![0]).toMatchObject({
      message: 'database unavailable',
      extensions: { code: 'INTERNAL_SERVER_ERROR' },
    });
    const catalog = await t.raw(
      'mutation { register(input: { email: "down@example.com", password: "long enough pw" }) { token } }',
    );
    expect(catalog.errors![0]).toMatchObject({
      message: 'database unavailable',
      extensions: { code: 'INTERNAL_SERVER_ERROR' },
    });
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(await ready()).toBe(503);
    expect(JSON.stringify(during)).not.toMatch(/127\.0\.0\.1|ECONNREFUSED|Mongo/);

    engine = await startEmbeddedEngine({
      dataDir,
      port: address,
      searchPath: '',
      download: 'false',
      logger,
    });
    const deadline = Date.now() + 30_000;
    while ((await ready()) !== 200) {
      if (Date.now() > deadline) throw new Error('the service did not recover');
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    const after = await t.raw<{ me: { id: string } }>('{ me { id } }', {}, user.token);
    expect(after.data!.me.id).toBe(user.id);
  });
});
