import type { Types } from 'mongoose';
import { Field, ObjectType } from 'type-graphql';
import { ObjectIdScalar } from '../../shared/scalars';
import { AgentScope } from './roles';
import { User } from './user.model';

@ObjectType()
export class AuthPayload {
  @Field()
  token!: string;

  @Field(() => Date)
  expiresAt!: Date;

  @Field(() => User)
  user!: User;
}

@ObjectType()
export class AgentToken {
  @Field(() => ObjectIdScalar, { description: 'The id revokeAgentToken takes.' })
  id!: Types.ObjectId;

  @Field()
  token!: string;

  @Field()
  name!: string;

  @Field(() => Date)
  expiresAt!: Date;

  @Field(() => AgentScope)
  scope!: AgentScope;
}
