import type { Types } from 'mongoose';
import { dbOptions, type RequestContext } from '../../core/context';
import { UserWalletModel, type UserWallet } from '../wallets/user-wallet.model';
import { UserWalletEventModel, type WalletEventRecord } from './user-wallet-event.model';

/*
 * The audit trail without transactions. Every wallet write carries its events in the same update
 * ($push to the wallet's `pending_events`), so a change and its events are stored together or not
 * at all. Right after, they are copied to `user_wallet_events` and pulled from the wallet. Should
 * that fail, or the process die in between, the sweep (AuditOutboxSweep: at start-up and every
 * 30 s) copies them later, and `UserWallet.events` shows them meanwhile. Copies go by `_id`,
 * so delivering one twice is harmless.
 *
 * Agents' writes are conditional on the version they read, so their events are complete when
 * written. Users' writes and the pauses that keep a wallet safe must land however busy the agents
 * are, so they are not conditional on the version: see writeWithEvent.
 */

/**
 * What the outbox reads of a context: its logger and the comment of its commands. Any actor's
 * context will do, and the service's own work (a sweep, the pause of a refused credential's
 * wallets) tags its commands through it.
 */
export type OutboxContext = Pick<RequestContext, 'logger' | 'comment'>;

/** The part of a wallet update that stores its events with it. */
export function pushEvents(events: WalletEventRecord[]): {
  $push: { pending_events: { $each: WalletEventRecord[] } };
} {
  return { $push: { pending_events: { $each: events } } };
}

/**
 * Events as they go into the trail: stamped with when they got there (`recorded_at`), which is what
 * the live feed reads by (an event the sweep delivers late has an old `at` but a new
 * `recorded_at`).
 */
export function trailRecords(
  events: readonly WalletEventRecord[],
  now = new Date(),
): Array<WalletEventRecord & { recorded_at: Date }> {
  return events.map((event) => ({ ...event, recorded_at: now }));
}

/**
 * Copies a wallet's pending events into the trail and pulls them from the wallet; throws on
 * failure.
 */
export async function copyEvents(
  ctx: OutboxContext,
  walletId: Types.ObjectId,
  events: readonly WalletEventRecord[],
): Promise<void> {
  if (events.length === 0) return;
  const ids = events.map((e) => e._id);
  const tagged = dbOptions(ctx);
  // The events are stored as they are (already typed). An id already in the trail was delivered
  // before (by the sweep, say); only an event still missing afterwards is a failure.
  await UserWalletEventModel.collection
    .insertMany(trailRecords(events), { ordered: false, ...tagged })
    .catch(async (error: unknown) => {
      if ((await UserWalletEventModel.countDocuments({ _id: { $in: ids } }, tagged)) !== ids.length)
        throw error;
    });
  // No change to the wallet: updated_at stays.
  await UserWalletModel.updateOne(
    { _id: walletId },
    { $pull: { pending_events: { _id: { $in: ids } } } },
    { timestamps: false, ...tagged },
  );
}

/**
 * copyEvents after a write: a failure is logged and left to the sweep, since the events are safe
 * in the wallet. True when they were delivered.
 */
export async function deliverEvents(
  ctx: OutboxContext,
  walletId: Types.ObjectId,
  events: readonly WalletEventRecord[],
): Promise<boolean> {
  try {
    await copyEvents(ctx, walletId, events);
    return true;
  } catch (error) {
    ctx.logger.warn(
      { err: error, walletId: walletId.toHexString(), events: events.length },
      'audit events stay in their wallet until the next sweep',
    );
    return false;
  }
}

/**
 * deliverEvents for the events of many wallets at once (a batch of agents' writes): one insert into
 * the trail and one pull from the outboxes, whatever the number of wallets. Events the trail did
 * not take stay in their wallets for the sweep. Returns the ids (hex) now in the trail.
 */
export async function deliverEventsOfMany(
  ctx: OutboxContext,
  events: readonly WalletEventRecord[],
): Promise<Set<string>> {
  if (events.length === 0) return new Set();
  const ids = events.map((e) => e._id);
  const tagged = dbOptions(ctx);
  try {
    let delivered = ids;
    await UserWalletEventModel.collection
      .insertMany(trailRecords(events), { ordered: false, ...tagged })
      .catch(async (error: unknown) => {
        // As in copyEvents: an id already in the trail was delivered before; only the missing ones
        // failed.
        delivered = (
          await UserWalletEventModel.find({ _id: { $in: ids } }, { _id: 1 })
            .setOptions(tagged)
            .lean<Array<{ _id: Types.ObjectId }>>()
        ).map((e) => e._id);
        if (delivered.length < ids.length)
          ctx.logger.warn(
            { err: error, events: ids.length - delivered.length },
            'audit events stay in their wallet until the next sweep',
          );
      });
    if (delivered.length === 0) return new Set();
    const done = new Set(delivered.map((id) => id.toHexString()));
    const walletIds = [
      ...new Map(
        events
          .filter((e) => done.has(e._id.toHexString()))
          .map((e) => [e.wallet_id.toHexString(), e.wallet_id]),
      ).values(),
    ];
    await UserWalletModel.updateMany(
      { _id: { $in: walletIds } },
      { $pull: { pending_events: { _id: { $in: delivered } } } },
      { timestamps: false, ...tagged },
    );
    return done;
  } catch (error) {
    ctx.logger.warn(
      { err: error, events: events.length },
      'audit events stay in their wallet until the next sweep',
    );
    return new Set();
  }
}

/**
 * A wallet write that must land whatever agents do meanwhile: not conditional on the version. Its
 * event can't be complete before the write (the version and the state it replaces are known only
 * after it), so the update stores `provisional` (kind, actor, time, what is known of `after`) and
 * returns the document it replaced; `complete` turns that into the full event, under the same id,
 * which goes to the trail in the provisional one's place. Only if the process stops in between
 * does the trail keep the provisional event. Returns the replaced document, or null when `filter`
 * matched nothing.
 */
export async function writeWithEvent(
  ctx: OutboxContext,
  filter: Record<string, unknown>,
  update: Record<string, unknown>,
  provisional: WalletEventRecord,
  complete: (replaced: UserWallet) => Omit<WalletEventRecord, '_id' | 'at'>,
): Promise<UserWallet | null> {
  const tagged = dbOptions(ctx);
  const replaced = await UserWalletModel.findOneAndUpdate(
    filter,
    { ...update, $inc: { version: 1 }, ...pushEvents([provisional]) },
    { returnDocument: 'before', ...tagged },
  ).lean<UserWallet>();
  if (!replaced) return null;
  const event = { ...complete(replaced), _id: provisional._id, at: provisional.at };
  if (!(await deliverEvents(ctx, replaced._id, [event]))) {
    // Left to the sweep: let it find the complete event.
    await UserWalletModel.updateOne(
      { _id: replaced._id, 'pending_events._id': event._id },
      { $set: { 'pending_events.$': event } },
      { timestamps: false, ...tagged },
    ).catch((error: unknown) =>
      ctx.logger.warn(
        { err: error, walletId: replaced._id.toHexString() },
        'a provisional audit event could not be completed',
      ),
    );
  }
  return replaced;
}
