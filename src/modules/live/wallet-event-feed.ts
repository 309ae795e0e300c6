import type { Types } from 'mongoose';
import { systemCtx, type SystemContext } from '../../core/context';
import type { Logger } from '../../core/logger';
import { metrics } from '../../core/metrics';
import type { WalletAfterPull } from '../audit/outbox';
import { recordedEvents, recordedSince, type RecordedEvent } from '../audit/trail.service';
import type { UserWalletEvent, WalletEventKind } from '../audit/user-wallet-event.model';
import { outboxesAndTrailsOf, ownersOf, pendingEventsOf } from '../wallets/user-wallet.service';
import { RECENT_TRAIL_KEPT } from '../wallets/wallet-outbox';
import { asJob } from '../../core/tracing';
import type { EventSink, PushSource } from './push-source';

/**
 * Live wallet events, from the audit trail: the one source every instance shares, on any engine.
 * Each instance polls the trail (one query per interval, however many subscribers it has, and none
 * while it has none) for what was recorded since its watermark, with an overlap for clocks and for
 * inserts still landing, dropping ids it already sent. An event the outbox sweep delivers late has
 * a new `recorded_at`, so it goes out too.
 *
 * Order per wallet: events become ready a moment (`settleMs`) after they are recorded, and go out
 * by version within a wallet; a wallet whose outbox still holds an earlier (or not yet known)
 * version waits for it, so a later event never overtakes an earlier one that is on its way.
 *
 * This instance's own events go out at once, without waiting for the poll or the settle time (see
 * recordedHere): its outbox tells the feed as it puts them in the trail. One that an earlier event
 * of its wallet may still come before waits, and goes with the poll, in order.
 *
 * An event finds its subscriptions through an index (see Audience), never by a look at every
 * subscription: its cost does not grow with the connections it does not concern.
 */

export interface FeedSettings {
  pollMs: number;
  settleMs: number;
  overlapMs: number;
}

export const FEED_SETTINGS: FeedSettings = { pollMs: 250, settleMs: 300, overlapMs: 1_000 };

/**
 * The feed's polls, as the service's own work (core/context.ts systemCtx): its queries carry the
 * background comment, so the benchmark's proxy counts them as no request's.
 */
const FEED_JOB = 'wallet event feed';
/**
 * A subscription gets what was recorded from its start on, less this allowance for the clocks of
 * the instances that stamp `recorded_at` (an event may come from a moment earlier, never a gap).
 */
const CLOCK_ALLOWANCE_MS = 250;
/** Owners are remembered per wallet (a wallet never changes hands): up to this many. */
const OWNER_CACHE = 100_000;

/**
 * Which events a subscription gets, as the index files it: one wallet's; the wallets of one owner;
 * every wallet (an ALL_WALLETS agent); or the wallets an agent holds a grant on (a GRANTED_WALLETS
 * agent: the grant index names the holders of an event's wallet). With `kinds`, only those.
 */
export type Audience =
  | { wallet: Types.ObjectId }
  | { owner: Types.ObjectId }
  | { everyWallet: true; kinds: readonly WalletEventKind[] | null }
  | { grantsOf: Types.ObjectId; kinds: readonly WalletEventKind[] | null };

/** Who holds a grant in force on a wallet, among the agents subscribed here (GrantIndex). */
export interface GrantHolders {
  holdersOf(walletId: Types.ObjectId): readonly string[];
}

export interface FeedSubscription extends PushSource<UserWalletEvent> {
  return(): Promise<IteratorResult<UserWalletEvent>>;
}

interface Subscriber {
  since: number;
  /** Where it is filed in the index: every event filed under one of these reaches it. */
  keys: readonly string[];
  push(event: UserWalletEvent): void;
}

/**
 * The index's keys. A subscription is filed under those of its audience; an event is looked up
 * under those it matches, each of which names subscriptions that want it, and no others.
 */
const key = {
  wallet: (walletId: string) => `wallet:${walletId}`,
  owner: (userId: string) => `owner:${userId}`,
  every: (kind: string | null) => (kind === null ? 'every' : `every:${kind}`),
  grants: (agentId: string, kind: string | null) =>
    kind === null ? `grants:${agentId}` : `grants:${agentId}:${kind}`,
};

function keysOf(audience: Audience): string[] {
  if ('wallet' in audience) return [key.wallet(audience.wallet.toHexString())];
  if ('owner' in audience) return [key.owner(audience.owner.toHexString())];
  // Filed once per kind it wants (an event has one kind, so it is found once).
  const kinds = audience.kinds?.length ? [...new Set(audience.kinds)] : [null];
  if ('everyWallet' in audience) return kinds.map(key.every);
  const agent = audience.grantsOf.toHexString();
  return kinds.map((kind) => key.grants(agent, kind));
}

export class WalletEventFeed {
  private readonly index = new Map<string, Set<Subscriber>>();
  private subscriberCount = 0;
  private watermark = 0;
  /** Ids sent, with when they were recorded: kept while a poll's overlap can read them again. */
  private readonly sent = new Map<string, number>();
  /**
   * Read but not sent yet: too fresh, or behind an earlier event of their wallet still in its
   * outbox.
   */
  private held = new Map<string, RecordedEvent>();
  /**
   * Events sent in the last CLOCK_ALLOWANCE_MS, oldest first: a subscription that begins meanwhile
   * gets those recorded from its start on, as it would have from the poll had they not gone out
   * already (this instance's own go out at once, maybe before a subscription sent with its write
   * is in the index).
   */
  private recentlySent: Array<{ event: UserWalletEvent; recorded: number; sentAt: number }> = [];
  /** This instance's own events, in the trail, waiting for their round (recordedHere). */
  private ownToSend: RecordedEvent[] = [];
  private ownRoundQueued = false;
  /**
   * When the last read of the trail began: what reached the trail well before it (overlapMs, as
   * the reads' own overlap allows for clocks and inserts still landing) has been read.
   */
  private lastReadAt = 0;
  private readonly owners = new Map<string, Types.ObjectId | null>();
  private timer: NodeJS.Timeout | undefined;
  /**
   * The poll under way and the one waiting for it, and likewise this instance's own rounds: each
   * kind one at a time. A poll and an own round may overlap, each waiting for the database, so an
   * own event never waits for a poll's reads; neither changes what the feed holds or has sent but
   * between its reads and its next, and each decides on what the feed holds and has sent then.
   */
  private polls: Promise<void> = Promise.resolve();
  private ownRounds: Promise<void> = Promise.resolve();
  private stopped = false;

  constructor(
    private readonly logger: Logger,
    private readonly grants: GrantHolders,
    private readonly settings: FeedSettings = FEED_SETTINGS,
  ) {}

  /**
   * Events from now on of `audience`. `maxWaiting` bounds what may wait for a slow consumer: past
   * it, `onOverflow` is called (the connection is closed) and the subscription ends. `onEnd` is
   * called once it has ended, however.
   */
  subscribe(
    audience: Audience,
    maxWaiting: number,
    onOverflow: () => void,
    onEnd?: () => void,
  ): FeedSubscription {
    // Events not asked for yet, and the asks (next()) waiting for one: one of the two is empty.
    // A queue of its own rather than a library's async iterator: with 50 subscriptions on every
    // event, the library's push (a chain of promises and closures each) was a sixth of what they
    // added to a write's CPU.
    const waiting: UserWalletEvent[] = [];
    const asks: Array<(step: IteratorResult<UserWalletEvent>) => void> = [];
    // Or a sink they are handed to as they come (pushTo), while it can take them.
    let sink: EventSink<UserWalletEvent> | null = null;
    let sinkReady = false;
    const handOver = () => {
      while (sinkReady && !ended && waiting.length > 0) sinkReady = sink!.take(waiting.shift()!);
    };
    let ended = false;
    const done = (): IteratorResult<UserWalletEvent> => ({ value: undefined, done: true });
    const end = () => {
      if (ended) return;
      ended = true;
      waiting.length = 0;
      this.remove(subscriber);
      for (const ask of asks.splice(0)) ask(done());
      sink?.end();
      onEnd?.();
    };
    const subscriber: Subscriber = {
      since: Date.now() - CLOCK_ALLOWANCE_MS,
      keys: keysOf(audience),
      push: (event) => {
        if (ended) return;
        if (sinkReady && waiting.length === 0) {
          sinkReady = sink!.take(event);
          return;
        }
        const ask = asks.shift();
        if (ask) ask({ value: event, done: false });
        else if (waiting.length < maxWaiting) waiting.push(event);
        else {
          onOverflow();
          end();
        }
      },
    };
    this.add(subscriber);
    return {
      next: () => {
        if (waiting.length > 0) return Promise.resolve({ value: waiting.shift()!, done: false });
        if (ended) return Promise.resolve(done());
        return new Promise((resolve) => asks.push(resolve));
      },
      return: () => {
        end();
        return Promise.resolve(done());
      },
      // What waits for a sink that can't take it is bounded as for a consumer that does not ask:
      // past maxWaiting, onOverflow.
      pushTo: (to) => {
        sink = to;
        if (ended) {
          to.end();
          return () => undefined;
        }
        sinkReady = true;
        handOver();
        return () => {
          sinkReady = true;
          handOver();
        };
      },
      [Symbol.asyncIterator]() {
        return this;
      },
    };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await Promise.all([this.polls, this.ownRounds]);
  }

  private add(subscriber: Subscriber): void {
    if (this.subscriberCount === 0) {
      // Nothing recorded before the first subscriber is owed to anyone.
      this.watermark = Date.now();
      this.lastReadAt = this.watermark;
      this.sent.clear();
      this.held.clear();
      this.ownToSend = [];
      this.recentlySent = [];
    }
    this.subscriberCount++;
    for (const k of subscriber.keys) {
      let filed = this.index.get(k);
      if (!filed) this.index.set(k, (filed = new Set()));
      filed.add(subscriber);
    }
    this.forgetSentBefore(Date.now() - CLOCK_ALLOWANCE_MS);
    for (const { event, recorded } of this.recentlySent)
      if (
        recorded >= subscriber.since &&
        this.keysFor(event).some((k) => subscriber.keys.includes(k))
      )
        subscriber.push(event);
    if (!this.timer && !this.stopped) this.schedule();
  }

  private remove(subscriber: Subscriber): void {
    this.subscriberCount--;
    for (const k of subscriber.keys) {
      const filed = this.index.get(k);
      if (!filed?.delete(subscriber)) continue;
      if (filed.size === 0) this.index.delete(k);
    }
  }

  private schedule(): void {
    this.timer = setTimeout(() => {
      const ctx = systemCtx(this.logger, FEED_JOB);
      void asJob(
        FEED_JOB,
        () => this.poll(ctx),
        (error) =>
          ctx.logger.warn(
            { err: error },
            'the live event feed could not read the trail; next try soon',
          ),
      ).finally(() => {
        this.timer = undefined;
        if (this.subscriberCount > 0 && !this.stopped) this.schedule();
      });
    }, this.settings.pollMs);
    this.timer.unref();
  }

  /** One poll, after any under way: read what is new, send what is ready, in order. */
  poll(ctx: SystemContext, now?: number): Promise<void> {
    const run = this.polls.then(() => this.read(ctx, now ?? Date.now()));
    this.polls = run.catch(() => undefined);
    return run;
  }

  private async read(ctx: SystemContext, now: number): Promise<void> {
    const readAt = Date.now();
    const ids = await recordedSince(ctx, new Date(this.watermark - this.settings.overlapMs));
    for (const { recorded_at } of ids)
      this.watermark = Math.max(this.watermark, recorded_at.getTime());
    const fresh = ids
      .filter(({ _id }) => !this.sent.has(_id.toHexString()) && !this.held.has(_id.toHexString()))
      .map(({ _id }) => _id);
    if (fresh.length > 0) {
      const events = await recordedEvents(ctx, fresh);
      // An own round may have sent some meanwhile.
      for (const event of events)
        if (!this.sent.has(event._id.toHexString())) this.held.set(event._id.toHexString(), event);
    }
    // Only now is what the read found held here (or sent before).
    this.lastReadAt = Math.max(this.lastReadAt, readAt);
    await this.release(ctx, now - this.settings.settleMs);
    for (const [id, recorded] of this.sent)
      if (recorded < this.watermark - this.settings.overlapMs - this.settings.settleMs)
        this.sent.delete(id);
  }

  /**
   * Sends, wallet by wallet, the held events recorded by `settled`, in version order, up to the
   * first that must wait: for an earlier event still in its wallet's outbox, or behind an earlier
   * one held here that is not settled yet (an event delivered late reaches the trail after later
   * ones of its wallet).
   */
  private async release(ctx: SystemContext, settled: number): Promise<void> {
    const isSettled = (e: RecordedEvent) => e.recorded_at.getTime() <= settled;
    const walletIds = [...groupByWallet([...this.held.values()]).values()]
      .filter((events) => events.some(isSettled))
      .map((events) => events[0].wallet_id);
    if (walletIds.length === 0) return;
    const outboxes = await pendingEventsOf(ctx, walletIds);
    // What each wallet still has on the way: in its outbox, not yet in the trail.
    const onTheWay = new Map<string, UserWalletEvent[]>();
    for (const wallet of outboxes) {
      const waiting = wallet.pending_events.filter(
        (p) => !this.held.has(p._id.toHexString()) && !this.sent.has(p._id.toHexString()),
      );
      if (waiting.length > 0) onTheWay.set(wallet._id.toHexString(), waiting);
    }
    await this.learnOwners(ctx, walletIds);

    // What is held now: an own round may have sent some, or held some, meanwhile.
    const wanted = new Set(walletIds.map((id) => id.toHexString()));
    const byWallet = [...groupByWallet([...this.held.values()])].filter(([w]) => wanted.has(w));
    const out: RecordedEvent[][] = [];
    for (const [wallet, events] of byWallet) {
      events.sort(byVersion);
      const earlier = onTheWay.get(wallet);
      const going: RecordedEvent[] = [];
      for (const event of events) {
        if (!isSettled(event)) break;
        // An earlier event (or one whose version is not known yet) is still in the outbox: wait
        // for it.
        if (earlier?.some((p) => precedes(p, event))) break;
        going.push(event);
      }
      if (going.length > 0) out.push(going);
    }
    // Wallets in the order their events reached the trail; within one, by version, whatever the
    // times (an event the sweep delivered late reached the trail after later ones of its wallet).
    const firstRecorded = (events: RecordedEvent[]) =>
      Math.min(...events.map((e) => e.recorded_at.getTime()));
    out.sort((a, b) => firstRecorded(a) - firstRecorded(b));
    for (const events of out) for (const event of events) this.send(event);
  }

  /**
   * Events this instance has just put in the trail (its outbox tells, app/server.ts): they go out
   * at once rather than with the poll after the settle time, each unless something earlier of its
   * wallet may still come (see mayStillCome); those wait, held, and the poll sends them in order.
   * One wallet's events come with what the update that took them out of its outbox left of it,
   * which is all the check needs, so they are decided here; many wallets' (a batch) in a round of
   * their own, after one read of those wallets.
   */
  recordedHere(events: readonly RecordedEvent[], wallet: WalletAfterPull | null = null): void {
    if (this.subscriberCount === 0 || this.stopped) return;
    if (wallet) this.rememberOwner(wallet._id.toHexString(), wallet.user_id);
    // One that no subscription here wants needs no round: the poll reads it, and drops it.
    const wanted = events.filter((e) => this.mayBeWanted(e));
    if (wanted.length === 0) return;
    if (wallet) {
      this.decideOwn(wanted, new Map([[wallet._id.toHexString(), wallet]]));
      return;
    }
    this.ownToSend.push(...wanted);
    if (this.ownRoundQueued) return;
    this.ownRoundQueued = true;
    const ctx = systemCtx(this.logger, FEED_JOB);
    this.ownRounds = this.ownRounds.then(() => {
      this.ownRoundQueued = false;
      const events = this.ownToSend.splice(0);
      return asJob(
        FEED_JOB,
        () => this.sendOwn(ctx, events),
        (error) =>
          // They are in the trail: the poll sends them.
          ctx.logger.warn({ err: error }, "this instance's own events go with the next poll"),
      );
    });
  }

  private async sendOwn(ctx: SystemContext, events: RecordedEvent[]): Promise<void> {
    const own = events.filter((e) => !this.sent.has(e._id.toHexString()));
    if (own.length === 0 || this.subscriberCount === 0) return;
    const walletIds = [...groupByWallet(own).values()].map((mine) => mine[0].wallet_id);
    // Read after the events left their outboxes: an earlier event is then in its wallet's outbox or
    // in its recent_trail (both are one update), which this one read by id shows.
    const wallets = new Map(
      (await outboxesAndTrailsOf(ctx, walletIds)).map((w) => [w._id.toHexString(), w]),
    );
    // The read names every owner; a wallet it did not find is gone (no owner), so no other read.
    for (const id of walletIds) {
      const key = id.toHexString();
      this.rememberOwner(key, wallets.get(key)?.user_id ?? null);
    }
    this.decideOwn(own, wallets);
  }

  /**
   * Each of this instance's own events sent at once, or held for the poll, on what `wallets` show
   * of their wallets (read after the events left their outboxes).
   */
  private decideOwn(
    events: readonly RecordedEvent[],
    wallets: ReadonlyMap<string, WalletAfterPull>,
  ): void {
    const ownIds = new Set(events.map((e) => e._id.toHexString()));
    const horizon = this.lastReadAt - this.settings.overlapMs;
    for (const [wallet, mine] of groupByWallet(events)) {
      mine.sort(byVersion);
      const found = wallets.get(wallet);
      // A wallet gone meanwhile: nothing to check against, so the poll sends them.
      const earlier = found ? this.mayStillCome(found, ownIds, horizon) : null;
      let waiting = false;
      for (const event of mine) {
        // The poll sent it meanwhile (its round came late).
        if (this.sent.has(event._id.toHexString())) continue;
        // One that waits keeps the later ones of its wallet waiting too.
        waiting ||= earlier === null || earlier.some((p) => precedes(p, event));
        if (waiting) {
          this.held.set(event._id.toHexString(), event);
          metrics.liveOwnEvents.inc({ sent: 'with_the_poll' });
        } else {
          this.send(event);
          metrics.liveOwnEvents.inc({ sent: 'at_once' });
        }
      }
    }
  }

  /**
   * What of this wallet may still reach the feed and is none of `own`: what its outbox holds, what
   * the feed holds, and what its recent_trail shows left the outbox since shortly before the last
   * read of the trail (which may have missed it) and was not sent. Null when the feed can't tell:
   * recent_trail may have let such an event go (it is full, and its oldest is that recent).
   */
  private mayStillCome(
    wallet: WalletAfterPull,
    own: ReadonlySet<string>,
    horizon: number,
  ): Array<Pick<UserWalletEvent, 'version' | 'at'>> | null {
    const trail = wallet.recent_trail ?? [];
    if (trail.length >= RECENT_TRAIL_KEPT && trail[0].pulled_at.getTime() >= horizon) return null;
    const unsent = (id: Types.ObjectId) =>
      !own.has(id.toHexString()) && !this.sent.has(id.toHexString());
    const held = [...this.held.values()].filter(
      (e) => e.wallet_id.equals(wallet._id) && !own.has(e._id.toHexString()),
    );
    return [
      ...(wallet.pending_events ?? []).filter((p) => unsent(p._id)),
      ...trail.filter((e) => e.pulled_at.getTime() >= horizon && unsent(e._id)),
      ...held,
    ];
  }

  /** Sent once: remembered (a later read drops it) and handed to its subscriptions. */
  private send(event: RecordedEvent): void {
    const id = event._id.toHexString();
    this.held.delete(id);
    this.sent.set(id, event.recorded_at.getTime());
    const { recorded_at: _recorded, ...shown } = event;
    this.deliver(shown, event.recorded_at.getTime());
    const now = Date.now();
    this.forgetSentBefore(now - CLOCK_ALLOWANCE_MS);
    this.recentlySent.push({ event: shown, recorded: event.recorded_at.getTime(), sentAt: now });
  }

  private forgetSentBefore(moment: number): void {
    let gone = 0;
    while (gone < this.recentlySent.length && this.recentlySent[gone].sentAt < moment) gone++;
    if (gone > 0) this.recentlySent.splice(0, gone);
  }

  /** To the subscriptions filed under the event's keys, those that began before it was recorded. */
  private deliver(event: UserWalletEvent, recorded: number): void {
    let offered = 0;
    for (const k of this.keysFor(event)) {
      const filed = this.index.get(k);
      if (!filed) continue;
      for (const subscriber of filed) {
        offered++;
        if (recorded >= subscriber.since) subscriber.push(event);
      }
    }
    if (offered > 0) metrics.liveEventOffers.inc(offered);
  }

  /** Whether a subscription here may want it (its owner not known yet: it may). */
  private mayBeWanted(event: UserWalletEvent): boolean {
    if (!this.owners.has(event.wallet_id.toHexString())) return true;
    return this.keysFor(event).some((k) => this.index.has(k));
  }

  /** The index's keys under which the subscriptions that want this event are filed. */
  private keysFor(event: UserWalletEvent): string[] {
    const wallet = event.wallet_id.toHexString();
    const owner = this.owners.get(wallet) ?? null;
    const keys = [key.wallet(wallet), key.every(null), key.every(event.kind)];
    if (owner) keys.push(key.owner(owner.toHexString()));
    for (const agent of this.grants.holdersOf(event.wallet_id))
      keys.push(key.grants(agent, null), key.grants(agent, event.kind));
    return keys;
  }

  private async learnOwners(ctx: SystemContext, walletIds: Types.ObjectId[]): Promise<void> {
    const unknown = walletIds.filter((id) => !this.owners.has(id.toHexString()));
    if (unknown.length === 0) return;
    const wallets = await ownersOf(ctx, unknown);
    const found = new Map(wallets.map((w) => [w._id.toHexString(), w.user_id]));
    for (const id of unknown)
      this.rememberOwner(id.toHexString(), found.get(id.toHexString()) ?? null);
  }

  private rememberOwner(walletKey: string, owner: Types.ObjectId | null): void {
    if (this.owners.has(walletKey)) return;
    if (this.owners.size >= OWNER_CACHE) this.owners.delete(this.owners.keys().next().value!);
    this.owners.set(walletKey, owner);
  }
}

function groupByWallet(events: readonly RecordedEvent[]): Map<string, RecordedEvent[]> {
  const byWallet = new Map<string, RecordedEvent[]>();
  for (const event of events) {
    const key = event.wallet_id.toHexString();
    const mine = byWallet.get(key);
    if (mine) mine.push(event);
    else byWallet.set(key, [event]);
  }
  return byWallet;
}

/**
 * Whether `event` must wait for `p`, of the same wallet: `p` comes before it, or either's version
 * is not known (a provisional event) and so may.
 */
function precedes(p: Pick<UserWalletEvent, 'version' | 'at'>, event: UserWalletEvent): boolean {
  return p.version === null || event.version === null || before(p, event);
}

/**
 * Whether `a` comes before `b` in their wallet's order: by version, then by time. A grant leaves the
 * version, so its event shares the version of the write before it and comes after that one.
 */
function before(a: Pick<UserWalletEvent, 'version' | 'at'>, b: UserWalletEvent): boolean {
  return a.version! < b.version! || (a.version === b.version && a.at.getTime() < b.at.getTime());
}

/**
 * Within a wallet: by version; an event whose version was never known (a provisional one) by its
 * time.
 */
function byVersion(a: UserWalletEvent, b: UserWalletEvent): number {
  if (a.version !== null && b.version !== null && a.version !== b.version)
    return a.version - b.version;
  return a.at.getTime() - b.at.getTime() || a._id.toHexString().localeCompare(b._id.toHexString());
}
