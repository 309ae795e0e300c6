import DataLoader from 'dataloader';
import type { Types } from 'mongoose';
import { afterDescending, encodeTimeCursor, type TimeCursor } from '../../shared/cursors';
import {
  UserWalletEventModel,
  type UserWalletEvent,
  type WalletEventKind,
  type WalletEventRecord,
} from './user-wallet-event.model';

export const DEFAULT_EVENTS = 20;
export const MAX_EVENTS = 100;

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
