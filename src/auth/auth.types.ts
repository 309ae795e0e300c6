import { Field, ObjectType } from 'type-graphql';
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
  @Field()
  token!: string;

  @Field()
  name!: string;

  @Field(() => Date)
  expiresAt!: Date;
}
