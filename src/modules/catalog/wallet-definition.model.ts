import { getModelForClass, index, modelOptions, prop, Severity } from '@typegoose/typegoose';
import type { Types } from 'mongoose';
import { Authorized, Field, Int, ObjectType, registerEnumType } from 'type-graphql';
import { Role } from '../auth/roles';
import { CcxtCredential } from '../../exchanges/credentials';
import { ObjectIdScalar } from '../../shared/scalars';

/**
 * Collection `wallets` (spec §1). One class, two faces: the TypeScript properties are the stored
 * snake_case names, and each @Field gives the API's camelCase name, so lean documents resolve
 * as-is.
 */

/** Stored lowercase, shown as the enum's names. */
export enum WalletType {
  CEX = 'cex',
  DEX = 'dex',
  PERPETUALS = 'perpetuals',
}
registerEnumType(WalletType, { name: 'WalletType' });

export enum AuthFieldType {
  STRING = 'string',
  PASSWORD = 'password',
  FILE = 'file',
}
registerEnumType(AuthFieldType, { name: 'AuthFieldType' });

/** Stored as ccxt spells it (apiKey, secret, password, ...), shown as the enum's names. */
registerEnumType(CcxtCredential, {
  name: 'CcxtCredential',
  description: "The credential names ccxt gives an exchange's requiredCredentials.",
});

@ObjectType()
@modelOptions({ schemaOptions: { _id: false } })
export class AuthField {
  @Field()
  @prop({ required: true, type: String })
  key!: string;

  @Field()
  @prop({ required: true, type: String })
  label!: string;

  @Field(() => AuthFieldType)
  @prop({ required: true, type: String, enum: Object.values(AuthFieldType) })
  type!: AuthFieldType;

  @Field()
  @prop({ required: true, type: Boolean })
  required!: boolean;

  @Field()
  @prop({ required: true, type: Boolean })
  encrypted!: boolean;

  @Field(() => String, { nullable: true })
  @prop({ type: String, default: null })
  placeholder!: string | null;

  @Field(() => String, { name: 'helpText', nullable: true })
  @prop({ type: String, default: null })
  help_text!: string | null;

  @Field(() => CcxtCredential, {
    name: 'ccxtCredential',
    nullable: true,
    description: "Which ccxt credential this field's value is passed as.",
  })
  @prop({
    type: String,
    default: null,
    validate: (value: unknown) =>
      value === null || Object.values(CcxtCredential).includes(value as CcxtCredential),
  })
  ccxt_credential!: CcxtCredential | null;
}

@ObjectType()
@modelOptions({ schemaOptions: { _id: false } })
export class LeverageRange {
  @Field(() => Int)
  @prop({ required: true, type: Number })
  min!: number;

  @Field(() => Int)
  @prop({ required: true, type: Number })
  max!: number;
}

@ObjectType()
@modelOptions({ schemaOptions: { _id: false } })
export class WalletFeatures {
  @Field()
  @prop({ required: true, type: Boolean })
  spot!: boolean;

  @Field()
  @prop({ required: true, type: Boolean })
  futures!: boolean;

  @Field()
  @prop({ required: true, type: Boolean })
  perpetuals!: boolean;

  @Field(() => LeverageRange)
  @prop({ required: true, type: () => LeverageRange })
  leverage!: LeverageRange;

  @Field(() => [String], { name: 'supportedAssets' })
  @prop({ required: true, type: () => [String] })
  supported_assets!: string[];
}

@ObjectType()
@modelOptions({ schemaOptions: { _id: false } })
export class ApiConfig {
  @Field({ name: 'baseUrl' })
  @prop({ required: true, type: String })
  base_url!: string;

  @Field(() => String, { name: 'testnetUrl', nullable: true })
  @prop({ type: String, default: null })
  testnet_url!: string | null;

  @Field(() => String, { name: 'websocketUrl', nullable: true })
  @prop({ type: String, default: null })
  websocket_url!: string | null;

  @Field(() => Int, { name: 'rateLimit', description: 'Requests per minute.' })
  @prop({ required: true, type: Number })
  rate_limit!: number;
}

@ObjectType('WalletDefinition')
@modelOptions({
  schemaOptions: {
    collection: 'wallets',
    timestamps: { createdAt: 'created_at', updatedAt: 'updated_at' },
  },
  options: { customName: 'WalletDefinition', allowMixed: Severity.ERROR },
})
@index({ slug: 1 }, { unique: true })
@index({ is_active: 1, order: 1 })
export class WalletDefinition {
  @Field(() => ObjectIdScalar, { name: 'id' })
  readonly _id!: Types.ObjectId;

  @Field()
  @prop({ required: true, type: String })
  name!: string;

  @Field()
  @prop({ required: true, type: String })
  slug!: string;

  @Field(() => WalletType)
  @prop({ required: true, type: String, enum: Object.values(WalletType) })
  type!: WalletType;

  @Field(() => String, { nullable: true })
  @prop({ type: String, default: null })
  description!: string | null;

  @Field(() => String, { nullable: true })
  @prop({ type: String, default: null })
  logo!: string | null;

  @Field(() => String, {
    name: 'ccxtId',
    nullable: true,
    description:
      'The ccxt exchange id the connection test uses (binance, okx, kraken, bybit, ...); null: none.',
  })
  @prop({ type: String, default: null })
  ccxt_id!: string | null;

  @Field(() => [AuthField], { name: 'authFields' })
  @prop({ required: true, type: () => [AuthField] })
  auth_fields!: AuthField[];

  @Field(() => WalletFeatures)
  @prop({ required: true, type: () => WalletFeatures })
  features!: WalletFeatures;

  @Authorized(Role.ADMIN)
  @Field(() => ApiConfig, {
    name: 'apiConfig',
    nullable: true,
    description: 'ADMIN only: anyone else who selects it gets a FORBIDDEN error on this field.',
  })
  @prop({ required: true, type: () => ApiConfig })
  api_config!: ApiConfig;

  @Field({ name: 'isActive' })
  @prop({ required: true, type: Boolean, default: true })
  is_active!: boolean;

  @Field(() => Int)
  @prop({ required: true, type: Number, default: 0 })
  order!: number;

  @Field(() => Date, { name: 'createdAt' })
  created_at!: Date;

  @Field(() => Date, { name: 'updatedAt' })
  updated_at!: Date;
}

export const WalletDefinitionModel = getModelForClass(WalletDefinition);
