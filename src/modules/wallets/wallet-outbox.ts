import type { Types } from 'mongoose';
import { dbOptions } from '../../core/context';
import { AuditOutbox, type PendingEventStore } from '../audit/outbox';
import type { WalletEventRecord } from '../audit/user-wallet-event.model';
import { UserWalletModel, type UserWallet } from './user-wallet.model';

/** The part of a wallet update that stores its events with it, in its outbox. */
export function pushEvents(events: WalletEventRecord[]): {
  $push: { pending_events: { $each: WalletEventRecord[] } };
} {
  return { $push: { pending_events: { $each: events } } };
}

/**
 * The audit outbox's store (audit/outbox.ts): each wallet's `pending_events`. The sweep gets it
 * from app/lifecycle.ts.
 */
export const walletPendingEvents: PendingEventStore = {
  writeWith(ctx, filter, update, event, keepVersion = false) {
    return UserWalletModel.findOneAndUpdate(
      filter,
      { ...update, ...(keepVersion ? {} : { $inc: { version: 1 } }), ...pushEvents([event]) },
      { returnDocument: 'before', ...dbOptions(ctx) },
    )
      .lean<UserWallet>()
      .exec();
  },

  pull(ctx, walletId, eventIds) {
    // No change to the wallet: updated_at stays.
    return UserWalletModel.updateOne(
      { _id: walletId },
      { $pull: { pending_events: { _id: { $in: eventIds } } } },
      { timestamps: false, ...dbOptions(ctx) },
    ).exec();
  },

  pullMany(ctx, walletIds, eventIds) {
    return UserWalletModel.updateMany(
      { _id: { $in: walletIds } },
      { $pull: { pending_events: { _id: { $in: eventIds } } } },
      { timestamps: false, ...dbOptions(ctx) },
    ).exec();
  },

  replace(ctx, walletId, event) {
    return UserWalletModel.updateOne(
      { _id: walletId, 'pending_events._id': event._id },
      { $set: { 'pending_events.$': event } },
      { timestamps: false, ...dbOptions(ctx) },
    ).exec();
  },

  overdue(ctx, cutoff, after, limit) {
    return UserWalletModel.find(
      { 'pending_events.at': { $lt: cutoff }, ...(after ? { _id: { $gt: after } } : {}) },
      { pending_events: 1 },
    )
      .sort({ _id: 1 })
      .limit(limit)
      .setOptions(dbOptions(ctx))
      .lean<Array<{ _id: Types.ObjectId; pending_events: WalletEventRecord[] }>>()
      .exec();
  },
};

/** The outbox every wallet write's events go through. */
export const walletOutbox = new AuditOutbox(walletPendingEvents);
