import { getModelForClass, index, modelOptions, prop, Severity } from '@typegoose/typegoose';
import { Schema, type Types } from 'mongoose';
import { Field, Float, Int, ObjectType, registerEnumType } from 'type-graphql';
import { NonNegativeFloatScalar, NonNegativeIntScalar, ObjectIdScalar } from '../../shared/scalars';
import type { WalletEventRecord } from '../audit/user-wallet-event.model';
import type { TrailEntry } from '../audit/outbox';

/**
 * Collection `user_wallets` (spec §3), stored under the spec's snake_case names, shown under the
 * API's camelCase ones (the same two faces as the catalog).
 */

export enum TradingMode {
  CONSERVATIVE = 'conservative',
  MODERATE = 'moderate',
  AGGRESSIVE = 'aggressive',
}
registerEnumType(TradingMode, { name: 'TradingMode' });

export enum MarketSentiment {
  BULLISH = 'bullish',
  BEARISH = 'bearish',
  NEUTRAL = 'neutral',
  UNCERTAIN = 'uncertain',
}
registerEnumType(MarketSentiment, { name: 'MarketSentiment' });

export enum WalletStatus {
  ACTIVE = 'active',
  AI_PAUSED = 'ai_paused',
  USER_PAUSED = 'user_paused',
}
registerEnumType(WalletStatus, { name: 'WalletStatus' });

/** Live wallets trade (or will, once the AI resumes): at most one per credential. */
export const LIVE_STATUSES: readonly WalletStatus[] = [WalletStatus.ACTIVE, WalletStatus.AI_PAUSED];

@ObjectType()
@modelOptions({ schemaOptions: { _id: false } })
export class UserLimits {
  @Field(() => NonNegativeFloatScalar, { name: 'maxTotalRisk' })
  @prop({ required: true, type: Number })
  max_total_risk!: number;

  @Field(() => [String], {
    name: 'allowedSymbols',
    nullable: true,
    description: "null: every asset in the definition's supportedAssets.",
  })
  @prop({ type: () => [String], default: null })
  allowed_symbols!: string[] | null;

  @Field(() => TradingMode, { name: 'tradingMode' })
  @prop({ required: true, type: String, enum: Object.values(TradingMode) })
  trading_mode!: TradingMode;
}

@ObjectType()
@modelOptions({ schemaOptions: { _id: false } })
export class AiManagedState {
  @Field(() => NonNegativeFloatScalar, { name: 'currentRisk' })
  @prop({ required: true, type: Number })
  current_risk!: number;

  @Field(() => Float, { name: 'dailyPnl' })
  @prop({ required: true, type: Number })
  daily_pnl!: number;

  @Field(() => NonNegativeIntScalar, { name: 'openPositions' })
  @prop({ required: true, type: Number })
  open_positions!: number;

  @Field(() => NonNegativeFloatScalar, { name: 'currentMaxPositionSize' })
  @prop({ required: true, type: Number })
  current_max_position_size!: number;

  @Field(() => Int, { name: 'currentLeverage' })
  @prop({ required: true, type: Number })
  current_leverage!: number;

  @Field(() => Float, { name: 'adaptiveStopLoss' })
  @prop({ required: true, type: Number })
  adaptive_stop_loss!: number;

  @Field(() => Int, { name: 'riskScore' })
  @prop({ required: true, type: Number })
  risk_score!: number;

  @Field(() => MarketSentiment, { name: 'marketSentiment' })
  @prop({ required: true, type: String, enum: Object.values(MarketSentiment) })
  market_sentiment!: MarketSentiment;

  @Field(() => Int, { name: 'confidenceLevel' })
  @prop({ required: true, type: Number })
  confidence_level!: number;

  @Field(() => Date, { name: 'lastAiDecision', nullable: true })
  @prop({ type: Date, default: null })
  last_ai_decision!: Date | null;
}

@ObjectType('UserWallet')
@modelOptions({
  schemaOptions: {
    collection: 'user_wallets',
    timestamps: { createdAt: 'created_at', updatedAt: 'updated_at' },
  },
  options: { customName: 'UserWallet' },
})
@index({ user_id: 1, status: 1 })
@index({ credential_id: 1 })
@index({ wallet_id: 1 })
// One live wallet per credential, enforced by the database on every engine (partial indexes are
// not everywhere): live_key is the credential's id while the wallet is live, its own id otherwise.
@index({ live_key: 1 }, { unique: true })
// The per-user cap (shared/user-caps.ts): one slot per document, unique; sparse, as older documents
// have none.
@index({ cap_slot: 1 }, { unique: true, sparse: true })
// The outbox sweep's query: a range on the pending events' times, which only wallets holding one
// match.
@index({ 'pending_events.at': 1 })
// The agents' change feed (managedWalletChanges): a range on user_changed_at, in (user_changed_at,
// _id) order.
@index({ user_changed_at: 1, _id: 1 })
// A GRANTED_WALLETS agent's queries (agent-grants.ts): equality on an agent's id in the array.
@index({ grant_agents: 1 })
// The grant indexes' refresh (grant-index.ts): a range on when the grants last changed.
@index({ grants_changed_at: 1 })
// The expiry sweep (grant-expiry-sweep.ts): a range on the earliest expiry.
@index({ grants_expire_at: 1 })
export class UserWallet {
  @Field(() => ObjectIdScalar, { name: 'id' })
  readonly _id!: Types.ObjectId;

  @prop({ required: true, type: Schema.Types.ObjectId })
  user_id!: Types.ObjectId;

  @prop({ required: true, type: Schema.Types.ObjectId })
  credential_id!: Types.ObjectId;

  /** The wallet definition (collection `wallets`). */
  @prop({ required: true, type: Schema.Types.ObjectId })
  wallet_id!: Types.ObjectId;

  @Field()
  @prop({ required: true, type: String })
  name!: string;

  @Field(() => UserLimits, { name: 'userLimits' })
  @prop({ required: true, type: () => UserLimits })
  user_limits!: UserLimits;

  @Field(() => AiManagedState, { name: 'aiManagedState' })
  @prop({ required: true, type: () => AiManagedState })
  ai_managed_state!: AiManagedState;

  @Field(() => WalletStatus)
  @prop({ required: true, type: String, enum: Object.values(WalletStatus) })
  status!: WalletStatus;

  @Field(() => String, {
    name: 'pauseReason',
    nullable: true,
    description: 'Why the wallet is paused, when it is.',
  })
  @prop({ type: String, default: null })
  pause_reason!: string | null;

  @prop({ required: true, type: Schema.Types.ObjectId })
  live_key!: Types.ObjectId;

  /** The wallet's slot under its user's cap (see shared/user-caps.ts). */
  @prop({ type: String })
  cap_slot?: string;

  @Field(() => Int, {
    description: 'Grows by one on every write; AI agents pass it back as expectedVersion.',
  })
  @prop({ required: true, type: Number, default: 0 })
  version!: number;

  /**
   * Audit events written in the same update as the change they describe, until they are copied to
   * `user_wallet_events` (see audit/outbox.ts): the change and its event stand or fall
   * together.
   */
  @prop({ type: () => [Schema.Types.Mixed], default: [], allowMixed: Severity.ALLOW })
  pending_events?: WalletEventRecord[];

  /**
   * The last events of this wallet that left the outbox for the trail, oldest first (see
   * TrailEntry in audit/outbox.ts): what the live feed checks an event of its own instance against
   * to send it at once, without reading the trail.
   */
  @prop({ type: () => [Schema.Types.Mixed], default: undefined, allowMixed: Severity.ALLOW })
  recent_trail?: TrailEntry[];

  /**
   * When a user (or the service, pausing it) last changed the limits or the status: what agents
   * watch through managedWalletChanges. Agents' own writes leave it (see userChanged). Shown as
   * userChangedAt by the resolver. Wallets stored before it got their updated_at from migration 001
   * before the service answered.
   */
  @prop({ type: Date })
  user_changed_at!: Date;

  /**
   * The owner's grants to agents (agent-grants.ts), by the agent token's id (hex), revoked ones
   * kept so a revocation can be answered again. Wallets from before grants have none.
   */
  @prop({ type: () => Schema.Types.Mixed, allowMixed: Severity.ALLOW })
  agent_grants?: Record<string, AgentGrantRecord>;

  /**
   * The agents holding an unrevoked grant, and those among them with each permission: what an
   * agent's queries and conditional writes filter on by equality, so the grant check is part of
   * the query (an expiry is checked on the document read).
   */
  @prop({ type: () => [Schema.Types.ObjectId], default: undefined })
  grant_agents?: Types.ObjectId[];

  @prop({ type: () => [Schema.Types.ObjectId], default: undefined })
  grant_state_agents?: Types.ObjectId[];

  @prop({ type: () => [Schema.Types.ObjectId], default: undefined })
  grant_pause_agents?: Types.ObjectId[];

  /** When a grant on this wallet last changed: what each instance's grant index re-reads by. */
  @prop({ type: Date })
  grants_changed_at?: Date;

  /**
   * The earliest expiry among its unrevoked grants (or earlier: it is only ever lowered, by $min,
   * and raised by the sweep that finds nothing due): when grant-expiry-sweep.ts looks at it again.
   */
  @prop({ type: Date })
  grants_expire_at?: Date;

  /**
   * Its credential is PAPER (which a credential is from creation to deletion, so this is set once,
   * at creation); absent on wallets older than paper credentials, which are real. Shown as isPaper
   * by UserWalletResolver.
   */
  @prop({ type: Boolean })
  is_paper?: boolean;

  @Field(() => Date, { name: 'createdAt' })
  created_at!: Date;

  @Field(() => Date, { name: 'updatedAt' })
  updated_at!: Date;
}

/** What an agent may do on a wallet besides reading it (stored lowercase, shown as the enum). */
export enum AgentPermission {
  MANAGE_STATE = 'manage_state',
  PAUSE_RESUME = 'pause_resume',
}
registerEnumType(AgentPermission, {
  name: 'AgentPermission',
  description:
    'What a grant lets an agent do on one wallet. Any live grant lets the agent read the wallet, its bounds and events.',
  valuesConfig: {
    MANAGE_STATE: { description: 'Write its AI-managed state (updateAiManagedState(s)).' },
    PAUSE_RESUME: { description: 'aiPauseWallet and aiResumeWallet.' },
  },
});

/** One owner's grant to one agent, as user_wallets.agent_grants stores it. */
export interface AgentGrantRecord {
  _id: Types.ObjectId;
  agent_id: Types.ObjectId;
  /** The token's name when granted (names are not unique; the id is what counts). */
  agent_name: string;
  permissions: AgentPermission[];
  created_at: Date;
  expires_at: Date | null;
  revoked_at: Date | null;
}

export const UserWalletModel = getModelForClass(UserWallet);

/**
 * The part of a wallet update's $set that marks a change agents must see: every user's write of
 * limits or status, and the service's own pauses. Agents' writes of the AI state never carry it.
 */
export function userChanged(at: Date = new Date()): { user_changed_at: Date } {
  return { user_changed_at: at };
}
