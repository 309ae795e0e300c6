import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import mongoose from 'mongoose';
import type { Config } from '../core/config';
import { dbOptions, type SystemContext } from '../core/context';
import { isDuplicateKeyError } from '../core/errors';

/** One change to stored documents or indexes, run once per database (src/migrations/NNN-*.ts). */
export interface Migration {
  /** `NNN-name`: its number orders it, and the record in `migrations` is kept under it. */
  readonly id: string;
  /** One line on what it does, for the log. */
  readonly description: string;
  /**
   * Idempotent, and a no-op where the old start-up code did it already: an instance may die after
   * it and before its record, and databases from before the runner have no records. Also safe to
   * run twice at once: an instance that lost the lock mid-run (a pause longer than its expiry)
   * may still be running it when another takes the lock over.
   */
  up(ctx: SystemContext, config: Config): Promise<unknown>;
}

/** What ran: `{ _id: id, ran_at, took_ms }`, one per migration. */
export const MIGRATIONS_COLLECTION = 'migrations';
/**
 * The one lock of the runs: `{ _id: 'migrations', owner, claimed_at, expires_at }` while an
 * instance runs migrations, gone when it is done.
 */
export const MIGRATION_LOCK_COLLECTION = 'migration_locks';
const LOCK_ID = 'migrations';

interface MigrationRecord {
  _id: string;
  ran_at: Date;
  took_ms: number;
}

interface MigrationLock {
  _id: string;
  /** Host, process and run: who to look for when a lock stays. */
  owner: string;
  claimed_at: Date;
  expires_at: Date;
}

export interface RunnerSettings {
  /**
   * How long a claim holds unless its holder renews it (every third of it while it runs): an
   * instance that died holding it keeps the others waiting at most this long.
   */
  lockTtlMs: number;
  /** How often an instance waiting for another's run looks again. */
  pollMs: number;
}

export const RUNNER_SETTINGS: RunnerSettings = { lockTtlMs: 60_000, pollMs: 500 };

/** A migration failed: start-up stops, and the migration is not recorded. */
export class MigrationError extends Error {
  constructor(
    readonly migrationId: string,
    cause: unknown,
  ) {
    super(`migration ${migrationId} failed: ${messageOf(cause)}`, { cause });
    this.name = 'MigrationError';
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Runs the migrations not recorded yet, in order, and records each. Of several instances starting
 * together, the one that claims the lock runs them; the others wait until they are recorded, or
 * until the lock expires (its holder died) and one of them claims it. Returns the ids this call
 * ran.
 */
export async function runMigrations(
  ctx: SystemContext,
  config: Config,
  migrations: readonly Migration[],
  settings: RunnerSettings = RUNNER_SETTINGS,
): Promise<string[]> {
  assertOrdered(migrations);
  const owner = `${hostname()}:${process.pid}:${randomUUID()}`;
  const ran: string[] = [];
  let waitingFor: string | undefined;
  for (;;) {
    // Where everything is recorded (every start but the first of a version), no lock is taken.
    if ((await pending(ctx, migrations)).length === 0) return ran;
    if (await claim(ctx, owner, settings.lockTtlMs)) {
      try {
        const done = await runClaimed(ctx, config, migrations, owner, settings);
        ran.push(...done.ran);
        if (done.complete) return ran;
      } finally {
        await release(ctx, owner);
      }
    } else {
      const holder = await locks().findOne({ _id: LOCK_ID }, dbOptions(ctx));
      if (holder && holder.owner !== waitingFor) {
        waitingFor = holder.owner;
        ctx.logger.info(
          { holder: holder.owner, expiresAt: holder.expires_at },
          'another instance is running the migrations; waiting for it',
        );
      }
    }
    await sleep(settings.pollMs);
  }
}

/**
 * Runs what is still pending while this run holds the lock. Not complete when the lock was lost
 * (this instance stalled past its expiry, and another claimed it): that one goes on.
 */
async function runClaimed(
  ctx: SystemContext,
  config: Config,
  migrations: readonly Migration[],
  owner: string,
  settings: RunnerSettings,
): Promise<{ ran: string[]; complete: boolean }> {
  const ran: string[] = [];
  // Another instance may have finished between our look and our claim.
  for (const migration of await pending(ctx, migrations)) {
    if (!(await renew(ctx, owner, settings.lockTtlMs))) return { ran, complete: false };
    const logger = ctx.logger.child({ migration: migration.id });
    logger.info({ description: migration.description }, 'migration starting');
    let lost = false;
    const heartbeat = setInterval(() => {
      renew(ctx, owner, settings.lockTtlMs).then(
        (held) => {
          if (!held) lost = true;
        },
        (error: unknown) => logger.warn({ err: error }, 'renewing the migration lock failed'),
      );
    }, settings.lockTtlMs / 3).unref();
    const started = Date.now();
    try {
      await migration.up({ ...ctx, logger }, config);
    } catch (error) {
      throw new MigrationError(migration.id, error);
    } finally {
      clearInterval(heartbeat);
    }
    const took = Date.now() - started;
    await record(ctx, { _id: migration.id, ran_at: new Date(), took_ms: took });
    ran.push(migration.id);
    logger.info({ tookMs: took }, 'migration ran');
    if (lost) {
      logger.warn('the migration lock expired while it ran; another instance holds it now');
      return { ran, complete: false };
    }
  }
  return { ran, complete: true };
}

async function pending(ctx: SystemContext, migrations: readonly Migration[]): Promise<Migration[]> {
  const recorded = new Set(
    (
      await records()
        .find(
          { _id: { $in: migrations.map((m) => m.id) } },
          { projection: { _id: 1 }, ...dbOptions(ctx) },
        )
        .toArray()
    ).map((r) => r._id),
  );
  return migrations.filter((m) => !recorded.has(m.id));
}

/**
 * The lock, if it is free: inserted when there is none (its unique _id lets one instance win), or
 * taken over once it has expired (the condition on expires_at lets one instance win).
 */
async function claim(ctx: SystemContext, owner: string, ttlMs: number): Promise<boolean> {
  const now = new Date();
  const lock = { owner, claimed_at: now, expires_at: new Date(now.getTime() + ttlMs) };
  try {
    await locks().insertOne({ _id: LOCK_ID, ...lock }, dbOptions(ctx));
    return true;
  } catch (error) {
    if (!isDuplicateKeyError(error)) throw error;
  }
  const taken = await locks().updateOne(
    { _id: LOCK_ID, expires_at: { $lte: now } },
    { $set: lock },
    dbOptions(ctx),
  );
  if (taken.modifiedCount === 0) return false;
  ctx.logger.warn('the migration lock had expired (its instance died?); this instance took it');
  return true;
}

/** Moves the expiry ahead while this run still holds the lock; false when it does not. */
async function renew(ctx: SystemContext, owner: string, ttlMs: number): Promise<boolean> {
  const result = await locks().updateOne(
    { _id: LOCK_ID, owner },
    { $set: { expires_at: new Date(Date.now() + ttlMs) } },
    dbOptions(ctx),
  );
  return result.matchedCount === 1;
}

async function release(ctx: SystemContext, owner: string): Promise<void> {
  // A failure here must not hide why the run ended: the lock expires by itself.
  await locks()
    .deleteOne({ _id: LOCK_ID, owner }, dbOptions(ctx))
    .catch((error: unknown) =>
      ctx.logger.warn({ err: error }, 'releasing the migration lock failed; it expires by itself'),
    );
}

/** Kept if it exists: a run that lost its lock and the run that took it over may both record. */
async function record(ctx: SystemContext, ran: MigrationRecord): Promise<void> {
  const { _id, ...fields } = ran;
  await records().updateOne({ _id }, { $setOnInsert: fields }, { upsert: true, ...dbOptions(ctx) });
}

function assertOrdered(migrations: readonly Migration[]): void {
  migrations.forEach((m, i) => {
    if (!/^\d{3}-[a-z0-9-]+$/.test(m.id) || (i > 0 && migrations[i - 1].id >= m.id))
      throw new Error(`migration ids must be NNN-name and in order: ${m.id}`);
  });
}

function database() {
  const db = mongoose.connection.db;
  if (!db) throw new Error('migrations need a connected database');
  return db;
}

const records = () => database().collection<MigrationRecord>(MIGRATIONS_COLLECTION);
const locks = () => database().collection<MigrationLock>(MIGRATION_LOCK_COLLECTION);
