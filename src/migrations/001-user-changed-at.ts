import type { Types } from 'mongoose';
import type { SystemContext } from '../core/context';
import { UserWalletModel } from '../modules/wallets/user-wallet.model';
import type { Migration } from './runner';

const BATCH = 1_000;

/**
 * Wallets stored before user_changed_at existed get their updated_at (or created_at): never
 * earlier than the last change a user really made, so the change feed can show one too many,
 * never miss one. Idempotent, and cheap once done (one query that finds nothing). Each update is
 * conditional on the field still missing, so a user's change meanwhile wins. Returns how many it
 * filled in.
 */
export async function backfillUserChangedAt(ctx: SystemContext): Promise<number> {
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
    ctx.logger.info(
      { wallets: filled },
      'userChangedAt filled in for wallets stored before it existed',
    );
  return filled;
}

export const migration: Migration = {
  id: '001-user-changed-at',
  description: 'user wallets stored before userChangedAt existed get their updatedAt as it',
  up: backfillUserChangedAt,
};
