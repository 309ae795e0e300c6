import { Types } from 'mongoose';
import type { Principal } from '../../auth/roles';
import { ConflictError, NotFoundError, UserInputError } from '../../errors';
import type { Logger } from '../../logger';
import { toObjectId } from '../../shared/scalars';
import { WalletDefinitionModel, type WalletDefinition } from '../wallet-definitions/wallet-definition.model';
import { AI_POLICY, modesAllowing } from './ai-policy';
import { apiAiState, apiStatus, deliverEvents, pushEvents, walletEvent, WalletEventKind } from './user-wallet-events';
import type { AiManagedStateInput, ManagedWalletsArgs } from './user-wallet.inputs';
import { UserWalletModel, WalletStatus, type AiManagedState, type UserWallet } from './user-wallet.model';
import type { UserWalletConnection } from './user-wallet.types';
import { transition } from './wallet-status';

const DEFAULT_PAGE = 100;
const WRITE_ATTEMPTS = 5;
const MAX_REASON = 500;

/** Input field -> stored field of ai_managed_state. */
const STORED: Record<keyof AiManagedStateInput, keyof AiManagedState> = {
  currentRisk: 'current_risk',
  dailyPnl: 'daily_pnl',
  openPositions: 'open_positions',
  currentMaxPositionSize: 'current_max_position_size',
  currentLeverage: 'current_leverage',
  adaptiveStopLoss: 'adaptive_stop_loss',
  riskScore: 'risk_score',
  marketSentiment: 'market_sentiment',
  confidenceLevel: 'confidence_level',
};

/** What AI agents do: read every wallet, and write the AI-managed state inside each user's limits. */
export class AiStateService {
  constructor(private readonly logger: Logger) {}

  /** Every user's wallets, oldest first. The cursor is the last wallet's id. */
  async managedWallets(args: ManagedWalletsArgs): Promise<UserWalletConnection> {
    const first = args.first ?? DEFAULT_PAGE;
    const query: Record<string, unknown> = {};
    if (args.status) query.status = args.status;
    if (args.after != null) query._id = { $gt: decodeCursor(args.after) };
    const found = await UserWalletModel.find(query).sort({ _id: 1 }).limit(first + 1).lean<UserWallet[]>();
    const page = found.slice(0, first);
    const edges = page.map((node) => ({ cursor: encodeCursor(node._id), node }));
    return { edges, pageInfo: { hasNextPage: found.length > first, endCursor: edges.at(-1)?.cursor ?? null } };
  }

  /**
   * One conditional update: on the version the limits were checked against, and on the limits
   * themselves, so a user tightening them meanwhile makes this write miss instead of slip through.
   */
  async update(principal: Principal, walletId: string, input: AiManagedStateInput, expectedVersion: number | null | undefined): Promise<UserWallet> {
    if (!Object.values(input).some((v) => v != null)) throw new UserInputError('give at least one field to change', 'input');
    for (let attempt = 0; attempt < WRITE_ATTEMPTS; attempt++) {
      const wallet = await UserWalletModel.findById(toObjectId(walletId)).lean<UserWallet>();
      if (!wallet) throw new NotFoundError('no wallet with that id');
      if (expectedVersion != null && wallet.version !== expectedVersion) {
        throw new ConflictError(`stale expectedVersion ${expectedVersion}: the wallet is at version ${wallet.version}`);
      }
      const definition = (await WalletDefinitionModel.findById(wallet.wallet_id, { features: 1 }).lean<Pick<WalletDefinition, 'features'>>())!;
      const { filter, set, changes, pauseReason } = planAiWrite(wallet, definition, input, new Date());
      // The events go in the same update: the version it produces is known, as it is conditional on the one read.
      const version = wallet.version + 1;
      const before = Object.fromEntries(Object.keys(changes).map((k) => [k, wallet.ai_managed_state[k as keyof AiManagedState]]));
      const events = [walletEvent(principal, wallet._id, version, WalletEventKind.AI_STATE_CHANGED, apiAiState(before), apiAiState(changes))];
      if (pauseReason !== null) {
        const after = apiStatus(WalletStatus.AI_PAUSED, pauseReason);
        events.push(walletEvent(principal, wallet._id, version, WalletEventKind.STATUS_CHANGED, apiStatus(wallet.status, wallet.pause_reason), after));
      }
      const updated = await UserWalletModel.findOneAndUpdate(filter, { $set: set, $inc: { version: 1 }, ...pushEvents(events) }, { returnDocument: 'after' }).lean<UserWallet>();
      if (!updated) {
        if (expectedVersion != null) throw new ConflictError(`stale expectedVersion ${expectedVersion}: the wallet changed meanwhile`);
        continue; // Someone wrote first: check again against what is stored now.
      }
      await deliverEvents(this.logger, updated._id, events);
      return updated;
    }
    throw new ConflictError('the wallet kept changing while the agent wrote; try again');
  }

  async pause(principal: Principal, walletId: string, reason: string): Promise<UserWallet> {
    const trimmed = reason.trim();
    if (trimmed.length === 0 || trimmed.length > MAX_REASON) throw new UserInputError(`must be 1 to ${MAX_REASON} characters`, 'reason');
    return transition(this.logger, principal, await this.load(walletId), [WalletStatus.ACTIVE], WalletStatus.AI_PAUSED, trimmed);
  }

  async resume(principal: Principal, walletId: string): Promise<UserWallet> {
    return transition(this.logger, principal, await this.load(walletId), [WalletStatus.AI_PAUSED], WalletStatus.ACTIVE, null);
  }

  private async load(walletId: string): Promise<UserWallet> {
    const wallet = await UserWalletModel.findById(toObjectId(walletId)).lean<UserWallet>();
    if (!wallet) throw new NotFoundError('no wallet with that id');
    return wallet;
  }
}

export interface AiWrite {
  filter: Record<string, unknown>;
  set: Record<string, unknown>;
  /** The changed fields as stored, lastAiDecision included. */
  changes: Partial<AiManagedState>;
  /** Set when the write also pauses the wallet (its risk passes the limit), with why. */
  pauseReason: string | null;
}

/**
 * The one conditional update for an agent's input, checked against the wallet as read: on that
 * version, and on the limits the values depend on, so the database refuses it if either moved.
 * BAD_USER_INPUT, naming the field and the limit, for a value outside the policy.
 */
export function planAiWrite(wallet: UserWallet, definition: Pick<WalletDefinition, 'features'>, input: AiManagedStateInput, now: Date): AiWrite {
  const context = { limits: wallet.user_limits, definition };
  const set: Record<string, unknown> = {};
  const changes: Partial<AiManagedState> = {};
  for (const field of Object.keys(STORED) as Array<keyof AiManagedStateInput>) {
    const value = input[field];
    if (value == null) continue;
    if (field !== 'marketSentiment') {
      const broken = AI_POLICY[field](value as number, context);
      if (broken) throw new UserInputError(`${field} ${broken}`, field);
    }
    set[`ai_managed_state.${STORED[field]}`] = value;
    Object.assign(changes, { [STORED[field]]: value });
  }
  set['ai_managed_state.last_ai_decision'] = now;
  changes.last_ai_decision = now;

  const filter: Record<string, unknown> = { _id: wallet._id, version: wallet.version };
  if (input.currentMaxPositionSize != null) filter['user_limits.max_total_risk'] = { $gte: input.currentMaxPositionSize };
  if (input.currentLeverage != null) filter['user_limits.trading_mode'] = { $in: modesAllowing(definition, input.currentLeverage) };

  const risk = input.currentRisk ?? wallet.ai_managed_state.current_risk;
  let pauseReason: string | null = null;
  if (wallet.status === WalletStatus.ACTIVE && risk > wallet.user_limits.max_total_risk) {
    pauseReason = `risk limit exceeded: currentRisk ${risk} > maxTotalRisk ${wallet.user_limits.max_total_risk}`;
    filter.status = WalletStatus.ACTIVE;
    filter['user_limits.max_total_risk'] = { ...(filter['user_limits.max_total_risk'] as object), $lt: risk };
    set.status = WalletStatus.AI_PAUSED;
    set.pause_reason = pauseReason;
  }
  return { filter, set, changes, pauseReason };
}

function encodeCursor(id: Types.ObjectId): string {
  return Buffer.from(id.toHexString(), 'hex').toString('base64url');
}

function decodeCursor(cursor: string): Types.ObjectId {
  const hex = Buffer.from(cursor, 'base64url').toString('hex');
  if (!/^[0-9a-f]{24}$/.test(hex) || encodeCursor(new Types.ObjectId(hex)) !== cursor) {
    throw new UserInputError('not a cursor from this list', 'after');
  }
  return new Types.ObjectId(hex);
}
