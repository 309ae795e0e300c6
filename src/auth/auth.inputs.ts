import { IsEmail, IsInt, IsOptional, Length, Max, MaxLength, Min } from 'class-validator';
import { Name } from '../shared/validators';
import { ArgsType, Field, InputType, Int } from 'type-graphql';

export const PASSWORD_MIN = 8;
export const PASSWORD_MAX = 256;

@InputType()
export class RegisterInput {
  @Field()
  @MaxLength(254, { message: 'must be at most 254 characters' })
  @IsEmail({}, { message: 'must be an email address' })
  email!: string;

  @Field()
  @Length(PASSWORD_MIN, PASSWORD_MAX, { message: `must be ${PASSWORD_MIN} to ${PASSWORD_MAX} characters` })
  password!: string;

  @Field(() => String, { nullable: true })
  @IsOptional()
  @Length(1, 100, { message: 'must be 1 to 100 characters' })
  name?: string | null;
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
  name!: string;

  @Field(() => Int, { nullable: true, description: 'Default 30, at most 365.' })
  @IsOptional()
  @IsInt()
  @Min(1, { message: 'must be at least 1' })
  @Max(365, { message: 'must be at most 365' })
  expiresInDays?: number | null;
}
