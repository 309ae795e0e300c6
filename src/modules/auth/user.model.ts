import { getModelForClass, index, modelOptions, prop } from '@typegoose/typegoose';
import type { Types } from 'mongoose';
import { Field, ObjectType } from 'type-graphql';
import { ObjectIdScalar } from '../../shared/scalars';
import { Role } from './roles';

@modelOptions({ schemaOptions: { _id: false } })
export class Quota {
  @prop({ type: Number })
  credentials?: number;

  @prop({ type: Number })
  wallets?: number;
}

@ObjectType('User')
@modelOptions({
  schemaOptions: {
    collection: 'users',
    timestamps: { createdAt: 'created_at', updatedAt: 'updated_at' },
  },
  options: { customName: 'User' },
})
// Emails are stored trimmed and lower-cased, so this index is case-insensitive in effect.
@index({ email: 1 }, { unique: true })
// The sessions' re-check reads the accounts changed since its last read (auth/account-watch.ts).
@index({ updated_at: 1 })
export class User {
  @Field(() => ObjectIdScalar, { name: 'id' })
  readonly _id!: Types.ObjectId;

  @Field()
  @prop({ required: true, type: String, lowercase: true, trim: true })
  email!: string;

  @Field(() => String, { nullable: true })
  @prop({ type: String, default: null })
  name!: string | null;

  @Field(() => Role)
  @prop({ required: true, type: String, enum: [Role.USER, Role.ADMIN] })
  role!: Role;

  /** argon2id; never a GraphQL field. */
  @prop({ required: true, type: String })
  password_hash!: string;

  /**
   * Grows when the password changes; a user token carries the value it was issued under (`tv`)
   * and is refused once they differ. Missing on accounts older than it: 0.
   */
  @prop({ type: Number, default: 0 })
  token_version?: number;

  /**
   * What the per-user caps count (credentials, wallets), kept by conditional updates; see
   * shared/user-caps.ts. Missing: not counted yet.
   */
  @prop({ type: () => Quota, default: undefined })
  quota?: Quota;

  @Field(() => Date, { name: 'createdAt' })
  created_at!: Date;

  updated_at!: Date;
}

export const UserModel = getModelForClass(User);
