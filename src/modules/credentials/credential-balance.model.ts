import { getModelForClass, index, modelOptions, prop } from '@typegoose/typegoose';
import { Schema, Types } from 'mongoose';
import { dbOptions, type RequestContext } from '../../core/context';
import { Field, ObjectType } from 'type-graphql';
import { AssetBalance } from './credential.model';

/**
 * Collection `credential_balances`: what each passing connection test (the user's or the
 * service's) read, and a paper credential's balances as its owner set them, kept BALANCE_HISTORY_DAYS by a TTL index on `at` (db/retention.ts). Private
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

/** One snapshot of a credential's balances; its id, for a caller that may have to take it back. */
export async function insertBalanceSnapshot(
  ctx: Pick<RequestContext, 'comment'>,
  credentialId: Types.ObjectId,
  balances: AssetBalance[],
  at: Date,
): Promise<Types.ObjectId> {
  const _id = new Types.ObjectId();
  await CredentialBalanceModel.collection.insertOne(
    { _id, credential_id: credentialId, at, balances },
    dbOptions(ctx),
  );
  return _id;
}
