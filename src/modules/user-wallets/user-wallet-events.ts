import DataLoader from 'dataloader';
import type { Types } from 'mongoose';
import { actorName, type Principal } from '../../auth/roles';
import type { Logger } from '../../logger';
import { UserWalletEventModel, WalletEventKind, type UserWalletEvent } from './user-wallet-event.model';
import type { AiManagedState, UserLimits, WalletStatus } from './user-wallet.model';

export { WalletEventKind };

export const DEFAULT_EVENTS = 20;
export const MAX_EVENTS = 100;

/** Who did it, as the audit trail names them: a user by id, an agent by its token's name. */
function actorOf(principal: Principal): { actor: string; actor_role: Principal['role']; actor_id: Types.ObjectId } {
  // Agent names are not unique: the token's own id is kept beside the name.
  return { actor: actorName(principal), actor_role: principal.role, actor_id: principal.kind === 'user' ? principal.userId : principal.agentId };
}

/**
 * Appends one event. It follows the wallet write it describes (this engine has no transactions):
 * should it fail, the change stands and the failure is logged loudly with what was lost.
 */
export async function recordEvent(
  logger: Logger,
  principal: Principal,
  walletId: Types.ObjectId,
  version: number,
  kind: WalletEventKind,
  before: Record<string, unknown> | null,
  after: Record<string, unknown> | null,
): Promise<void> {
  try {
    await UserWalletEventModel.create({ wallet_id: walletId, kind, ...actorOf(principal), before, after, version, at: new Date() });
  } catch (error) {
    logger.error({ err: error, walletId: walletId.toHexString(), version, kind }, 'audit event could not be written');
  }
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
      key === 'market_sentiment' ? String(value).toUpperCase() : value instanceof Date ? value.toISOString() : value,
    ]),
  );
}

export function apiStatus(status: WalletStatus, pauseReason: string | null): Record<string, unknown> {
  return { status: status.toUpperCase(), pauseReason };
}

/**
 * Newest first, per wallet: one aggregation for every wallet of the request that asks for `first`
 * events, cut to `first` per wallet in the database, so a long trail is never shipped whole.
 */
export function createEventsLoader(first: number): DataLoader<Types.ObjectId, UserWalletEvent[], string> {
  return new DataLoader(
    async (walletIds) => {
      const groups = await UserWalletEventModel.aggregate<{ _id: Types.ObjectId; events: UserWalletEvent[] }>([
        { $match: { wallet_id: { $in: walletIds } } },
        { $sort: { at: -1, _id: -1 } },
        { $group: { _id: '$wallet_id', events: { $push: '$$ROOT' } } },
        { $project: { events: { $slice: ['$events', first] } } },
      ]);
      const byWallet = new Map(groups.map((g) => [g._id.toHexString(), g.events]));
      return walletIds.map((id) => byWallet.get(id.toHexString()) ?? []);
    },
    { cacheKeyFn: (id) => id.toHexString() },
  );
}
