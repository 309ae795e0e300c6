import { getModelForClass, index, modelOptions, prop, Severity } from '@typegoose/typegoose';
import { Schema, type Types } from 'mongoose';
import { Field, Int, ObjectType, registerEnumType } from 'type-graphql';
import type { TraceIds } from '../../core/tracing';
import { Role } from '../auth/roles';
import { JSONObjectScalar, ObjectIdScalar } from '../../shared/scalars';

export enum WalletEventKind {
  CREATED = 'created',
  LIMITS_CHANGED = 'limits_changed',
  AI_STATE_CHANGED = 'ai_state_changed',
  STATUS_CHANGED = 'status_changed',
  AGENT_GRANTED = 'agent_granted',
  AGENT_REVOKED = 'agent_revoked',
}
registerEnumType(WalletEventKind, {
  name: 'WalletEventKind',
  valuesConfig: {
    AGENT_GRANTED: {
      description:
        'An owner granted an agent on this wallet (or changed its permissions or expiry).',
    },
    AGENT_REVOKED: { description: "An owner revoked an agent's grant on this wallet." },
  },
});

/** Collection `user_wallet_events`: the audit trail, append-only. */
@ObjectType('UserWalletEvent')
@modelOptions({
  schemaOptions: { collection: 'user_wallet_events', versionKey: false },
  options: { customName: 'UserWalletEvent', allowMixed: Severity.ALLOW },
})
@index({ wallet_id: 1, at: -1 })
// The live feed's query (src/modules/live/wallet-event-feed.ts): what reached the trail since.
@index({ recorded_at: 1 })
export class UserWalletEvent {
  @Field(() => ObjectIdScalar, { name: 'id' })
  readonly _id!: Types.ObjectId;

  /** The user wallet (collection `user_wallets`). */
  @Field(() => ObjectIdScalar, { name: 'walletId' })
  @prop({ required: true, type: Schema.Types.ObjectId })
  wallet_id!: Types.ObjectId;

  @Field(() => WalletEventKind)
  @prop({ required: true, type: String, enum: Object.values(WalletEventKind) })
  kind!: WalletEventKind;

  @Field({ description: 'Who: a user by id, an agent by the name in its token.' })
  @prop({ required: true, type: String })
  actor!: string;

  /** The user's id, or the id in the agent token's subject. */
  @prop({ required: true, type: Schema.Types.ObjectId })
  actor_id!: Types.ObjectId;

  @Field(() => Role, { name: 'actorRole' })
  @prop({ required: true, type: String, enum: Object.values(Role) })
  actor_role!: Role;

  @Field(() => JSONObjectScalar, {
    nullable: true,
    description: "The changed fields before and after, in the API's field names.",
  })
  @prop({ type: Schema.Types.Mixed, default: null })
  before!: Record<string, unknown> | null;

  @Field(() => JSONObjectScalar, { nullable: true })
  @prop({ type: Schema.Types.Mixed, default: null })
  after!: Record<string, unknown> | null;

  /**
   * The wallet's version this event produced. Null only on a provisional event (see
   * writeWithEvent) whose request stopped before it could complete it.
   */
  @Field(() => Int, {
    nullable: true,
    description:
      "The wallet version this event's change produced; null for a change whose version was never known.",
  })
  @prop({ type: Number, default: null })
  version!: number | null;

  @Field(() => Date)
  @prop({ required: true, type: Date })
  at!: Date;

  /** When the event reached the trail (see trailRecords); missing on events older than the feed. */
  @prop({ type: Date })
  recorded_at?: Date;

  /**
   * The span of the request or job that made the change, when it was traced: each live delivery of
   * the event links to it (core/tracing.ts). Never in the API.
   */
  @prop({ type: Schema.Types.Mixed })
  trace?: TraceIds;
}

export const UserWalletEventModel = getModelForClass(UserWalletEvent);

/**
 * An event as stored: in the trail, or still in its wallet's outbox
 * (`user_wallets.pending_events`).
 */
export type WalletEventRecord = Pick<
  UserWalletEvent,
  | '_id'
  | 'wallet_id'
  | 'kind'
  | 'actor'
  | 'actor_id'
  | 'actor_role'
  | 'before'
  | 'after'
  | 'version'
  | 'at'
  | 'trace'
>;
