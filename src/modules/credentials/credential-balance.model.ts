import { getModelForClass, index, modelOptions, prop } from '@typegoose/typegoose';
import { Schema, type Types } from 'mongoose';
import { Field, ObjectType } from 'type-graphql';
import { AssetBalance } from './credential.model';

/**
 * Collection `credential_balances`: what each passing connection test (the user's or the
 * service's) read, kept BALANCE_HISTORY_DAYS by a TTL index on `at` (db/retention.ts). Private
 * like the balances themselves: shown only through Credential.balanceHistory.
 */
@ObjectType('BalanceSnapshot')
@modelOptions({
  schemaOptions: { collection: 'credential_balances', versionKey: false },
  options: { customName: 'CredentialBalance' },
})
@index({ credential_id: 1, at: -1 })
export class CredentialBalance {
  readonly _id!: Types.ObjectId;

  @prop({ required: true, type: Schema.Types.ObjectId })
  credential_id!: Types.ObjectId;

  @Field(() => Date)
  @prop({ required: true, type: Date })
  at!: Date;

  @Field(() => [AssetBalance])
  @prop({ required: true, type: () => [AssetBalance] })
  balances!: AssetBalance[];
}

export const CredentialBalanceModel = getModelForClass(CredentialBalance);
