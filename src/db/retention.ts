import mongoose from 'mongoose';
import type { Logger } from '../core/logger';
import { CredentialBalanceModel } from '../modules/credentials/credential-balance.model';
import { UserWalletEventModel } from '../modules/audit/user-wallet-event.model';
import { RateLimitModel } from '../shared/rate-limit';
import { dbOptions, systemCtx, type SystemContext } from '../core/context';
import { asJob } from '../core/tracing';

/**
 * Nothing is kept for ever: the audit trail (user_wallet_events, by `at`) AUDIT_RETENTION_DAYS,
 * balance snapshots (credential_balances, by `at`) BALANCE_HISTORY_DAYS, rate-limit counters
 * (rate_limits) until their window closes. Each has a TTL index, which mongod honours within a
 * minute. mongo-java-server keeps the index but never expires anything (test/engine-fidelity), so
 * every instance also deletes what has expired itself, at start-up and hourly; on mongod that
 * finds nothing left to do. Events still in a wallet's outbox (user_wallets.pending_events) are
 * not in the trail yet and are not touched.
 */

export interface RetentionSettings {
  balanceHistoryDays: number;
  auditDays: number;
}

const DAY_SECONDS = 86_400;
const SWEEP_INTERVAL_MS = 3_600_000;
/** The sweep's work, as the service's own (core/context.ts systemCtx) and in its comments. */
export const EXPIRY_JOB = 'expiry';

interface Expiring {
  collection: string;
  field: string;
  /** The TTL index's expireAfterSeconds. */
  seconds: number;
}

function expiring(settings: RetentionSettings): Expiring[] {
  return [
    {
      collection: UserWalletEventModel.collection.collectionName,
      field: 'at',
      seconds: settings.auditDays * DAY_SECONDS,
    },
    {
      collection: CredentialBalanceModel.collection.collectionName,
      field: 'at',
      seconds: settings.balanceHistoryDays * DAY_SECONDS,
    },
    // The counter expires when its window closes.
    { collection: RateLimitModel.collection.collectionName, field: 'expires_at', seconds: 0 },
  ];
}

/**
 * The TTL indexes with the configured retention; a changed setting changes the index of an
 * existing database: collMod where the engine has it, else the index is dropped and created again.
 */
export async function ensureRetentionIndexes(
  ctx: SystemContext,
  settings: RetentionSettings,
): Promise<void> {
  for (const { collection, field, seconds } of expiring(settings)) {
    const col = collectionNamed(collection);
    const key = { [field]: 1 };
    const name = `${field}_1`;
    const existing = (await col.indexes()).find((index) => sameKey(index.key, key));
    if (existing?.expireAfterSeconds === seconds) continue;
    if (!existing) {
      try {
        await col.createIndex(key, { name, expireAfterSeconds: seconds });
        continue;
      } catch (error) {
        // It exists after all (created meanwhile, or not listed), with other options.
        if (!isIndexConflict(error)) throw error;
      }
    }
    try {
      await database().command({
        collMod: col.collectionName,
        index: { keyPattern: key, expireAfterSeconds: seconds },
      });
    } catch (error) {
      if (!isCommandNotFound(error)) throw error;
      await col.dropIndex(existing?.name ?? name).catch((dropError: unknown) => {
        // Another instance starting at the same time dropped it first.
        if (!isIndexNotFound(dropError)) throw dropError;
      });
      await col.createIndex(key, { name, expireAfterSeconds: seconds });
    }
    ctx.logger.info(
      {
        collection: col.collectionName,
        field,
        from: existing?.expireAfterSeconds ?? null,
        to: seconds,
      },
      'retention changed',
    );
  }
}

/** Deletes what the TTL indexes say has expired by `now`; returns how many per collection. */
export async function deleteExpired(
  ctx: SystemContext,
  settings: RetentionSettings,
  now = new Date(),
): Promise<Record<string, number>> {
  const deleted: Record<string, number> = {};
  for (const { collection, field, seconds } of expiring(settings)) {
    const col = collectionNamed(collection);
    const result = await col.deleteMany(
      { [field]: { $lt: new Date(now.getTime() - seconds * 1000) } },
      dbOptions(ctx),
    );
    deleted[col.collectionName] = result.deletedCount;
  }
  return deleted;
}

/**
 * deleteExpired now and hourly; returns the function that stops it and waits for a run under way.
 */
export function startExpirySweep(settings: RetentionSettings, logger: Logger): () => Promise<void> {
  let running: Promise<void> = Promise.resolve();
  const sweep = () => {
    const ctx = systemCtx(logger, EXPIRY_JOB);
    running = asJob(
      EXPIRY_JOB,
      async () => {
        const deleted = await deleteExpired(ctx, settings);
        if (Object.values(deleted).some((n) => n > 0))
          ctx.logger.info({ deleted }, 'expired documents deleted');
      },
      (error) =>
        ctx.logger.warn({ err: error }, 'deleting expired documents failed; next try in an hour'),
    );
  };
  sweep();
  const timer = setInterval(sweep, SWEEP_INTERVAL_MS).unref();
  return async () => {
    clearInterval(timer);
    await running;
  };
}

function database() {
  const db = mongoose.connection.db;
  if (!db) throw new Error('retention needs a connected database');
  return db;
}

function collectionNamed(name: string) {
  return database().collection(name);
}

function sameKey(a: Record<string, unknown>, b: Record<string, unknown>): boolean {
  const keys = Object.keys(a);
  return (
    keys.length === Object.keys(b).length &&
    keys.every((k, i) => Object.keys(b)[i] === k && a[k] === b[k])
  );
}

function isCommandNotFound(error: unknown): boolean {
  return typeof error === 'object' && error !== null && 'code' in error && error.code === 59;
}

/** IndexOptionsConflict, IndexKeySpecsConflict. */
function isIndexConflict(error: unknown): boolean {
  return (
    typeof error === 'object' &&
    error !== null &&
    'code' in error &&
    (error.code === 85 || error.code === 86)
  );
}

function isIndexNotFound(error: unknown): boolean {
  return typeof error === 'object' && error !== null && 'code' in error && error.code === 27;
}
