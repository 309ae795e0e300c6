import { Field, Float, Int, ObjectType, registerEnumType } from 'type-graphql';
import { NonNegativeFloatScalar, ObjectIdScalar } from '../../shared/scalars';
import { LeverageRange } from '../catalog/wallet-definition.model';
import { UserWalletEvent } from '../audit/user-wallet-event.model';
import { UserWallet } from './user-wallet.model';

@ObjectType()
export class UserWalletEdge {
  @Field()
  cursor!: string;

  @Field(() => UserWallet)
  node!: UserWallet;
}

/**
 * Relay's PageInfo. Lists here page forward only: hasPreviousPage says whether `after` was given.
 */
@ObjectType()
export class PageInfo {
  @Field()
  hasNextPage!: boolean;

  @Field(() => String, { nullable: true })
  endCursor!: string | null;

  @Field({ description: 'True when this page continues an earlier one (after was given).' })
  hasPreviousPage!: boolean;

  @Field(() => String, { nullable: true })
  startCursor!: string | null;
}

@ObjectType()
export class UserWalletConnection {
  @Field(() => [UserWalletEdge])
  edges!: UserWalletEdge[];

  @Field(() => PageInfo)
  pageInfo!: PageInfo;
}

@ObjectType()
export class UserWalletEventEdge {
  @Field()
  cursor!: string;

  @Field(() => UserWalletEvent)
  node!: UserWalletEvent;
}

@ObjectType()
export class UserWalletEventConnection {
  @Field(() => [UserWalletEventEdge])
  edges!: UserWalletEventEdge[];

  @Field(() => PageInfo)
  pageInfo!: PageInfo;
}

/** The edges and PageInfo of one forward page: `found` holds up to first + 1 nodes, in order. */
export function pageOf<T>(
  found: readonly T[],
  first: number,
  after: string | null | undefined,
  cursorOf: (node: T) => string,
): { edges: Array<{ cursor: string; node: T }>; pageInfo: PageInfo } {
  const edges = found.slice(0, first).map((node) => ({ cursor: cursorOf(node), node }));
  return {
    edges,
    pageInfo: {
      hasNextPage: found.length > first,
      endCursor: edges.at(-1)?.cursor ?? null,
      hasPreviousPage: after != null,
      startCursor: edges[0]?.cursor ?? null,
    },
  };
}

@ObjectType({
  description:
    "What an agent may write now, from the user's limits, the trading mode and the exchange (the service's own policy).",
})
export class AiBounds {
  @Field(() => NonNegativeFloatScalar, {
    description: 'currentMaxPositionSize may be at most this.',
  })
  maxPositionSize!: number;

  @Field(() => LeverageRange, { description: 'currentLeverage must lie in this range.' })
  leverage!: LeverageRange;

  @Field(() => NonNegativeFloatScalar, {
    description: 'A write whose currentRisk passes this pauses the wallet (AI_PAUSED).',
  })
  maxTotalRisk!: number;
}

/** The values are the stored rules' own (core/errors.ts BoundViolation). */
export enum BoundRule {
  AT_MOST = 'AT_MOST',
  AT_LEAST = 'AT_LEAST',
}
registerEnumType(BoundRule, { name: 'BoundRule' });

@ObjectType({ description: 'One bound that a refused agent write breaks.' })
export class BoundViolation {
  @Field({ description: "The input field, in the API's names (e.g. currentLeverage)." })
  field!: string;

  @Field(() => BoundRule)
  rule!: BoundRule | `${BoundRule}`;

  @Field(() => Float)
  bound!: number;

  @Field(() => Float)
  value!: number;
}

@ObjectType({
  description:
    'Why one write of a batch did not happen; the same code and message updateAiManagedState would give.',
})
export class OperationError {
  @Field()
  code!: string;

  @Field()
  message!: string;

  @Field(() => String, { nullable: true })
  field!: string | null;

  @Field(() => Int, { nullable: true, description: "On CONFLICT: the wallet's version now." })
  currentVersion!: number | null;

  @Field(() => [BoundViolation], {
    nullable: true,
    description:
      "On a BAD_USER_INPUT from the wallet's bounds: every bound the write breaks, not only the first.",
  })
  violations!: readonly BoundViolation[] | null;
}

@ObjectType({ description: 'One write of a batch: the wallet as written, or the error.' })
export class AiStateUpdateOutcome {
  @Field(() => ObjectIdScalar)
  walletId!: string;

  @Field(() => UserWallet, { nullable: true })
  wallet!: UserWallet | null;

  @Field(() => OperationError, { nullable: true })
  error!: OperationError | null;
}
