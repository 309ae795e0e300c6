import type { Types } from 'mongoose';
import { dbOptions, type RequestContext } from '../../core/context';
import type { UserWallet } from '../wallets/user-wallet.model';
import { eventIdsInTrail, type RecordedEvent } from './trail.service';
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
 *
 * The outbox is the wallets' own field: the wallets module keeps it (PendingEventStore, in
 * wallets/wallet-outbox.ts) and builds its AuditOutbox on it, and app/lifecycle.ts hands the same
 * store to the sweep, so this module imports nothing of the wallets'.
 */

/**
 * Told of events this instance has just put in the trail (AuditOutbox.onRecorded). For one
 * wallet's, with what the update that took them out of its outbox left of it (null for many
 * wallets' events at once).
 */
export type RecordedListener = (
  events: readonly RecordedEvent[],
  wallet: WalletAfterPull | null,
) => void;

/**
 * What a wallet holds right after a pull took events out of its outbox: its owner, what its
 * outbox still holds, and its recent_trail (which now ends with those events).
 */
export interface WalletAfterPull {
  _id: Types.ObjectId;
  user_id: Types.ObjectId;
  pending_events?: WalletEventRecord[];
  recent_trail?: TrailEntry[];
}

/**
 * What a wallet keeps of each of its events that reached the trail, in `recent_trail` (its last
 * few): the event's id, version and time, and when it left the outbox (`pulled_at`, by the clock of
 * the instance that pulled it). The live feed checks this instance's own events against it, to
 * send them at once (live/wallet-event-feed.ts), without reading the trail.
 */
export interface TrailEntry {
  _id: Types.ObjectId;
  version: number | null;
  at: Date;
  pulled_at: Date;
}

/** The events a pull takes out of the outboxes, as the wallets' recent_trail keeps them. */
export function trailEntries(
  events: readonly WalletEventRecord[],
  now = new Date(),
): Array<TrailEntry & { wallet_id: Types.ObjectId }> {
  return events.map((e) => ({
    _id: e._id,
    wallet_id: e.wallet_id,
    version: e.version,
    at: e.at,
    pulled_at: now,
  }));
}

/**
 * What the outbox reads of a context: its logger and the comment of its commands. Any actor's
 * context will do, and the service's own work (a sweep, the pause of a refused credential's
 * wallets) tags its commands through it.
 */
export type OutboxContext = Pick<RequestContext, 'logger' | 'comment'>;

/**
 * The commands on the wallets' outboxes (`user_wallets.pending_events`), which the wallets module
 * carries out. Each is one command with the context's database comment.
 */
export interface PendingEventStore {
  /**
   * The wallet update `update` on `filter`, which also grows the version (unless `keepVersion`) and
   * puts `event` in the outbox. The document it replaced, or null when `filter` matched nothing.
   */
  writeWith(
    ctx: OutboxContext,
    filter: Record<string, unknown>,
    update: Record<string, unknown>,
    event: WalletEventRecord,
    keepVersion?: boolean,
  ): Promise<UserWallet | null>;
  /**
   * Takes these events (now in the trail) out of the wallet's outbox and adds them to its
   * recent_trail, leaving its updated_at: the two in one update, so an event of a wallet is always
   * in one or the other (or gone from recent_trail, older than what it keeps). Returns what the
   * update left of the wallet (null when it is gone).
   */
  pull(
    ctx: OutboxContext,
    walletId: Types.ObjectId,
    events: readonly TrailEntry[],
  ): Promise<WalletAfterPull | null>;
  /** The same for the events of many wallets, in one command. */
  pullMany(
    ctx: OutboxContext,
    events: ReadonlyArray<TrailEntry & { wallet_id: Types.ObjectId }>,
  ): Promise<unknown>;
  /** Puts `event` in the wallet's outbox in the place of the pending event with its id. */
  replace(ctx: OutboxContext, walletId: Types.ObjectId, event: WalletEventRecord): Promise<unknown>;
  /**
   * Outboxes holding an event from before `cutoff`, by wallet id from after `after` (from the
   * first when null), at most `limit`.
   */
  overdue(
    ctx: OutboxContext,
    cutoff: Date,
    after: Types.ObjectId | null,
    limit: number,
  ): Promise<Array<{ _id: Types.ObjectId; pending_events: WalletEventRecord[] }>>;
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
 * The outbox on a store of pending events: the wallets module builds the one its writes use
 * (wallets/wallet-outbox.ts), the sweep its own on the same store.
 */
export class AuditOutbox {
  private readonly listeners = new Set<RecordedListener>();

  constructor(private readonly store: PendingEventStore) {}

  /**
   * Hears of the events this outbox puts in the trail, once they are out of their outboxes (the
   * live feed: this instance's own writes go out at once). Only events this outbox inserted itself
   * are told, with the time the trail holds for them. Returns the call that stops it.
   */
  onRecorded(listener: RecordedListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private tell(
    ctx: OutboxContext,
    events: readonly RecordedEvent[],
    wallet: WalletAfterPull | null,
  ): void {
    for (const listener of this.listeners) {
      try {
        listener(events, wallet);
      } catch (error) {
        // The events are stored: a listener's failure is not the write's.
        ctx.logger.warn({ err: error }, 'a listener of the audit trail failed');
      }
    }
  }

  /**
   * Copies a wallet's pending events into the trail and pulls them from the wallet; throws on
   * failure.
   */
  async copyEvents(
    ctx: OutboxContext,
    walletId: Types.ObjectId,
    events: readonly WalletEventRecord[],
  ): Promise<void> {
    if (events.length === 0) return;
    const ids = events.map((e) => e._id);
    const tagged = dbOptions(ctx);
    // The events are stored as they are (already typed). An id already in the trail was delivered
    // before (by the sweep, say); only an event still missing afterwards is a failure.
    const records = trailRecords(events);
    let inserted = true;
    await UserWalletEventModel.collection
      .insertMany(records, { ordered: false, ...tagged })
      .catch(async (error: unknown) => {
        inserted = false;
        if (
          (await UserWalletEventModel.countDocuments({ _id: { $in: ids } }, tagged)) !== ids.length
        )
          throw error;
      });
    const after = await this.store.pull(ctx, walletId, trailEntries(events));
    // Some were in the trail before, with another time: the feed's poll finds them as they are.
    if (inserted) this.tell(ctx, records, after);
  }

  /**
   * copyEvents after a write: a failure is logged and left to the sweep, since the events are safe
   * in the wallet. True when they were delivered.
   */
  async deliverEvents(
    ctx: OutboxContext,
    walletId: Types.ObjectId,
    events: readonly WalletEventRecord[],
  ): Promise<boolean> {
    try {
      await this.copyEvents(ctx, walletId, events);
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
   * deliverEvents for the events of many wallets at once (a batch of agents' writes): one insert
   * into the trail and one pull from the outboxes, whatever the number of wallets. Events the trail
   * did not take stay in their wallets for the sweep. Returns the ids (hex) now in the trail.
   */
  async deliverEventsOfMany(
    ctx: OutboxContext,
    events: readonly WalletEventRecord[],
  ): Promise<Set<string>> {
    if (events.length === 0) return new Set();
    const ids = events.map((e) => e._id);
    const tagged = dbOptions(ctx);
    try {
      let delivered = ids;
      const records = trailRecords(events);
      let inserted = true;
      await UserWalletEventModel.collection
        .insertMany(records, { ordered: false, ...tagged })
        .catch(async (error: unknown) => {
          inserted = false;
          // As in copyEvents: an id already in the trail was delivered before; only the missing
          // ones failed.
          delivered = await eventIdsInTrail(ctx, ids);
          if (delivered.length < ids.length)
            ctx.logger.warn(
              { err: error, events: ids.length - delivered.length },
              'audit events stay in their wallet until the next sweep',
            );
        });
      if (delivered.length === 0) return new Set();
      const done = new Set(delivered.map((id) => id.toHexString()));
      await this.store.pullMany(
        ctx,
        trailEntries(events.filter((e) => done.has(e._id.toHexString()))),
      );
      if (inserted) this.tell(ctx, records, null);
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
   * A wallet write that must land whatever agents do meanwhile: not conditional on the version.
   * Its event can't be complete before the write (the version and the state it replaces are known
   * only after it), so the update stores `provisional` (kind, actor, time, what is known of
   * `after`) and returns the document it replaced; `complete` turns that into the full event,
   * under the same id, which goes to the trail in the provisional one's place. Only if the process
   * stops in between does the trail keep the provisional event. Returns the replaced document, or
   * null when `filter` matched nothing. With `keepVersion`, the write leaves the wallet's version
   * (a grant: agents' expected versions stay good) and its event carries the version as it was.
   */
  async writeWithEvent(
    ctx: OutboxContext,
    filter: Record<string, unknown>,
    update: Record<string, unknown>,
    provisional: WalletEventRecord,
    complete: (replaced: UserWallet) => Omit<WalletEventRecord, '_id' | 'at'>,
    keepVersion = false,
  ): Promise<UserWallet | null> {
    const replaced = await this.store.writeWith(ctx, filter, update, provisional, keepVersion);
    if (!replaced) return null;
    // A write that leaves the version is placed among the others by its time: the moment it landed,
    // after any write whose version it carries.
    const event = {
      ...complete(replaced),
      _id: provisional._id,
      at: keepVersion ? new Date() : provisional.at,
    };
    if (!(await this.deliverEvents(ctx, replaced._id, [event]))) {
      // Left to the sweep: let it find the complete event.
      await this.store
        .replace(ctx, replaced._id, event)
        .catch((error: unknown) =>
          ctx.logger.warn(
            { err: error, walletId: replaced._id.toHexString() },
            'a provisional audit event could not be completed',
          ),
        );
    }
    return replaced;
  }
}
