import {
  IsEmail,
  IsInt,
  IsOptional,
  Length,
  Max,
  MaxLength,
  Min,
  ValidateBy,
} from 'class-validator';
import { Name, SafeText } from '../../shared/validators';
import { ArgsType, Field, InputType, Int } from 'type-graphql';
import { AgentScope, SYSTEM_ACTOR } from './roles';

export const PASSWORD_MIN = 8;
export const PASSWORD_MAX = 256;

@InputType()
export class RegisterInput {
  @Field()
  @MaxLength(254, { message: 'must be at most 254 characters' })
  @IsEmail({}, { message: 'must be an email address' })
  @SafeText()
  email!: string;

  @Field()
  @Length(PASSWORD_MIN, PASSWORD_MAX, {
    message: `must be ${PASSWORD_MIN} to ${PASSWORD_MAX} characters`,
  })
  password!: string;

  @Field(() => String, { nullable: true })
  @IsOptional()
  @Length(1, 100, { message: 'must be 1 to 100 characters' })
  @SafeText()
  name?: string | null;
}

@ArgsType()
export class ChangePasswordArgs {
  @Field()
  @MaxLength(PASSWORD_MAX, { message: `must be at most ${PASSWORD_MAX} characters` })
  currentPassword!: string;

  @Field()
  @Length(PASSWORD_MIN, PASSWORD_MAX, {
    message: `must be ${PASSWORD_MIN} to ${PASSWORD_MAX} characters`,
  })
  newPassword!: string;
}

@ArgsType()
export class LoginArgs {
  @Field()
  @MaxLength(254, { message: 'must be at most 254 characters' })
  email!: string;

  @Field()
  @MaxLength(PASSWORD_MAX, { message: `must be at most ${PASSWORD_MAX} characters` })
  password!: string;
}

/**
 * An agent name as the rules below compare it, so that what looks the same is the same: NFKC
 * (full-width "０１２ａｂ" is "012ab"), without default-ignorable characters (zero-width spaces and
 * joiners, soft hyphens), every dash and the minus sign a hyphen-minus, trimmed, lower case. The
 * name is stored as given (cleanName); only the comparison folds it.
 */
function agentNameSkeleton(name: string): string {
  return name
    .normalize('NFKC')
    .replace(/\p{Default_Ignorable_Code_Point}/gu, '')
    .replace(/[\p{Dash_Punctuation}\u2212]/gu, '-')
    .trim()
    .toLowerCase();
}

function AgentNameRule(
  name: string,
  breaks: (skeleton: string) => boolean,
  message: string,
): PropertyDecorator {
  return ValidateBy({
    name,
    validator: {
      validate: (value: unknown) => typeof value !== 'string' || !breaks(agentNameSkeleton(value)),
      defaultMessage: () => message,
    },
  });
}

@ArgsType()
export class IssueAgentTokenArgs {
  @Field()
  @Name()
  // The audit trail names users by their id and the service by its name: an agent named like
  // either could pass for it.
  @AgentNameRule(
    'notUserId',
    (skeleton) => /^[0-9a-f]{24}$/.test(skeleton),
    'must not look like a user id (24 hexadecimal characters)',
  )
  @AgentNameRule(
    'notServiceName',
    (skeleton) => skeleton === SYSTEM_ACTOR.name,
    `must not be the service's own name (${SYSTEM_ACTOR.name})`,
  )
  name!: string;

  @Field(() => Int, { nullable: true, description: 'Default 30, at most 365.' })
  @IsOptional()
  @IsInt()
  @Min(1, { message: 'must be at least 1' })
  @Max(365, { message: 'must be at most 365' })
  expiresInDays?: number | null;

  @Field(() => AgentScope, {
    nullable: true,
    defaultValue: AgentScope.ALL_WALLETS,
    description:
      'ALL_WALLETS (an admin only) or GRANTED_WALLETS (a user: a personal agent, which only that user can grant).',
  })
  @IsOptional()
  scope?: AgentScope | null;
}
