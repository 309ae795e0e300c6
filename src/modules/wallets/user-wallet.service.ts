import { Types } from 'mongoose';
import type { Actor } from '../auth/roles';
import { dbOptions, type RequestContext, type UserContext } from '../../core/context';
import {
  ConflictError,
  ForbiddenError,
  NotFoundError,
  UserInputError,
  isDuplicateKeyError,
} from '../../core/errors';
import { metrics } from '../../core/metrics';
import { toObjectId } from '../../shared/scalars';
import {
  assertCredentialStays,
  scheduleChecks,
  unscheduleChecks,
} from '../credentials/credential-link';
import { ConnectionState, Environment } from '../credentials/credential.model';
import { findCredential } from '../credentials/credential.service';
import type { DeletePayload } from '../credentials/credential.types';
import type { WalletDefinition } from '../catalog/wallet-definition.model';
import { findDefinition } from '../catalog/wallet-definition.service';
import { INITIAL_RISK_SCORE, INITIAL_STOP_LOSS, leverageRange, modeFits } from './ai-policy';
import { normalizeAllowedSymbols } from './symbols';
import { apiAiState, apiLimits, apiStatus } from '../audit/api-names';
import { statusChangeEvent, walletEvent } from '../audit/build-events';
import { WalletEventKind, type WalletEventRecord } from '../audit/user-wallet-event.model';
import type {
  CreateUserWalletInput,
  UpdateUserWalletInput,
  UserLimitsInput,
  UserWalletFilter,
} from './user-wallet.inputs';
import {
  LIVE_STATUSES,
  MarketSentiment,
  userChanged,
  UserWalletModel,
  WalletStatus,
  type AiManagedState,
  type UserLimits,
  type UserWallet,
} from './user-wallet.model';
import {
  credentialWallets,
  pauseIfCredentialRefused,
  TEST_AGAIN_FIRST,
  transition,
} from './wallet-status';
import { walletOutbox } from './wallet-outbox';
import { insertWithinCap } from '../../shared/user-caps';
import { cleanName } from '../../shared/validators';

export class UserWalletService {
  constructor(
    /** MAX_WALLETS_PER_USER */
    private readonly cap: number,
  ) {}

  list(ctx: UserContext, filter: UserWalletFilter | null | undefined): Promise<UserWallet[]> {
    const query: Record<string, unknown> = { user_id: ctx.actor.userId };
    if (filter?.status) query.status = filter.status;
    return UserWalletModel.find(query)
      .sort({ created_at: 1, _id: 1 })
      .setOptions(dbOptions(ctx))
      .lean<UserWallet[]>()
      .exec();
  }

  get(ctx: UserContext, id: string): Promise<UserWallet> {
    return ownedWallet(ctx, id);
  }

  async create(ctx: UserContext, input: CreateUserWalletInput): Promise<UserWallet> {
    const user = ctx.actor;
    const tagged = dbOptions(ctx);
    const credential = await findCredential(ctx, toObjectId(input.credentialId));
    if (!credential) throw new NotFoundError('no credential with that id');
    if (!credential.user_id.equals(user.userId))
      throw new ForbiddenError('this credential belongs to another user');
    if (!credential.is_active)
      throw new UserInputError('the credential is not active', 'credentialId');
    if (credential.connection_state === ConnectionState.REJECTED)
      throw new ConflictError(TEST_AGAIN_FIRST);
    const definition = await findDefinition(ctx, credential.wallet_id);
    if (!definition?.is_active)
      throw new UserInputError(
        `${definition?.name ?? 'the exchange'} is not active`,
        'credentialId',
      );

    const limits = toLimits(definition, input.userLimits);
    const _id = new Types.ObjectId();
    const name = cleanName(input.name);
    const aiState = initialAiState(definition, limits);
    const created = walletEvent({
      actor: user,
      walletId: _id,
      version: 0,
      kind: WalletEventKind.CREATED,
      before: null,
      after: {
        name,
        userLimits: apiLimits(limits),
        aiManagedState: apiAiState(aiState),
        ...apiStatus(WalletStatus.ACTIVE, null),
      },
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
      is_paper: credential.environment === Environment.PAPER,
      version: 0,
      pending_events: [created],
      ...userChanged(created.at),
    };
    try {
      await insertWithinCap(UserWalletModel, user.userId, this.cap, 'wallets', (cap_slot) =>
        UserWalletModel.create({ ...doc, cap_slot }),
      );
    } catch (error) {
      if (isDuplicateKeyError(error))
        throw new ConflictError(
          'this credential already has a live wallet: pause or delete it first',
        );
      throw error;
    }
    // The wallet's side of the credential's deletion (credential-link.ts).
    await assertCredentialStays(ctx, credential._id, () =>
      UserWalletModel.deleteOne({ _id }, tagged).exec(),
    );
    await walletOutbox.deliverEvents(ctx, _id, [created]);
    await scheduleChecks(ctx, credential._id);
    await pauseIfCredentialRefused(ctx, credential._id);
    return (await UserWalletModel.findById(_id).setOptions(tagged).lean<UserWallet>())!;
  }

  /**
   * Name and limits only. Tighter limits pull the AI's parameters inside them in the same update
   * ($min), with no condition on the version to miss: the user always wins, however busy the agents
   * are. The audit event is completed from the document the update replaced (writeWithEvent).
   */
  async update(ctx: UserContext, id: string, input: UpdateUserWalletInput): Promise<UserWallet> {
    const user = ctx.actor;
    const tagged = dbOptions(ctx);
    const wallet = await ownedWallet(ctx, id);
    const set: Record<string, unknown> = {};
    if (input.name != null) set.name = cleanName(input.name);
    if (input.userLimits == null) {
      if (Object.keys(set).length === 0) return wallet;
      // A new name is not in the audit trail (status, limits and AI state are).
      const renamed = await UserWalletModel.findOneAndUpdate(
        { _id: wallet._id, user_id: user.userId },
        { $set: set, $inc: { version: 1 } },
        { returnDocument: 'after', ...tagged },
      ).lean<UserWallet>();
      if (!renamed) throw new NotFoundError('no wallet with that id');
      return renamed;
    }
    const definition = (await findDefinition(ctx, wallet.wallet_id))!;
    const limits = toLimits(definition, input.userLimits);
    set.user_limits = limits;
    const min = {
      'ai_managed_state.current_max_position_size': limits.max_total_risk,
      'ai_managed_state.current_leverage': leverageRange(definition, limits.trading_mode).max,
    };
    const provisional = walletEvent({
      actor: user,
      walletId: wallet._id,
      version: null,
      kind: WalletEventKind.LIMITS_CHANGED,
      before: null,
      after: { userLimits: apiLimits(limits) },
    });
    const replaced = await walletOutbox.writeWithEvent(
      ctx,
      { _id: wallet._id, user_id: user.userId },
      { $set: { ...set, ...userChanged() }, $min: min },
      provisional,
      (before) => limitsEvent(user, before, limits, min),
    );
    if (!replaced) throw new NotFoundError('no wallet with that id');
    const updated = await UserWalletModel.findById(wallet._id)
      .setOptions(tagged)
      .lean<UserWallet>();
    if (!updated) throw new NotFoundError('no wallet with that id');
    if (
      updated.status === WalletStatus.ACTIVE &&
      updated.ai_managed_state.current_risk > limits.max_total_risk
    ) {
      return this.pauseOverLimit(ctx, updated, limits.max_total_risk);
    }
    return updated;
  }

  /**
   * The risk already taken is over the new limit: the wallet stops, as an agent's write would stop
   * it. The limits are stored already, so whatever happens here the answer is the wallet as it is.
   */
  private async pauseOverLimit(
    ctx: UserContext,
    wallet: UserWallet,
    maxTotalRisk: number,
  ): Promise<UserWallet> {
    const reason = `risk limit exceeded: currentRisk ${wallet.ai_managed_state.current_risk} > maxTotalRisk ${maxTotalRisk}`;
    const { provisional, complete } = statusChangeEvent({
      actor: ctx.actor,
      walletId: wallet._id,
      to: WalletStatus.AI_PAUSED,
      pauseReason: reason,
    });
    const paused = await walletOutbox.writeWithEvent(
      ctx,
      // Paused meanwhile, the limit changed again, or the risk came down: nothing left to do.
      {
        _id: wallet._id,
        status: WalletStatus.ACTIVE,
        'user_limits.max_total_risk': maxTotalRisk,
        'ai_managed_state.current_risk': { $gt: maxTotalRisk },
      },
      { $set: { status: WalletStatus.AI_PAUSED, pause_reason: reason, ...userChanged() } },
      provisional,
      complete,
    );
    if (paused) metrics.statusChanges.inc({ to: WalletStatus.AI_PAUSED });
    return (
      (await UserWalletModel.findById(wallet._id).setOptions(dbOptions(ctx)).lean<UserWallet>()) ??
      wallet
    );
  }

  /**
   * The wallet goes; its audit trail stays. Events still in its outbox are copied first (a failure
   * stops the delete), and any that a write added in between leave with the deleted document,
   * from which they are copied too.
   */
  async delete(ctx: UserContext, id: string): Promise<DeletePayload> {
    const wallet = await ownedWallet(ctx, id);
    const pending = wallet.pending_events ?? [];
    await walletOutbox.copyEvents(ctx, wallet._id, pending);
    const deleted = await UserWalletModel.findOneAndDelete({ _id: wallet._id })
      .setOptions(dbOptions(ctx))
      .lean<UserWallet>();
    if (!deleted) throw new NotFoundError('no wallet with that id');
    const copied = new Set(pending.map((e) => e._id.toHexString()));
    const late = (deleted.pending_events ?? []).filter((e) => !copied.has(e._id.toHexString()));
    await walletOutbox
      .copyEvents(ctx, wallet._id, late)
      .catch((error: unknown) =>
        ctx.logger.error(
          { err: error, walletId: id, events: late.map((e) => e._id.toHexString()) },
          'audit events of a deleted wallet could not be saved',
        ),
      );
    if (LIVE_STATUSES.includes(deleted.status))
      await unscheduleChecks(ctx, credentialWallets, deleted.credential_id);
    ctx.logger.info({ walletId: id }, 'user wallet deleted');
    return { id, deleted: true };
  }

  async pause(ctx: UserContext, id: string): Promise<UserWallet> {
    return transition(
      ctx,
      await ownedWallet(ctx, id),
      [WalletStatus.ACTIVE, WalletStatus.AI_PAUSED],
      WalletStatus.USER_PAUSED,
      'paused by the user',
    );
  }

  async resume(ctx: UserContext, id: string): Promise<UserWallet> {
    return transition(
      ctx,
      await ownedWallet(ctx, id),
      [WalletStatus.USER_PAUSED, WalletStatus.AI_PAUSED],
      WalletStatus.ACTIVE,
      null,
    );
  }
}

/** The caller's own wallet: NOT_FOUND for an unknown id, FORBIDDEN for another user's. */
export async function ownedWallet(
  ctx: UserContext,
  id: string | Types.ObjectId,
): Promise<UserWallet> {
  const wallet = await UserWalletModel.findById(toObjectId(id))
    .setOptions(dbOptions(ctx))
    .lean<UserWallet>();
  if (!wallet) throw new NotFoundError('no wallet with that id');
  if (!wallet.user_id.equals(ctx.actor.userId))
    throw new ForbiddenError('this wallet belongs to another user');
  return wallet;
}

/*
 * The wallets as the other modules read them (the live feed and subscriptions): each call one
 * command with the context's database comment.
 */

/** A wallet and who owns it. */
export type WalletOwner = Pick<UserWallet, '_id' | 'user_id'>;

/** Who owns the wallet; null for an unknown id. */
export function ownerOf(
  ctx: Pick<RequestContext, 'comment'>,
  id: Types.ObjectId,
): Promise<WalletOwner | null> {
  return UserWalletModel.findById(id, { user_id: 1 })
    .setOptions(dbOptions(ctx))
    .lean<WalletOwner>()
    .exec();
}

/** Who owns each of these wallets, in no given order; gone ones left out. */
export function ownersOf(
  ctx: Pick<RequestContext, 'comment'>,
  ids: readonly Types.ObjectId[],
): Promise<WalletOwner[]> {
  return UserWalletModel.find({ _id: { $in: ids } }, { user_id: 1 })
    .setOptions(dbOptions(ctx))
    .lean<WalletOwner[]>()
    .exec();
}

/**
 * The outboxes of these wallets that hold events not yet in the trail (see audit/outbox.ts), in no
 * given order.
 */
export function pendingEventsOf(
  ctx: Pick<RequestContext, 'comment'>,
  ids: readonly Types.ObjectId[],
): Promise<Array<{ _id: Types.ObjectId; pending_events: WalletEventRecord[] }>> {
  return UserWalletModel.find(
    { _id: { $in: ids }, 'pending_events.0': { $exists: true } },
    { pending_events: 1 },
  )
    .setOptions(dbOptions(ctx))
    .lean<Array<{ _id: Types.ObjectId; pending_events: WalletEventRecord[] }>>()
    .exec();
}

/** A wallet's owner, its outbox and the last of its events that left it for the trail. */
export type OutboxAndTrail = Pick<
  UserWallet,
  '_id' | 'user_id' | 'pending_events' | 'recent_trail'
>;

/**
 * These wallets' owners, outboxes and recent trails (see TrailEntry in audit/outbox.ts), in no
 * given order; gone ones left out. A query on _id alone: the one every engine answers from an
 * index.
 */
export function outboxesAndTrailsOf(
  ctx: Pick<RequestContext, 'comment'>,
  ids: readonly Types.ObjectId[],
): Promise<OutboxAndTrail[]> {
  return UserWalletModel.find(
    { _id: { $in: ids } },
    { user_id: 1, pending_events: 1, recent_trail: 1 },
  )
    .setOptions(dbOptions(ctx))
    .lean<OutboxAndTrail[]>()
    .exec();
}

/**
 * The LIMITS_CHANGED event of a limits update, from the document it replaced: the limits before
 * and after, and the AI parameters its $min bounds pulled down, if any.
 */
function limitsEvent(
  actor: Actor,
  before: UserWallet,
  limits: UserLimits,
  min: Record<string, number>,
): WalletEventRecord {
  const bounds = Object.entries(min).map(
    ([path, bound]) => [path.split('.')[1] as keyof AiManagedState, bound] as const,
  );
  const clamped = bounds.filter(([key, bound]) => (before.ai_managed_state[key] as number) > bound);
  const previous = Object.fromEntries(clamped.map(([key]) => [key, before.ai_managed_state[key]]));
  const next = Object.fromEntries(clamped);
  return walletEvent({
    actor,
    walletId: before._id,
    version: before.version + 1,
    kind: WalletEventKind.LIMITS_CHANGED,
    before: {
      userLimits: apiLimits(before.user_limits),
      ...(clamped.length ? { aiManagedState: apiAiState(previous) } : {}),
    },
    after: {
      userLimits: apiLimits(limits),
      ...(clamped.length ? { aiManagedState: apiAiState(next) } : {}),
    },
  });
}

export function toLimits(definition: WalletDefinition, input: UserLimitsInput): UserLimits {
  if (!(input.maxTotalRisk > 0))
    throw new UserInputError('must be greater than 0', 'userLimits.maxTotalRisk');
  if (!modeFits(definition, input.tradingMode)) {
    const { min, max } = leverageRange(definition, input.tradingMode);
    throw new UserInputError(
      `${input.tradingMode.toUpperCase()} caps leverage at ${max}, below ${definition.name}'s minimum of ${min}`,
      'userLimits.tradingMode',
    );
  }
  return {
    max_total_risk: input.maxTotalRisk,
    allowed_symbols: normalizeAllowedSymbols(
      definition,
      input.allowedSymbols,
      'userLimits.allowedSymbols',
    ),
    trading_mode: input.tradingMode,
  };
}

/** Safe until an agent decides: nothing trades (position size 0), leverage at its lowest. */
export function initialAiState(definition: WalletDefinition, limits: UserLimits): AiManagedState {
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
