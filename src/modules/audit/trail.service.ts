import type { Types } from 'mongoose';
import { dbOptions, type RequestContext } from '../../core/context';
import { UserWalletEventModel } from './user-wallet-event.model';

/*
 * The audit trail as the other modules read it (the wallets' writes, the live feed): each call one
 * command with the context's database comment.
 */

/** Which of these events are in the trail already: their ids, in no given order. */
export async function eventIdsInTrail(
  ctx: Pick<RequestContext, 'comment'>,
  ids: readonly Types.ObjectId[],
): Promise<Types.ObjectId[]> {
  const found = await UserWalletEventModel.find({ _id: { $in: ids } }, { _id: 1 })
    .setOptions(dbOptions(ctx))
    .lean<Array<{ _id: Types.ObjectId }>>();
  return found.map((e) => e._id);
}
