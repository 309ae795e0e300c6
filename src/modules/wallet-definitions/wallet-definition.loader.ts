import DataLoader from 'dataloader';
import type { Types } from 'mongoose';
import { WalletDefinitionModel, type WalletDefinition } from './wallet-definition.model';

/** One `$in` query per batch; results in key order, null where a definition is gone. */
export function createDefinitionLoader(): DataLoader<Types.ObjectId, WalletDefinition | null, string> {
  return new DataLoader(
    async (ids) => {
      const found = await WalletDefinitionModel.find({ _id: { $in: ids } }).lean<WalletDefinition[]>();
      const byId = new Map(found.map((d) => [d._id.toHexString(), d]));
      return ids.map((id) => byId.get(id.toHexString()) ?? null);
    },
    { cacheKeyFn: (id) => id.toHexString() },
  );
}
