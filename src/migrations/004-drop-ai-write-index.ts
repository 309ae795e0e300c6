import type { SystemContext } from '../core/context';
import { UserWalletModel } from '../modules/wallets/user-wallet.model';
import type { Migration } from './runner';

/**
 * Indexes an earlier version made that nothing needs now. `ai_write` (the keys of an agent's
 * conditional update) only spared the embedded engine a scan, which its launcher now spares it
 * through the _id index; on every engine it cost each write an index entry. Idempotent; an
 * instance may find it gone already.
 */
const RETIRED_INDEXES = ['ai_write'];
const INDEX_NOT_FOUND = 27;

/** Returns the names it dropped. */
export async function dropRetiredIndexes(ctx: SystemContext): Promise<string[]> {
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
    ctx.logger.info(
      { collection: UserWalletModel.collection.collectionName, indexes: dropped },
      'dropped indexes this version no longer uses',
    );
  return dropped;
}

export const migration: Migration = {
  id: '004-drop-ai-write-index',
  description: "drops user_wallets' ai_write index, which nothing uses any more",
  up: dropRetiredIndexes,
};
