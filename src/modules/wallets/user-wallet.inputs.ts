import { ArrayMaxSize, IsInt, IsOptional, Max, Min, ValidateNested } from 'class-validator';
import { Name, Text } from '../../shared/validators';
import { ArgsType, Field, Float, InputType, Int } from 'type-graphql';
import { NonNegativeFloatScalar, NonNegativeIntScalar, ObjectIdScalar } from '../../shared/scalars';
import { WalletEventKind } from '../audit/user-wallet-event.model';
import { MarketSentiment, TradingMode, WalletStatus } from './user-wallet.model';

/**
 * Shape only; what needs the database (symbols vs. supported assets, leverage vs. the exchange) is
 * in the services.
 */

const MAX_RISK = 1e15;

@InputType()
export class UserLimitsInput {
  @Field(() => NonNegativeFloatScalar)
  @Min(Number.MIN_VALUE, { message: 'must be greater than 0' })
  @Max(MAX_RISK, { message: `must be at most ${MAX_RISK}` })
  maxTotalRisk!: number;

  @Field(() => [String], {
    nullable: true,
    description: "null: every asset in the definition's supportedAssets.",
  })
  allowedSymbols?: string[] | null;

  @Field(() => TradingMode)
  tradingMode!: TradingMode;
}

@InputType()
export class CreateUserWalletInput {
  @Field(() => ObjectIdScalar)
  credentialId!: string;

  @Field()
  @Name()
  name!: string;

  @Field(() => UserLimitsInput)
  @ValidateNested()
  userLimits!: UserLimitsInput;
}

@InputType()
export class UpdateUserWalletInput {
  @Field(() => String, { nullable: true })
  @IsOptional()
  @Name()
  name?: string | null;

  @Field(() => UserLimitsInput, { nullable: true })
  @IsOptional()
  @ValidateNested()
  userLimits?: UserLimitsInput | null;
}

@InputType()
export class UserWalletFilter {
  @Field(() => WalletStatus, { nullable: true })
  status?: WalletStatus | null;
}

@InputType({
  description:
    'A partial update: only the fields given change. lastAiDecision is set by the server.',
})
export class AiManagedStateInput {
  @Field(() => NonNegativeFloatScalar, { nullable: true })
  currentRisk?: number | null;

  @Field(() => Float, { nullable: true })
  dailyPnl?: number | null;

  @Field(() => NonNegativeIntScalar, { nullable: true })
  openPositions?: number | null;

  @Field(() => NonNegativeFloatScalar, { nullable: true })
  currentMaxPositionSize?: number | null;

  @Field(() => Int, { nullable: true })
  currentLeverage?: number | null;

  @Field(() => Float, { nullable: true })
  adaptiveStopLoss?: number | null;

  @Field(() => Int, { nullable: true })
  riskScore?: number | null;

  @Field(() => MarketSentiment, { nullable: true })
  marketSentiment?: MarketSentiment | null;

  @Field(() => Int, { nullable: true })
  confidenceLevel?: number | null;
}

/** An agent's page of wallets (managedWallets, managedWalletChanges). */
export const DEFAULT_WALLET_PAGE = 100;
export const MAX_WALLET_PAGE = 500;

@ArgsType()
export class ManagedWalletsArgs {
  @Field(() => WalletStatus, { nullable: true })
  status?: WalletStatus | null;

  @Field(() => Int, {
    nullable: true,
    description: `Default ${DEFAULT_WALLET_PAGE}, at most ${MAX_WALLET_PAGE}.`,
  })
  @IsOptional()
  @IsInt()
  @Min(1, { message: 'must be at least 1' })
  @Max(MAX_WALLET_PAGE, { message: `must be at most ${MAX_WALLET_PAGE}` })
  first?: number | null;

  @Field(() => String, { nullable: true, description: 'The endCursor of the previous page.' })
  after?: string | null;
}

@ArgsType()
export class ManagedWalletChangesArgs {
  @Field(() => Date, { description: 'Wallets whose userChangedAt is at or after this.' })
  since!: Date;

  @Field(() => Int, {
    nullable: true,
    description: `Default ${DEFAULT_WALLET_PAGE}, at most ${MAX_WALLET_PAGE}.`,
  })
  @IsOptional()
  @IsInt()
  @Min(1, { message: 'must be at least 1' })
  @Max(MAX_WALLET_PAGE, { message: `must be at most ${MAX_WALLET_PAGE}` })
  first?: number | null;

  @Field(() => String, {
    nullable: true,
    description: 'The endCursor of the previous page; stable while changes keep arriving.',
  })
  after?: string | null;
}

export const MAX_TRAIL_PAGE = 100;

@ArgsType()
export class AuditTrailArgs {
  @Field(() => Int, { nullable: true, description: `Default 20, at most ${MAX_TRAIL_PAGE}.` })
  @IsOptional()
  @IsInt()
  @Min(1, { message: 'must be at least 1' })
  @Max(MAX_TRAIL_PAGE, { message: `must be at most ${MAX_TRAIL_PAGE}` })
  first?: number | null;

  @Field(() => String, { nullable: true, description: 'The endCursor of the previous page.' })
  after?: string | null;

  @Field(() => [WalletEventKind], { nullable: true, description: 'Left out: every kind.' })
  kinds?: WalletEventKind[] | null;
}

export const MAX_BATCH = 100;

@InputType()
export class AiStateUpdateInput {
  @Field(() => ObjectIdScalar)
  walletId!: string;

  @Field(() => Int, { nullable: true })
  expectedVersion?: number | null;

  @Field(() => AiManagedStateInput)
  input!: AiManagedStateInput;

  @Field(() => Boolean, {
    nullable: true,
    description: 'Run every check of the write and answer as it would, storing nothing.',
  })
  validateOnly?: boolean | null;
}

@ArgsType()
export class AiStateUpdatesArgs {
  @Field(() => [AiStateUpdateInput])
  @ArrayMaxSize(MAX_BATCH, { message: `must have at most ${MAX_BATCH} writes` })
  updates!: AiStateUpdateInput[];
}

const MAX_REASON = 500;

@ArgsType()
export class AiPauseWalletArgs {
  @Field(() => ObjectIdScalar)
  walletId!: string;

  @Field()
  @Text(MAX_REASON)
  reason!: string;
}
