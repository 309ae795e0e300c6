import { ArrayMaxSize, IsOptional, Matches, MaxLength, ValidateNested } from 'class-validator';
import { Name } from '../../shared/validators';
import { Field, InputType } from 'type-graphql';
import { ObjectIdScalar, PositiveFloatScalar } from '../../shared/scalars';
import { Environment } from './credential.model';

/**
 * Shape only. What a value must be (required keys, known keys, size) depends on the exchange's
 * auth fields and is checked in credential-values.ts. No message here may quote a value.
 */

@InputType()
export class CredentialValueInput {
  @Field()
  @MaxLength(64, { message: 'must be at most 64 characters' })
  @Matches(/^[a-z][a-z0-9_]*$/, { message: 'must be an auth field key (snake_case)' })
  key!: string;

  @Field()
  value!: string;
}

@InputType()
export class PaperBalanceInput {
  @Field()
  asset!: string;

  @Field(() => PositiveFloatScalar)
  amount!: number;
}

@InputType()
export class CreateCredentialInput {
  @Field(() => ObjectIdScalar, { description: "The wallet definition's id." })
  walletId!: string;

  @Field()
  @Name()
  name!: string;

  @Field(() => Environment, { nullable: true, description: 'Left out: MAINNET.' })
  environment?: Environment | null;

  @Field(() => [CredentialValueInput])
  @ArrayMaxSize(50, { message: 'must have at most 50 entries' })
  @ValidateNested({ each: true })
  values!: CredentialValueInput[];

  @Field(() => [PaperBalanceInput], {
    nullable: true,
    description: 'PAPER only (and then required): the virtual balances to start from.',
  })
  paperBalances?: PaperBalanceInput[] | null;
}

@InputType()
export class UpdateCredentialInput {
  @Field(() => String, { nullable: true })
  @IsOptional()
  @Name()
  name?: string | null;

  @Field(() => Environment, { nullable: true })
  environment?: Environment | null;

  @Field(() => [CredentialValueInput], {
    nullable: true,
    description: 'Replaces the stored values as a whole; validated like on create.',
  })
  @IsOptional()
  @ArrayMaxSize(50, { message: 'must have at most 50 entries' })
  @ValidateNested({ each: true })
  values?: CredentialValueInput[] | null;

  @Field(() => Boolean, { nullable: true })
  isActive?: boolean | null;
}

@InputType()
export class CredentialFilter {
  @Field(() => ObjectIdScalar, { nullable: true })
  walletId?: string | null;

  @Field(() => Boolean, { nullable: true })
  isActive?: boolean | null;
}
