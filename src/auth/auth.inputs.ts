import { IsEmail, IsInt, IsOptional, Length, Matches, Max, MaxLength, Min } from 'class-validator';
import { Name, SafeText } from '../shared/validators';
import { ArgsType, Field, InputType, Int } from 'type-graphql';

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

@ArgsType()
export class IssueAgentTokenArgs {
  @Field()
  @Name()
  // The audit trail names users by their id: an agent named like one could pass for a user.
  @Matches(/^(?!\s*[0-9a-fA-F]{24}\s*$)/, {
    message: 'must not look like a user id (24 hexadecimal characters)',
  })
  name!: string;

  @Field(() => Int, { nullable: true, description: 'Default 30, at most 365.' })
  @IsOptional()
  @IsInt()
  @Min(1, { message: 'must be at least 1' })
  @Max(365, { message: 'must be at most 365' })
  expiresInDays?: number | null;
}
