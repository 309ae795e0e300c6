import type { Types } from 'mongoose';
import { dbOptions, type RequestContext } from '../../core/context';
import { UserWalletEventModel, type UserWalletEvent } from './user-wallet-event.model';

/*
 * The audit trail as the other modules read it (the wallets' batch writes, the live feed): each
 * call one command with the context's database comment. Writes to it go through the outbox
 * (outbox.ts), and a wallet's page of it through the loader (trail.loader.ts).
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

/** An event as the trail holds it, with when it got there (see trailRecords in outbox.ts). */
export type RecordedEvent = UserWalletEvent & { recorded_at: Date };

/** What reached the trail at or after `since`: ids and times only, in no given order. */
export function recordedSince(
  ctx: Pick<RequestContext, 'comment'>,
  since: Date,
): Promise<Array<Pick<RecordedEvent, '_id' | 'recorded_at'>>> {
  return UserWalletEventModel.find({ recorded_at: { $gte: since } }, { _id: 1, recorded_at: 1 })
    .setOptions(dbOptions(ctx))
    .lean<Array<Pick<RecordedEvent, '_id' | 'recorded_at'>>>()
    .exec();
}

/** These events of the trail, whole, in no given order. */
export function recordedEvents(
  ctx: Pick<RequestContext, 'comment'>,
  ids: readonly Types.ObjectId[],
): Promise<RecordedEvent[]> {
  return UserWalletEventModel.find({ _id: { $in: ids } })
    .setOptions(dbOptions(ctx))
    .lean<RecordedEvent[]>()
    .exec();
}
