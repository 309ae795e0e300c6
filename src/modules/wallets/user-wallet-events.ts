import DataLoader from 'dataloader';
import { Types } from 'mongoose';
import { actorName, type Actor } from '../auth/roles';
import type { Logger } from '../../core/logger';
import { metrics } from '../../core/metrics';
import { backgroundComment, commentOption } from '../../shared/background';
import { afterDescending, encodeTimeCursor, type TimeCursor } from './cursors';
import {
  UserWalletEventModel,
  WalletEventKind,
  type UserWalletEvent,
  type WalletEventRecord,
} from '../audit/user-wallet-event.model';
import {
  UserWalletModel,
  type AiManagedState,
  type UserLimits,
  type UserWallet,
  type WalletStatus,
} from './user-wallet.model';

export { WalletEventKind };

export const DEFAULT_EVENTS = 20;
export const MAX_EVENTS = 100;

/*
 * The audit trail without transactions. Every wallet write carries its events in the same update
 * ($push to the wallet's `pending_events`), so a change and its events are stored together or not
 * at all. Right after, they are copied to `user_wallet_events` and pulled from the wallet. Should
 * that fail, or the process die in between, the sweep (`deliverPendingEvents`: at start-up and
 * every 30 s) copies them later, and `UserWallet.events` shows them meanwhile. Copies go by `_id`,
 * so delivering one twice is harmless.
 *
 * Agents' writes are conditional on the version they read, so their events are complete when
 * written. Users' writes and the pauses that keep a wallet safe must land however busy the agents
 * are, so they are not conditional on the version: see writeWithEvent.
 */

/** Pending events younger than this are left to the request that wrote them. */
const SWEEP_AFTER_MS = 5_000;
const SWEEP_BATCH = 500;
const SWEEP_INTERVAL_MS = 30_000;
const SWEEP_COMMENT = backgroundComment('audit outbox sweep');

/**
 * Who did it, as the audit trail names them: a user by id, an agent by its token's name, the
 * service as wallet-service.
 */
function actorOf(actor: Actor): {
  actor: string;
  actor_role: Actor['role'];
  actor_id: Types.ObjectId;
} {
  // Agent names are not unique: the token's own id is kept beside the name.
  const id =
    actor.kind === 'user' ? actor.userId : actor.kind === 'agent' ? actor.agentId : actor.id;
  return { actor: actorName(actor), actor_role: actor.role, actor_id: id };
}

/**
 * One event, ready to go into the update that makes the change; `version` is the one it produces.
 */
export function walletEvent(
  principal: Actor,
  walletId: Types.ObjectId,
  version: number | null,
  kind: WalletEventKind,
  before: Record<string, unknown> | null,
  after: Record<string, unknown> | null,
): WalletEventRecord {
  return {
    _id: new Types.ObjectId(),
    wallet_id: walletId,
    kind,
    ...actorOf(principal),
    before,
    after,
    version,
    at: new Date(),
  };
}

/**
 * A status change's provisional event, and how writeWithEvent completes it from the document it
 * replaced.
 */
export function statusChangeEvent(
  principal: Actor,
  walletId: Types.ObjectId,
  to: WalletStatus,
  pauseReason: string | null,
): { provisional: WalletEventRecord; complete: (replaced: UserWallet) => WalletEventRecord } {
  const provisional = walletEvent(
    principal,
    walletId,
    null,
    WalletEventKind.STATUS_CHANGED,
    null,
    apiStatus(to, pauseReason),
  );
  return {
    provisional,
    complete: (replaced) => ({
      ...provisional,
      version: replaced.version + 1,
      before: apiStatus(replaced.status, replaced.pause_reason),
    }),
  };
}

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
 * failure. `comment` tags the commands of the service's own work (shared/background.ts).
 */
export async function copyEvents(
  walletId: Types.ObjectId,
  events: readonly WalletEventRecord[],
  comment?: string,
): Promise<void> {
  if (events.length === 0) return;
  const ids = events.map((e) => e._id);
  const tagged = commentOption(comment);
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
  logger: Logger,
  walletId: Types.ObjectId,
  events: readonly WalletEventRecord[],
  comment?: string,
): Promise<boolean> {
  try {
    await copyEvents(walletId, events, comment);
    return true;
  } catch (error) {
    logger.warn(
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
  logger: Logger,
  events: readonly WalletEventRecord[],
): Promise<Set<string>> {
  if (events.length === 0) return new Set();
  const ids = events.map((e) => e._id);
  try {
    let delivered = ids;
    await UserWalletEventModel.collection
      .insertMany(trailRecords(events), { ordered: false })
      .catch(async (error: unknown) => {
        // As in copyEvents: an id already in the trail was delivered before; only the missing ones
        // failed.
        delivered = (
          await UserWalletEventModel.find({ _id: { $in: ids } }, { _id: 1 }).lean<
            Array<{ _id: Types.ObjectId }>
          >()
        ).map((e) => e._id);
        if (delivered.length < ids.length)
          logger.warn(
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
      { timestamps: false },
    );
    return done;
  } catch (error) {
    logger.warn(
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
  logger: Logger,
  filter: Record<string, unknown>,
  update: Record<string, unknown>,
  provisional: WalletEventRecord,
  complete: (replaced: UserWallet) => Omit<WalletEventRecord, '_id' | 'at'>,
  comment?: string,
): Promise<UserWallet | null> {
  const tagged = commentOption(comment);
  const replaced = await UserWalletModel.findOneAndUpdate(
    filter,
    { ...update, $inc: { version: 1 }, ...pushEvents([provisional]) },
    { returnDocument: 'before', ...tagged },
  ).lean<UserWallet>();
  if (!replaced) return null;
  const event = { ...complete(replaced), _id: provisional._id, at: provisional.at };
  if (!(await deliverEvents(logger, replaced._id, [event], comment))) {
    // Left to the sweep: let it find the complete event.
    await UserWalletModel.updateOne(
      { _id: replaced._id, 'pending_events._id': event._id },
      { $set: { 'pending_events.$': event } },
      { timestamps: false, ...tagged },
    ).catch((error: unknown) =>
      logger.warn(
        { err: error, walletId: replaced._id.toHexString() },
        'a provisional audit event could not be completed',
      ),
    );
  }
  return replaced;
}

/** Where the last sweep stopped, when it had more than one batch to do. */
let sweptUpTo: Types.ObjectId | null = null;

/**
 * The sweep: delivers events left pending for longer than a request takes, a batch of wallets at a
 * time in id order (so wallets whose events keep failing can't hold the others back). Returns how
 * many it delivered.
 */
export async function deliverPendingEvents(logger: Logger, now = new Date()): Promise<number> {
  const cutoff = new Date(now.getTime() - SWEEP_AFTER_MS);
  const wallets = await UserWalletModel.find(
    { 'pending_events.at': { $lt: cutoff }, ...(sweptUpTo ? { _id: { $gt: sweptUpTo } } : {}) },
    { pending_events: 1 },
  )
    .sort({ _id: 1 })
    .limit(SWEEP_BATCH)
    .comment(SWEEP_COMMENT)
    .lean<Array<{ _id: Types.ObjectId; pending_events: WalletEventRecord[] }>>();
  sweptUpTo = wallets.length === SWEEP_BATCH ? wallets[wallets.length - 1]._id : null;
  let delivered = 0;
  for (const wallet of wallets) {
    if (await deliverEvents(logger, wallet._id, wallet.pending_events, SWEEP_COMMENT))
      delivered += wallet.pending_events.length;
  }
  if (delivered > 0)
    logger.warn(
      { delivered },
      'audit events delivered by the sweep (a request could not deliver them)',
    );
  metrics.sweepDelivered.inc(delivered);
  return delivered;
}

/**
 * Runs the sweep now and every SWEEP_INTERVAL_MS; returns the function that stops it and waits for
 * a sweep under way.
 */
export function startEventSweep(logger: Logger): () => Promise<void> {
  let running: Promise<void> = Promise.resolve();
  const sweep = () => {
    running = deliverPendingEvents(logger).then(
      () => undefined,
      (error: unknown) =>
        logger.warn(
          { err: error },
          `audit event sweep failed; next try in ${SWEEP_INTERVAL_MS / 1000} s`,
        ),
    );
  };
  sweep();
  const timer = setInterval(sweep, SWEEP_INTERVAL_MS).unref();
  return async () => {
    clearInterval(timer);
    await running;
  };
}

/**
 * Which part of a wallet's trail a request reads: the newest `first` (after `before`, when given),
 * of `kinds` only when given.
 */
export interface TrailQuery {
  first: number;
  kinds: readonly WalletEventKind[] | null;
  before: TimeCursor | null;
}

function inTrailQuery(event: WalletEventRecord, query: TrailQuery): boolean {
  if (query.kinds && !query.kinds.includes(event.kind)) return false;
  const { before } = query;
  if (!before) return true;
  const at = event.at.getTime() - before.at.getTime();
  return at < 0 || (at === 0 && event._id.toHexString() < before.id.toHexString());
}

/**
 * A wallet's trail as the API shows it: delivered events and any still pending (in the query),
 * newest first, at most query.first. An event delivered but not yet pulled is shown once, as
 * delivered.
 */
export function withPending(
  delivered: UserWalletEvent[],
  pending: readonly WalletEventRecord[] | undefined,
  query: TrailQuery,
): UserWalletEvent[] {
  const waiting = pending?.filter((e) => inTrailQuery(e, query));
  if (!waiting?.length) return delivered.slice(0, query.first);
  const seen = new Set(delivered.map((e) => e._id.toHexString()));
  const merged = [...delivered, ...waiting.filter((e) => !seen.has(e._id.toHexString()))];
  merged.sort(
    (a, b) =>
      b.at.getTime() - a.at.getTime() || b._id.toHexString().localeCompare(a._id.toHexString()),
  );
  return merged.slice(0, query.first);
}

/** The API's names for what the events record. */
export function apiLimits(limits: UserLimits): Record<string, unknown> {
  return {
    maxTotalRisk: limits.max_total_risk,
    allowedSymbols: limits.allowed_symbols ?? null,
    tradingMode: limits.trading_mode.toUpperCase(),
  };
}

const AI_STATE_NAMES: Record<keyof AiManagedState, string> = {
  current_risk: 'currentRisk',
  daily_pnl: 'dailyPnl',
  open_positions: 'openPositions',
  current_max_position_size: 'currentMaxPositionSize',
  current_leverage: 'currentLeverage',
  adaptive_stop_loss: 'adaptiveStopLoss',
  risk_score: 'riskScore',
  market_sentiment: 'marketSentiment',
  confidence_level: 'confidenceLevel',
  last_ai_decision: 'lastAiDecision',
};

export function apiAiState(state: Partial<AiManagedState>): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(state).map(([key, value]) => [
      AI_STATE_NAMES[key as keyof AiManagedState],
      key === 'market_sentiment'
        ? String(value).toUpperCase()
        : value instanceof Date
          ? value.toISOString()
          : value,
    ]),
  );
}

export function apiStatus(
  status: WalletStatus,
  pauseReason: string | null,
): Record<string, unknown> {
  return { status: status.toUpperCase(), pauseReason };
}

/**
 * Newest first, per wallet: one aggregation for every wallet of the request that reads the same
 * part of its trail, cut to query.first per wallet in the database, so a long trail is never
 * shipped whole.
 */
export function createTrailLoader(
  query: TrailQuery,
): DataLoader<Types.ObjectId, UserWalletEvent[], string> {
  return new DataLoader(
    async (walletIds) => {
      const match: Record<string, unknown> = { wallet_id: { $in: walletIds } };
      if (query.kinds) match.kind = { $in: query.kinds };
      if (query.before) Object.assign(match, afterDescending('at', query.before));
      const groups = await UserWalletEventModel.aggregate<{
        _id: Types.ObjectId;
        events: UserWalletEvent[];
      }>([
        { $match: match },
        { $sort: { at: -1, _id: -1 } },
        { $group: { _id: '$wallet_id', events: { $push: '$$ROOT' } } },
        { $project: { events: { $slice: ['$events', query.first] } } },
      ]);
      const byWallet = new Map(groups.map((g) => [g._id.toHexString(), g.events]));
      return walletIds.map((id) => byWallet.get(id.toHexString()) ?? []);
    },
    { cacheKeyFn: (id) => id.toHexString() },
  );
}

/** The key under which a request keeps one trail loader per distinct TrailQuery. */
export function trailQueryKey(query: TrailQuery): string {
  return `${query.first}|${query.kinds?.join(',') ?? '*'}|${query.before ? encodeTimeCursor(query.before.at, query.before.id) : ''}`;
}
