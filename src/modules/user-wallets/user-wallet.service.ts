import { Types } from 'mongoose';
import { requireUser, type Principal, type UserPrincipal } from '../../auth/roles';
import { ConflictError, ForbiddenError, NotFoundError, UserInputError, isDuplicateKeyError } from '../../errors';
import type { Logger } from '../../logger';
import { toObjectId } from '../../shared/scalars';
import { CredentialModel, type Credential } from '../credentials/credential.model';
import type { DeletePayload } from '../credentials/credential.types';
import { WalletDefinitionModel, type WalletDefinition } from '../wallet-definitions/wallet-definition.model';
import { INITIAL_RISK_SCORE, INITIAL_STOP_LOSS, leverageRange, modeFits } from './ai-policy';
import { normalizeAllowedSymbols } from './symbols';
import type { WalletEventRecord } from './user-wallet-event.model';
import { apiAiState, apiLimits, apiStatus, copyEvents, deliverEvents, pushEvents, walletEvent, WalletEventKind } from './user-wallet-events';
import type { CreateUserWalletInput, UpdateUserWalletInput, UserLimitsInput, UserWalletFilter } from './user-wallet.inputs';
import { MarketSentiment, UserWalletModel, WalletStatus, type AiManagedState, type UserLimits, type UserWallet } from './user-wallet.model';
import { transition } from './wallet-status';

/** A credential whose deletion began this recently counts as being deleted (see CredentialService.delete). */
export const DELETION_GRACE_MS = 60_000;

/** A user's write retries when an agent wrote the wallet between its read and its write. */
const USER_WRITE_ATTEMPTS = 10;

export class UserWalletService {
  constructor(private readonly logger: Logger) {}

  list(principal: Principal | null, filter: UserWalletFilter | null | undefined): Promise<UserWallet[]> {
    const user = requireUser(principal);
    const query: Record<string, unknown> = { user_id: user.userId };
    if (filter?.status) query.status = filter.status;
    return UserWalletModel.find(query).sort({ created_at: 1, _id: 1 }).lean<UserWallet[]>().exec();
  }

  get(principal: Principal | null, id: string): Promise<UserWallet> {
    return this.loadOwned(requireUser(principal), id);
  }

  async create(principal: Principal | null, input: CreateUserWalletInput): Promise<UserWallet> {
    const user = requireUser(principal);
    const credential = await CredentialModel.findById(toObjectId(input.credentialId)).lean<Credential>();
    if (!credential) throw new NotFoundError('no credential with that id');
    if (!credential.user_id.equals(user.userId)) throw new ForbiddenError('this credential belongs to another user');
    if (!credential.is_active) throw new UserInputError('the credential is not active', 'credentialId');
    const definition = await WalletDefinitionModel.findById(credential.wallet_id).lean<WalletDefinition>();
    if (!definition?.is_active) throw new UserInputError(`${definition?.name ?? 'the exchange'} is not active`, 'credentialId');

    const limits = toLimits(definition, input.userLimits);
    const _id = new Types.ObjectId();
    const name = input.name.trim();
    const aiState = initialAiState(definition, limits);
    const created = walletEvent(user, _id, 0, WalletEventKind.CREATED, null, {
      name,
      userLimits: apiLimits(limits),
      aiManagedState: apiAiState(aiState),
      ...apiStatus(WalletStatus.ACTIVE, null),
    });
    const doc = {
      _id,
      user_id: user.userId,
      credential_id: credential._id,
      wallet_id: definition._id,
      name,
      user_limits: limits,
      ai_managed_state: aiState,
      status: WalletStatus.ACTIVE,
      pause_reason: null,
      live_key: credential._id,
      version: 0,
      pending_events: [created],
    };
    try {
      await UserWalletModel.create(doc);
    } catch (error) {
      if (isDuplicateKeyError(error)) throw new ConflictError('this credential already has a live wallet: pause or delete it first');
      throw error;
    }
    await this.assertCredentialStays(credential._id, _id);
    await deliverEvents(this.logger, _id, [created]);
    return (await UserWalletModel.findById(_id).lean<UserWallet>())!;
  }

  /**
   * Name and limits only. Tighter limits pull the AI's parameters inside them in the same update
   * ($min). The update is conditional on the version read, because its audit event records what
   * the AI's parameters were; an agent's write in between makes it read again and retry, so the
   * user still wins however busy the agents are (an agent's read-check-write is no faster).
   */
  async update(principal: Principal | null, id: string, input: UpdateUserWalletInput): Promise<UserWallet> {
    const user = requireUser(principal);
    let wallet = await this.loadOwned(user, id);
    const set: Record<string, unknown> = {};
    const min: Record<string, number> = {};
    if (input.name != null) set.name = input.name.trim();
    let limits: UserLimits | undefined;
    if (input.userLimits != null) {
      const definition = (await WalletDefinitionModel.findById(wallet.wallet_id).lean<WalletDefinition>())!;
      limits = toLimits(definition, input.userLimits);
      set.user_limits = limits;
      min['ai_managed_state.current_max_position_size'] = limits.max_total_risk;
      min['ai_managed_state.current_leverage'] = leverageRange(definition, limits.trading_mode).max;
    }
    if (Object.keys(set).length === 0) return wallet;
    for (let attempt = 0; attempt < USER_WRITE_ATTEMPTS; attempt++) {
      const events = limits ? [limitsEvent(user, wallet, limits, min)] : [];
      const updated = await UserWalletModel.findOneAndUpdate(
        { _id: wallet._id, user_id: user.userId, version: wallet.version },
        { $set: set, ...(limits ? { $min: min } : {}), $inc: { version: 1 }, ...(events.length ? pushEvents(events) : {}) },
        { returnDocument: 'after' },
      ).lean<UserWallet>();
      if (!updated) {
        wallet = await this.loadOwned(user, id);
        continue;
      }
      await deliverEvents(this.logger, updated._id, events);
      if (limits && updated.status === WalletStatus.ACTIVE && updated.ai_managed_state.current_risk > limits.max_total_risk) {
        return this.pauseOverLimit(user, updated, limits.max_total_risk);
      }
      return updated;
    }
    throw new ConflictError('the wallet kept changing; try again');
  }

  /** The risk already taken is over the new limit: the wallet stops, as an agent's write would stop it. */
  private async pauseOverLimit(user: UserPrincipal, wallet: UserWallet, maxTotalRisk: number): Promise<UserWallet> {
    let seen: UserWallet | null = wallet;
    for (let attempt = 0; seen && attempt < USER_WRITE_ATTEMPTS; attempt++) {
      // Paused meanwhile, the limit changed again, or the risk came down: nothing left to do here.
      if (seen.status !== WalletStatus.ACTIVE || seen.user_limits.max_total_risk !== maxTotalRisk || !(seen.ai_managed_state.current_risk > maxTotalRisk)) return seen;
      const reason = `risk limit exceeded: currentRisk ${seen.ai_managed_state.current_risk} > maxTotalRisk ${maxTotalRisk}`;
      const event = walletEvent(user, seen._id, seen.version + 1, WalletEventKind.STATUS_CHANGED, apiStatus(seen.status, seen.pause_reason), apiStatus(WalletStatus.AI_PAUSED, reason));
      const paused = await UserWalletModel.findOneAndUpdate(
        { _id: seen._id, version: seen.version },
        { $set: { status: WalletStatus.AI_PAUSED, pause_reason: reason }, $inc: { version: 1 }, ...pushEvents([event]) },
        { returnDocument: 'after' },
      ).lean<UserWallet>();
      if (paused) {
        await deliverEvents(this.logger, paused._id, [event]);
        return paused;
      }
      seen = await UserWalletModel.findById(wallet._id).lean<UserWallet>();
    }
    if (!seen) throw new NotFoundError('no wallet with that id');
    throw new ConflictError('the wallet kept changing; try again');
  }

  /**
   * The wallet goes; its audit trail stays. Events still in its outbox are delivered first, and the
   * delete is conditional on the version read: a write in between (which would bring events of its
   * own) makes it read and deliver again.
   */
  async delete(principal: Principal | null, id: string): Promise<DeletePayload> {
    const user = requireUser(principal);
    for (let attempt = 0; attempt < USER_WRITE_ATTEMPTS; attempt++) {
      const wallet = await this.loadOwned(user, id);
      await copyEvents(wallet._id, wallet.pending_events ?? []);
      const { deletedCount } = await UserWalletModel.deleteOne({ _id: wallet._id, version: wallet.version });
      if (deletedCount === 1) {
        this.logger.info({ walletId: id }, 'user wallet deleted');
        return { id, deleted: true };
      }
    }
    throw new ConflictError('the wallet kept changing; try again');
  }

  async pause(principal: Principal | null, id: string): Promise<UserWallet> {
    const user = requireUser(principal);
    const wallet = await this.loadOwned(user, id);
    return transition(this.logger, user, wallet, [WalletStatus.ACTIVE, WalletStatus.AI_PAUSED], WalletStatus.USER_PAUSED, 'paused by the user');
  }

  async resume(principal: Principal | null, id: string): Promise<UserWallet> {
    const user = requireUser(principal);
    const wallet = await this.loadOwned(user, id);
    return transition(this.logger, user, wallet, [WalletStatus.USER_PAUSED, WalletStatus.AI_PAUSED], WalletStatus.ACTIVE, null);
  }

  private async loadOwned(user: UserPrincipal, id: string): Promise<UserWallet> {
    const wallet = await UserWalletModel.findById(toObjectId(id)).lean<UserWallet>();
    if (!wallet) throw new NotFoundError('no wallet with that id');
    if (!wallet.user_id.equals(user.userId)) throw new ForbiddenError('this wallet belongs to another user');
    return wallet;
  }

  /**
   * A credential being deleted may have checked for wallets just before this one was written.
   * Looking again after the write closes that gap: one of the two requests always sees the other.
   */
  private async assertCredentialStays(credentialId: Types.ObjectId, walletId: Types.ObjectId): Promise<void> {
    const stays = await CredentialModel.exists({
      _id: credentialId,
      $or: [{ deleting_at: null }, { deleting_at: { $lt: new Date(Date.now() - DELETION_GRACE_MS) } }],
    });
    if (stays) return;
    await UserWalletModel.deleteOne({ _id: walletId });
    throw new ConflictError('the credential is being deleted');
  }
}

/**
 * The LIMITS_CHANGED event of an update on `wallet` as read: the limits before and after, and the
 * AI parameters the update's $min bounds will pull down, if any.
 */
function limitsEvent(user: UserPrincipal, wallet: UserWallet, limits: UserLimits, min: Record<string, number>): WalletEventRecord {
  const bounds = Object.entries(min).map(([path, bound]) => [path.split('.')[1] as keyof AiManagedState, bound] as const);
  const clamped = bounds.filter(([key, bound]) => (wallet.ai_managed_state[key] as number) > bound);
  const previous = Object.fromEntries(clamped.map(([key]) => [key, wallet.ai_managed_state[key]]));
  const next = Object.fromEntries(clamped);
  return walletEvent(
    user,
    wallet._id,
    wallet.version + 1,
    WalletEventKind.LIMITS_CHANGED,
    { userLimits: apiLimits(wallet.user_limits), ...(clamped.length ? { aiManagedState: apiAiState(previous) } : {}) },
    { userLimits: apiLimits(limits), ...(clamped.length ? { aiManagedState: apiAiState(next) } : {}) },
  );
}

function toLimits(definition: WalletDefinition, input: UserLimitsInput): UserLimits {
  if (!(input.maxTotalRisk > 0)) throw new UserInputError('must be greater than 0', 'userLimits.maxTotalRisk');
  if (!modeFits(definition, input.tradingMode)) {
    const { min, max } = leverageRange(definition, input.tradingMode);
    throw new UserInputError(
      `${input.tradingMode.toUpperCase()} caps leverage at ${max}, below ${definition.name}'s minimum of ${min}`,
      'userLimits.tradingMode',
    );
  }
  return {
    max_total_risk: input.maxTotalRisk,
    allowed_symbols: normalizeAllowedSymbols(definition, input.allowedSymbols, 'userLimits.allowedSymbols'),
    trading_mode: input.tradingMode,
  };
}

/** Safe until an agent decides: nothing trades (position size 0), leverage at its lowest. */
function initialAiState(definition: WalletDefinition, limits: UserLimits): AiManagedState {
  return {
    current_risk: 0,
    daily_pnl: 0,
    open_positions: 0,
    current_max_position_size: 0,
    current_leverage: leverageRange(definition, limits.trading_mode).min,
    adaptive_stop_loss: INITIAL_STOP_LOSS[limits.trading_mode],
    risk_score: INITIAL_RISK_SCORE,
    market_sentiment: MarketSentiment.NEUTRAL,
    confidence_level: 0,
    last_ai_decision: null,
  };
}
