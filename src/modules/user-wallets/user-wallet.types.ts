import { Field, ObjectType } from 'type-graphql';
import { UserWallet } from './user-wallet.model';

@ObjectType()
export class UserWalletEdge {
  @Field()
  cursor!: string;

  @Field(() => UserWallet)
  node!: UserWallet;
}

@ObjectType()
export class PageInfo {
  @Field()
  hasNextPage!: boolean;

  @Field(() => String, { nullable: true })
  endCursor!: string | null;
}

@ObjectType()
export class UserWalletConnection {
  @Field(() => [UserWalletEdge])
  edges!: UserWalletEdge[];

  @Field(() => PageInfo)
  pageInfo!: PageInfo;
}
