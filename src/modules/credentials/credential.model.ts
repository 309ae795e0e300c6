import { getModelForClass, index, modelOptions, prop, Severity } from '@typegoose/typegoose';
import { Schema, type Types } from 'mongoose';
import { Field, Float, ObjectType, registerEnumType } from 'type-graphql';
import { ObjectIdScalar } from '../../shared/scalars';

/**
 * Collection `credentials` (spec §2). `credentials` holds each value under its auth-field key:
 * a Fernet token for fields marked `encrypted`, the plain value otherwise. It has no @Field:
 * no GraphQL type can return a stored value.
 */

export enum Environment {
  MAINNET = 'mainnet',
  TESTNET = 'testnet',
  /** No key, no exchange: virtual balances its owner sets (docs/api.md, "Paper credentials"). */
  PAPER = 'paper',
}
registerEnumType(Environment, {
  name: 'Environment',
  valuesConfig: {
    PAPER: {
      description: 'No keys, no exchange contacted: virtual balances the owner sets and resets.',
    },
  },
});

/**
 * What the last connection test said of the key (stored lowercase); see docs/api.md, "Connection
 * states".
 */
export enum ConnectionState {
  UNTESTED = 'untested',
  CONNECTED = 'connected',
  UNREACHABLE = 'unreachable',
  REJECTED = 'rejected',
}
registerEnumType(ConnectionState, {
  name: 'ConnectionState',
  valuesConfig: {
    UNTESTED: { description: 'Not tested since its values or environment were set.' },
    CONNECTED: {
      description: 'The last test passed; a PAPER credential is CONNECTED from creation.',
    },
    UNREACHABLE: {
      description:
        'The last test could not reach the exchange, timed out or was rate limited: the key may still be good.',
    },
    REJECTED: {
      description:
        'The exchange refused the key, or the key breaks platform policy (it can withdraw): its wallets are paused.',
    },
  },
});

@ObjectType({
  description: 'What the exchange says a key may do; null where the exchange does not tell.',
})
@modelOptions({ schemaOptions: { _id: false } })
export class KeyPermissions {
  @Field(() => Boolean, { nullable: true })
  @prop({ type: Boolean, default: null })
  read!: boolean | null;

  @Field(() => Boolean, { nullable: true })
  @prop({ type: Boolean, default: null })
  trade!: boolean | null;

  @Field(() => Boolean, { nullable: true })
  @prop({ type: Boolean, default: null })
  withdraw!: boolean | null;

  @Field(() => Boolean, {
    name: 'ipRestricted',
    nullable: true,
    description: 'Whether the key works only from listed IP addresses.',
  })
  @prop({ type: Boolean, default: null })
  ip_restricted!: boolean | null;

  @Field(() => Date, {
    name: 'tradingExpiresAt',
    nullable: true,
    description:
      "When the exchange ends this key's trading rights (Binance tradingAuthorityExpirationTime, a Hyperliquid API wallet's validUntil); null: no end, or not told.",
  })
  @prop({ type: Date, default: null })
  trading_expires_at!: Date | null;
}

/** Not a secret, but private: only the credential's owner and agents see it, never the logs. */
@ObjectType()
@modelOptions({ schemaOptions: { _id: false } })
export class AssetBalance {
  @Field()
  @prop({ required: true, type: String })
  asset!: string;

  @Field(() => Float)
  @prop({ required: true, type: Number })
  free!: number;

  @Field(() => Float)
  @prop({ required: true, type: Number })
  used!: number;

  @Field(() => Float)
  @prop({ required: true, type: Number })
  total!: number;
}

@ObjectType('Credential')
@modelOptions({
  schemaOptions: {
    collection: 'credentials',
    timestamps: { createdAt: 'created_at', updatedAt: 'updated_at' },
    minimize: false,
  },
  options: { customName: 'Credential', allowMixed: Severity.ALLOW },
})
@index({ user_id: 1, wallet_id: 1 })
@index({ user_id: 1, is_active: 1 })
// The per-user cap (shared/user-caps.ts): one slot per document, unique; sparse, as older documents
// have none.
@index({ cap_slot: 1 }, { unique: true, sparse: true })
// The service's own tests: which credentials are due (see credential-check-scheduler.ts).
@index({ next_check_at: 1 })
// The metrics' count of keys expiring soon (core/metrics.ts).
@index({ key_expires_at: 1 })
export class Credential {
  @Field(() => ObjectIdScalar, { name: 'id' })
  readonly _id!: Types.ObjectId;

  @prop({ required: true, type: Schema.Types.ObjectId })
  user_id!: Types.ObjectId;

  /** The wallet definition (collection `wallets`). */
  @prop({ required: true, type: Schema.Types.ObjectId })
  wallet_id!: Types.ObjectId;

  @Field()
  @prop({ required: true, type: String })
  name!: string;

  @prop({ required: true, type: Schema.Types.Mixed })
  credentials!: Record<string, string>;

  @Field(() => Environment)
  @prop({
    required: true,
    type: String,
    enum: Object.values(Environment),
    default: Environment.MAINNET,
  })
  environment!: Environment;

  /** connection_state == CONNECTED, as the contract has it. */
  @Field({ name: 'isConnected' })
  @prop({ required: true, type: Boolean, default: false })
  is_connected!: boolean;

  /**
   * Shown as connectionState by CredentialResolver. Credentials stored before it got one from
   * migration 003 before the service answered.
   */
  @prop({ type: String, enum: Object.values(ConnectionState), default: ConnectionState.UNTESTED })
  connection_state!: ConnectionState;

  @Field(() => Date, {
    name: 'lastCheckedAt',
    nullable: true,
    description: 'When the last test, by the user or by the service, ran.',
  })
  @prop({ type: Date, default: null })
  last_checked_at!: Date | null;

  /**
   * When the service tests the credential next: set while a live wallet uses it, null otherwise.
   * While a test runs, the end of that test's lease (see credential-check-scheduler.ts).
   */
  @Field(() => Date, {
    name: 'nextCheckAt',
    nullable: true,
    description:
      'When the service will test it by itself next; null while no live wallet uses it, and always for a PAPER credential.',
  })
  @prop({ type: Date, default: null })
  next_check_at!: Date | null;

  /**
   * When the next test is due by the last one's outcome, whether or not a live wallet uses the
   * credential: next_check_at starts from it when a wallet goes live. Null: untested, due at once.
   */
  @prop({ type: Date, default: null })
  check_due_at!: Date | null;

  /** Consecutive UNREACHABLE outcomes: the back-off doubles with each. */
  @prop({ type: Number, default: 0 })
  check_failures!: number;

  @Field(() => Date, { name: 'lastVerifiedAt', nullable: true })
  @prop({ type: Date, default: null })
  last_verified_at!: Date | null;

  @Field(() => String, { name: 'connectionError', nullable: true })
  @prop({ type: String, default: null })
  connection_error!: string | null;

  @Field({ name: 'isActive' })
  @prop({ required: true, type: Boolean, default: true })
  is_active!: boolean;

  /**
   * What the last passing connection test found; cleared with the connection state when the values
   * change.
   */
  @Field(() => KeyPermissions, { nullable: true, description: 'What the last passing test found.' })
  @prop({ type: () => KeyPermissions, default: null })
  permissions!: KeyPermissions | null;

  /**
   * The end of the key's trading rights as the last test that heard from the exchange found it
   * (kept by a refused test, so an expired key still shows its date); cleared by a passing test
   * that reports none, and when the values change. The service's re-test is due by it at the
   * latest (connection-tests.ts).
   */
  @Field(() => Date, {
    name: 'keyExpiresAt',
    nullable: true,
    description: 'When the key stops trading, as the exchange last said; null: no end known.',
  })
  @prop({ type: Date, default: null })
  key_expires_at!: Date | null;

  @Field(() => [AssetBalance], { nullable: true })
  @prop({ type: () => [AssetBalance], default: undefined })
  balances!: AssetBalance[] | null;

  @Field(() => Date, { name: 'balancesAt', nullable: true })
  @prop({ type: Date, default: null })
  balances_at!: Date | null;

  /**
   * Grows when the values or the environment change. A connection outcome or a key rotation
   * is written only if it is still the version it was computed from.
   */
  @prop({ required: true, type: Number, default: 0 })
  version!: number;

  /**
   * Set while a delete checks for wallets that use the credential; see deleteUnlessUsed in
   * credential-link.ts.
   */
  @prop({ type: Date, default: null })
  deleting_at!: Date | null;

  @prop({ type: Schema.Types.ObjectId, default: null })
  deleting_token!: Types.ObjectId | null;

  /** The credential's slot under its user's cap (see shared/user-caps.ts). */
  @prop({ type: String })
  cap_slot?: string;

  /** When the last connection test started: one per credential per 10 s. */
  @prop({ type: Date, default: null })
  last_test_at!: Date | null;

  @Field(() => Date, { name: 'createdAt' })
  created_at!: Date;

  @Field(() => Date, { name: 'updatedAt' })
  updated_at!: Date;
}

export const CredentialModel = getModelForClass(Credential);
