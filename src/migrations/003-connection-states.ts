import type { Types } from 'mongoose';
import type { SystemContext } from '../core/context';
import {
  ConnectionState,
  CredentialModel,
  type Credential,
} from '../modules/credentials/credential.model';
import { LIVE_STATUSES, UserWalletModel } from '../modules/wallets/user-wallet.model';
import type { Migration } from './runner';

const BATCH = 1_000;

/**
 * Credentials stored before connection states existed get one (CONNECTED when their last test
 * passed, else UNTESTED), and those a live wallet uses join the test queue at a random time
 * within one interval (CREDENTIAL_CHECK_INTERVAL), so a large deployment's keys don't all go at
 * once. Idempotent: only documents without a state are touched. Returns how many it migrated.
 */
export async function migrateConnectionStates(
  ctx: SystemContext,
  intervalMs: number,
): Promise<number> {
  const old = await CredentialModel.find({ connection_state: { $exists: false } }, { _id: 1 }).lean<
    Array<Pick<Credential, '_id'>>
  >();
  if (old.length === 0) return 0;
  const base = {
    check_failures: 0,
    check_due_at: null,
    last_checked_at: null,
    next_check_at: null,
  };
  await CredentialModel.updateMany(
    { connection_state: { $exists: false }, is_connected: true },
    { $set: { ...base, connection_state: ConnectionState.CONNECTED } },
    { timestamps: false },
  );
  await CredentialModel.updateMany(
    { connection_state: { $exists: false } },
    { $set: { ...base, connection_state: ConnectionState.UNTESTED } },
    { timestamps: false },
  );
  let queued = 0;
  for (let i = 0; i < old.length; i += BATCH) {
    const ids = old.slice(i, i + BATCH).map((c) => c._id);
    const live = await UserWalletModel.find(
      { credential_id: { $in: ids }, status: { $in: LIVE_STATUSES } },
      { credential_id: 1 },
    ).lean<Array<{ credential_id: Types.ObjectId }>>();
    if (live.length === 0) continue;
    const now = Date.now();
    await CredentialModel.bulkWrite(
      live.map((w) => ({
        updateOne: {
          filter: { _id: w.credential_id, next_check_at: null },
          update: { $set: { next_check_at: new Date(now + Math.random() * intervalMs) } },
          timestamps: false,
        },
      })),
      { ordered: false },
    );
    queued += live.length;
  }
  ctx.logger.info(
    { migrated: old.length, queued },
    'credentials given a connection state; those of live wallets are in the test queue',
  );
  return old.length;
}

export const migration: Migration = {
  id: '003-connection-states',
  description: 'credentials stored before connection states get one; live wallets queue theirs',
  up: (ctx, config) => migrateConnectionStates(ctx, config.credentialChecks.intervalMs),
};
