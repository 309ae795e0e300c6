import DataLoader from 'dataloader';
import type { Types } from 'mongoose';
import { createByIdLoader } from '../../shared/by-id-loader';
import { CredentialBalanceModel, type CredentialBalance } from './credential-balance.model';
import { CredentialModel, type Credential } from './credential.model';

export const createCredentialLoader = () =>
  createByIdLoader((ids) =>
    CredentialModel.find({ _id: { $in: ids } })
      .lean<Credential[]>()
      .exec(),
  );

export const DEFAULT_BALANCE_HISTORY = 30;
export const MAX_BALANCE_HISTORY = 500;

/**
 * Newest first, per credential: one aggregation for every credential of the request that asks for
 * `first` snapshots, cut to `first` in the database.
 */
export function createBalanceHistoryLoader(
  first: number,
): DataLoader<Types.ObjectId, CredentialBalance[], string> {
  return new DataLoader(
    async (credentialIds) => {
      const groups = await CredentialBalanceModel.aggregate<{
        _id: Types.ObjectId;
        snapshots: CredentialBalance[];
      }>([
        { $match: { credential_id: { $in: credentialIds } } },
        { $sort: { at: -1, _id: -1 } },
        { $group: { _id: '$credential_id', snapshots: { $push: '$$ROOT' } } },
        { $project: { snapshots: { $slice: ['$snapshots', first] } } },
      ]);
      const byCredential = new Map(groups.map((g) => [g._id.toHexString(), g.snapshots]));
      return credentialIds.map((id) => byCredential.get(id.toHexString()) ?? []);
    },
    { cacheKeyFn: (id) => id.toHexString() },
  );
}
