import { expect } from '@jest/globals';
import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import mongoose, { Types, type mongo } from 'mongoose';
import { systemCtx, type SystemContext } from '../src/core/context';
import { createLogger } from '../src/core/logger';
import { MIGRATIONS } from '../src/migrations';
import { backfillAgentTokenScopes } from '../src/migrations/005-agent-token-scopes';
import {
  MigrationError,
  runMigrations,
  type Migration,
  type RunnerSettings,
} from '../src/migrations/runner';
import { startTestApp, testDatabaseUri, testEnv, type TestApp } from './helpers/app';
import { run, startInstance, waitFor } from './helpers/processes';

/**
 * Migrations run once per database, in order, recorded in `migrations`; of several instances
 * starting together exactly one runs each, and a lock left by a dead instance is taken over once
 * it expires.
 */

const uri = testDatabaseUri();
let t: TestApp;

beforeAll(async () => {
  t = await startTestApp({ MONGODB_URI: uri });
});
afterAll(() => t.close());

interface Recorded {
  _id: string;
  ran_at: Date;
  took_ms: number;
}
interface Lock {
  _id: string;
  owner: string;
  claimed_at: Date;
  expires_at: Date;
}
const collection = <T extends mongo.Document>(name: string) =>
  mongoose.connection.db!.collection<T>(name);
const records = () => collection<Recorded>('migrations');
const lock = () => collection<Lock>('migration_locks');
/** How often each test migration's up ran, counted in the database. */
const calls = () => collection<{ _id: string; n: number }>('test_migration_calls');
const callsOf = async (id: string) => (await calls().findOne({ _id: id }))?.n ?? 0;

/** A runner's own context, with its log lines. */
function instance(): { ctx: SystemContext; logs: string[] } {
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      logs.push(chunk.toString());
      callback();
    },
  });
  return { ctx: systemCtx(createLogger({ logLevel: 'info' }, sink), 'migrations'), logs };
}

/** A migration whose up counts its calls in the database, then takes `ms`. */
function counting(id: string, ms = 0, order?: string[]): Migration {
  return {
    id,
    description: 'counts its calls',
    up: async () => {
      order?.push(id);
      await calls().updateOne({ _id: id }, { $inc: { n: 1 } }, { upsert: true });
      await sleep(ms);
    },
  };
}

const FAST: RunnerSettings = { lockTtlMs: 600, pollMs: 50 };

describe('the runner', () => {
  it("has run the service's migrations at start-up and recorded each: id, when, how long", async () => {
    const recorded = await records()
      .find({ _id: { $in: MIGRATIONS.map((m) => m.id) } })
      .sort({ _id: 1 })
      .toArray();
    expect(recorded.map((r) => r._id)).toEqual(MIGRATIONS.map((m) => m.id));
    for (const r of recorded)
      expect(r).toEqual({ _id: r._id, ran_at: expect.any(Date), took_ms: expect.any(Number) });
    expect(t.logs.join('\n')).toMatch(/"migration":"001-user-changed-at".*"migration ran"/);
    expect(await lock().countDocuments()).toBe(0);
  });

  it('runs none of them again when the service starts again', async () => {
    const before = await records().find().toArray();
    await t.app.stop();
    t = await startTestApp({ MONGODB_URI: uri });
    expect(t.logs.join('\n')).not.toMatch(/"migration (starting|ran)"/);
    expect(await records().find().toArray()).toEqual(before);
  });

  it('runs those not recorded, in order, once; a migration added later runs alone', async () => {
    const order: string[] = [];
    const first = [counting('101-a', 0, order), counting('102-b', 0, order)];
    const { ctx } = instance();
    expect(await runMigrations(ctx, t.config, first, FAST)).toEqual(['101-a', '102-b']);
    expect(await runMigrations(ctx, t.config, first, FAST)).toEqual([]);
    const later = [...first, counting('103-c', 0, order)];
    expect(await runMigrations(ctx, t.config, later, FAST)).toEqual(['103-c']);
    expect(order).toEqual(['101-a', '102-b', '103-c']);
    expect(await Promise.all(['101-a', '102-b', '103-c'].map(callsOf))).toEqual([1, 1, 1]);
    expect(await lock().countDocuments()).toBe(0);
  });

  it('refuses ids out of order, running nothing', async () => {
    const { ctx } = instance();
    await expect(
      runMigrations(ctx, t.config, [counting('112-b'), counting('111-a')], FAST),
    ).rejects.toThrow('migration ids must be NNN-name and in order: 111-a');
    expect(await Promise.all(['111-a', '112-b'].map(callsOf))).toEqual([0, 0]);
  });
});

describe('several instances starting together', () => {
  it('run each migration exactly once, however long it takes beyond the lock', async () => {
    // 201 outlasts the lock's expiry: its holder renews it, so the other never takes it over.
    const list = [counting('201-slow', 1_500), counting('202-quick')];
    const a = instance();
    const b = instance();
    const [ranByA, ranByB] = await Promise.all([
      runMigrations(a.ctx, t.config, list, FAST),
      runMigrations(b.ctx, t.config, list, FAST),
    ]);
    expect([...ranByA, ...ranByB].sort()).toEqual(['201-slow', '202-quick']);
    expect(await Promise.all(['201-slow', '202-quick'].map(callsOf))).toEqual([1, 1]);
    // The other one waited for it, and went on once both were recorded.
    const waiter = ranByA.length === 0 ? a : b;
    expect(waiter.logs.join('\n')).toMatch(/waiting for it/);
    expect(await records().countDocuments({ _id: { $in: ['201-slow', '202-quick'] } })).toBe(2);
    expect(await lock().countDocuments()).toBe(0);
  });

  it('two processes of the service on a new database: each migration runs in one of them', async () => {
    const shared = testDatabaseUri();
    const env = testEnv({ MONGODB_URI: shared });
    const instances = await Promise.all([startInstance(env), startInstance(env)]);
    try {
      const ran = instances.flatMap(({ running }) =>
        running.stdout
          .filter((line) => line.includes('"migration ran"'))
          .map((line) => (JSON.parse(line) as { migration: string }).migration),
      );
      expect(ran.sort()).toEqual(MIGRATIONS.map((m) => m.id));
      for (const { url } of instances) expect((await fetch(`${url}/health`)).status).toBe(200);
      const db = mongoose.connection.getClient().db(new URL(shared).pathname.slice(1));
      expect(await db.collection('migrations').countDocuments()).toBe(MIGRATIONS.length);
      expect(await db.collection('migration_locks').countDocuments()).toBe(0);
      await db.dropDatabase();
    } finally {
      await Promise.all(instances.map((i) => i.stop()));
    }
  });
});

describe('a lock left by an instance that died', () => {
  it('is taken over once it expires, and the migration runs once, after that', async () => {
    const expiresAt = new Date(Date.now() + 1_500);
    await lock().insertOne({
      _id: 'migrations',
      owner: 'a-dead-host:4242:run',
      claimed_at: new Date(Date.now() - 60_000),
      expires_at: expiresAt,
    });
    const { ctx, logs } = instance();
    expect(await runMigrations(ctx, t.config, [counting('301-after-a-crash')], FAST)).toEqual([
      '301-after-a-crash',
    ]);
    expect(await callsOf('301-after-a-crash')).toBe(1);
    const recorded = await records().findOne({ _id: '301-after-a-crash' });
    expect(recorded!.ran_at.getTime()).toBeGreaterThanOrEqual(expiresAt.getTime());
    expect(logs.join('\n')).toMatch(/"holder":"a-dead-host:4242:run".*waiting for it/);
    expect(logs.join('\n')).toMatch(/the migration lock had expired/);
    expect(await lock().countDocuments()).toBe(0);
  });
});

describe('a failing migration', () => {
  it('ends the run with its id and the cause, is not recorded, and runs nothing after it', async () => {
    const failing: Migration = {
      id: '402-fails',
      description: 'fails',
      up: () => Promise.reject(new Error('the documents are not what it expected')),
    };
    const { ctx } = instance();
    const running = runMigrations(
      ctx,
      t.config,
      [counting('401-before'), failing, counting('403-after')],
      FAST,
    );
    await expect(running).rejects.toThrow(MigrationError);
    await expect(running).rejects.toThrow(
      'migration 402-fails failed: the documents are not what it expected',
    );
    expect(await records().countDocuments({ _id: { $in: ['402-fails', '403-after'] } })).toBe(0);
    expect(await records().countDocuments({ _id: '401-before' })).toBe(1);
    expect(await callsOf('403-after')).toBe(0);
    // Released: the next start tries again at once.
    expect(await lock().countDocuments()).toBe(0);
  });

  it("stops the service's start-up with that error", async () => {
    const broken = testDatabaseUri();
    const db = mongoose.connection.getClient().db(new URL(broken).pathname.slice(1));
    // A catalog entry from before ccxt whose fields are not a list: 002 cannot migrate it.
    await db.collection('wallets').insertOne({
      name: 'Broken',
      slug: 'broken',
      type: 'cex',
      auth_fields: null,
      is_active: true,
      order: 1,
      created_at: new Date('2026-01-01'),
      updated_at: new Date('2026-01-01'),
    });
    const env = Object.fromEntries(
      Object.entries(testEnv({ MONGODB_URI: broken })).filter(
        (e): e is [string, string] => e[1] !== undefined,
      ),
    );
    const service = run('main.js', env);
    expect(await service.exited).toBe(1);
    const fatal = await waitFor('the fatal line', () =>
      service.stdout.find((line) => line.includes('"start-up failed"')),
    );
    expect(JSON.parse(fatal)).toMatchObject({
      level: 60,
      err: { message: expect.stringMatching(/^migration 002-definition-ccxt-ids failed: /) },
    });
    expect(service.stdout.join('\n')).not.toMatch(/wallet service listening/);
    expect(
      (await db.collection('migrations').find().toArray()).map((r) => r._id as unknown),
    ).toEqual(['001-user-changed-at']);
    expect(await db.collection('migration_locks').countDocuments()).toBe(0);
    await db.dropDatabase();
  });
});

describe('005: agent tokens stored before scopes', () => {
  it("become what they were, an admin's ALL_WALLETS tokens, changed when revoked or else created; twice at once, then again, changes nothing more", async () => {
    const tokens = collection('agent_tokens');
    const created = new Date('2026-01-02T03:04:05Z');
    const revoked = new Date('2026-02-03T04:05:06Z');
    const old = { issued_by: new Types.ObjectId(), expires_at: new Date('2027-01-01') };
    const [live, gone, current] = [1, 2, 3].map(() => new Types.ObjectId());
    const newer = {
      _id: current,
      ...old,
      name: 'personal',
      scope: 'granted_wallets',
      issuer_role: 'user',
      created_at: created,
      revoked_at: null,
      changed_at: revoked,
    };
    await tokens.insertMany([
      { _id: live, ...old, name: 'old-live', created_at: created, revoked_at: null },
      { _id: gone, ...old, name: 'old-revoked', created_at: created, revoked_at: revoked },
      newer,
    ]);
    const { ctx, logs } = instance();
    const [a, b] = await Promise.all([
      backfillAgentTokenScopes(ctx),
      backfillAgentTokenScopes(ctx),
    ]);
    expect(a + b).toBeGreaterThanOrEqual(2);
    expect(await tokens.findOne({ _id: live })).toMatchObject({
      scope: 'all_wallets',
      issuer_role: 'admin',
      changed_at: created,
    });
    expect(await tokens.findOne({ _id: gone })).toMatchObject({
      scope: 'all_wallets',
      issuer_role: 'admin',
      changed_at: revoked,
    });
    expect(await tokens.findOne({ _id: current })).toEqual(newer);
    expect(logs.join('\n')).toMatch(/"agentTokens":2,.*filled in for agent tokens/);
    expect(await backfillAgentTokenScopes(ctx)).toBe(0);
  });
});
