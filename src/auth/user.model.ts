import { getModelForClass, index, modelOptions, prop } from '@typegoose/typegoose';
import type { Types } from 'mongoose';
import { Field, ObjectType } from 'type-graphql';
import { ObjectIdScalar } from '../shared/scalars';
import { Role } from './roles';

@ObjectType('User')
@modelOptions({
  schemaOptions: { collection: 'users', timestamps: { createdAt: 'created_at', updatedAt: 'updated_at' } },
  options: { customName: 'User' },
})
// Emails are stored trimmed and lower-cased, so this index is case-insensitive in effect.
@index({ email: 1 }, { unique: true })
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

  @Field(() => Date, { name: 'createdAt' })
  created_at!: Date;

  updated_at!: Date;
}

export const UserModel = getModelForClass(User);
