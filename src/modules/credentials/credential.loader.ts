import DataLoader from 'dataloader';
import type { Types } from 'mongoose';
import { CredentialModel, type Credential } from './credential.model';

/** One `$in` query per batch; results in key order, null where a credential is gone. */
export function createCredentialLoader(): DataLoader<Types.ObjectId, Credential | null, string> {
  return new DataLoader(
    async (ids) => {
      const found = await CredentialModel.find({ _id: { $in: ids } }).lean<Credential[]>();
      const byId = new Map(found.map((c) => [c._id.toHexString(), c]));
      return ids.map((id) => byId.get(id.toHexString()) ?? null);
    },
    { cacheKeyFn: (id) => id.toHexString() },
  );
}
