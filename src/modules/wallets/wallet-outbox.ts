import type { Types, UpdateQuery } from 'mongoose';
import { dbOptions } from '../../core/context';
import {
  AuditOutbox,
  type PendingEventStore,
  type TrailEntry,
  type WalletAfterPull,
} from '../audit/outbox';
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

  pull(ctx, walletId, events) {
    // No change to the wallet: updated_at stays.
    return UserWalletModel.findOneAndUpdate({ _id: walletId }, pulled(events), {
      timestamps: false,
      returnDocument: 'after',
      projection: { user_id: 1, pending_events: 1, recent_trail: 1 },
      ...dbOptions(ctx),
    })
      .lean<WalletAfterPull>()
      .exec();
  },

  pullMany(ctx, events) {
    const byWallet = new Map<string, { walletId: Types.ObjectId; entries: TrailEntry[] }>();
    for (const { wallet_id, ...entry } of events) {
      const key = wallet_id.toHexString();
      const wallet = byWallet.get(key);
      if (wallet) wallet.entries.push(entry);
      else byWallet.set(key, { walletId: wallet_id, entries: [entry] });
    }
    // One command, each wallet's update by its _id (which every engine finds by index).
    return UserWalletModel.bulkWrite(
      [...byWallet.values()].map(({ walletId, entries }) => ({
        updateOne: { filter: { _id: walletId }, update: pulled(entries), timestamps: false },
      })),
      { ordered: false, ...dbOptions(ctx) },
    );
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

/** How many of its last events in the trail a wallet keeps in recent_trail. */
export const RECENT_TRAIL_KEPT = 8;

/** Out of the outbox, into recent_trail (its last RECENT_TRAIL_KEPT). */
function pulled(entries: readonly TrailEntry[]): UpdateQuery<UserWallet> {
  return {
    $pull: { pending_events: { _id: { $in: entries.map((e) => e._id) } } },
    $push: { recent_trail: { $each: [...entries], $slice: -RECENT_TRAIL_KEPT } },
  };
}

/** The outbox every wallet write's events go through. */
export const walletOutbox = new AuditOutbox(walletPendingEvents);
