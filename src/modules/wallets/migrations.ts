import type { Types } from 'mongoose';
import type { Logger } from '../../core/logger';
import { UserWalletModel } from './user-wallet.model';

const BATCH = 1_000;

/**
 * Wallets stored before user_changed_at existed get their updated_at (or created_at): never
 * earlier than the last change a user really made, so the change feed can show one too many,
 * never miss one. Idempotent, and cheap once done (one query that finds nothing); run at start-up.
 * Each update is conditional on the field still missing, so a user's change meanwhile wins.
 */
export async function backfillUserChangedAt(logger: Logger): Promise<number> {
  let filled = 0;
  for (;;) {
    const batch = await UserWalletModel.find(
      { user_changed_at: null },
      { updated_at: 1, created_at: 1 },
    )
      .limit(BATCH)
      .lean<Array<{ _id: Types.ObjectId; updated_at?: Date; created_at?: Date }>>();
    if (batch.length === 0) break;
    await UserWalletModel.collection.bulkWrite(
      batch.map((w) => ({
        updateOne: {
          filter: { _id: w._id, user_changed_at: null },
          update: {
            $set: { user_changed_at: w.updated_at ?? w.created_at ?? w._id.getTimestamp() },
          },
        },
      })),
      { ordered: false },
    );
    filled += batch.length;
  }
  if (filled > 0)
    logger.info(
      { wallets: filled },
      'userChangedAt filled in for wallets stored before it existed',
    );
  return filled;
}

/**
 * Indexes an earlier version made that nothing needs now. `ai_write` (the keys of an agent's
 * conditional update) only spared the embedded engine a scan, which its launcher now spares it
 * through the _id index; on every engine it cost each write an index entry. Dropped at start-up,
 * idempotent; an instance starting beside another may find it gone already.
 */
const RETIRED_INDEXES = ['ai_write'];
const INDEX_NOT_FOUND = 27;

export async function dropRetiredIndexes(logger: Logger): Promise<string[]> {
  const present = new Set((await UserWalletModel.collection.indexes()).map((index) => index.name));
  const dropped: string[] = [];
  for (const name of RETIRED_INDEXES.filter((n) => present.has(n))) {
    try {
      await UserWalletModel.collection.dropIndex(name);
      dropped.push(name);
    } catch (error) {
      if ((error as { code?: number }).code !== INDEX_NOT_FOUND) throw error;
    }
  }
  if (dropped.length > 0)
    logger.info(
      { collection: UserWalletModel.collection.collectionName, indexes: dropped },
      'dropped indexes this version no longer uses',
    );
  return dropped;
}
