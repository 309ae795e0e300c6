import DataLoader from 'dataloader';
import type { Types } from 'mongoose';

/** One `$in` query per batch; results in key order, null where a document is gone. */
export function createByIdLoader<T extends { _id: Types.ObjectId }>(
  findByIds: (ids: readonly Types.ObjectId[]) => Promise<T[]>,
): DataLoader<Types.ObjectId, T | null, string> {
  return new DataLoader(
    async (ids) => {
      const byId = new Map((await findByIds(ids)).map((doc) => [doc._id.toHexString(), doc]));
      return ids.map((id) => byId.get(id.toHexString()) ?? null);
    },
    { cacheKeyFn: (id) => id.toHexString() },
  );
}
