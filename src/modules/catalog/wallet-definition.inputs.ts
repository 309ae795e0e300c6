import {
  ArrayMaxSize,
  ArrayMinSize,
  ArrayUnique,
  IsInt,
  IsOptional,
  IsUrl,
  Matches,
  Max,
  MaxLength,
  Min,
  Validate,
  ValidateNested,
  ValidatorConstraint,
  type ValidationArguments,
  type ValidatorConstraintInterface,
} from 'class-validator';
import { Name, SafeText } from '../../shared/validators';
import { Field, InputType, Int } from 'type-graphql';
import { CcxtCredential } from '../../exchanges/credentials';
import { AuthFieldType, WalletType } from './wallet-definition.model';

/** Shape rules of the catalog, checked on the input before any resolver runs. */

export const SLUG_PATTERN = /^[a-z0-9][a-z0-9-]{1,39}$/;
const AUTH_FIELD_KEY = /^[a-z][a-z0-9]*(_[a-z0-9]+)*$/;
const ASSET = /^[A-Z0-9]{1,20}$/;
const HTTP_URL = { protocols: ['http', 'https'], require_protocol: true, require_tld: false };
const WS_URL = { protocols: ['ws', 'wss'], require_protocol: true, require_tld: false };
const MAX_LEVERAGE = 1000;
export const MAX_SUPPORTED_ASSETS = 500;
export const MAX_AUTH_FIELDS = 50;
/** ccxt's exchange ids: lower-case letters and digits. */
const CCXT_ID = /^[a-z0-9]{2,40}$/;
const CCXT_ID_MESSAGE = 'must be a ccxt exchange id (lower-case letters and digits, such as okx)';

@ValidatorConstraint({ name: 'notBelowMin' })
class NotBelowMin implements ValidatorConstraintInterface {
  validate(max: number, args: ValidationArguments): boolean {
    return max >= (args.object as LeverageRangeInput).min;
  }

  defaultMessage(): string {
    return 'must be at least leverage.min';
  }
}

@InputType()
export class AuthFieldInput {
  @Field()
  @Matches(AUTH_FIELD_KEY, {
    message: 'must be snake_case (lower-case letters, digits and single underscores)',
  })
  @MaxLength(64, { message: 'must be at most 64 characters' })
  key!: string;

  @Field()
  @Name()
  label!: string;

  @Field(() => AuthFieldType)
  type!: AuthFieldType;

  @Field()
  required!: boolean;

  @Field()
  encrypted!: boolean;

  @Field(() => String, { nullable: true })
  @IsOptional()
  @MaxLength(200, { message: 'must be at most 200 characters' })
  @SafeText()
  placeholder?: string | null;

  @Field(() => String, { nullable: true })
  @IsOptional()
  @MaxLength(1000, { message: 'must be at most 1000 characters' })
  @SafeText()
  helpText?: string | null;

  @Field(() => CcxtCredential, {
    nullable: true,
    description:
      'Left out: from the key (api_key, api_secret or secret, passphrase or password, uid, private_key, wallet_address).',
  })
  ccxtCredential?: CcxtCredential | null;
}

@InputType()
export class LeverageRangeInput {
  @Field(() => Int)
  @IsInt()
  @Min(1, { message: 'must be greater than 0' })
  @Max(MAX_LEVERAGE, { message: `must be at most ${MAX_LEVERAGE}` })
  min!: number;

  @Field(() => Int)
  @IsInt()
  @Max(MAX_LEVERAGE, { message: `must be at most ${MAX_LEVERAGE}` })
  @Validate(NotBelowMin)
  max!: number;
}

@InputType()
export class WalletFeaturesInput {
  @Field()
  spot!: boolean;

  @Field()
  futures!: boolean;

  @Field()
  perpetuals!: boolean;

  @Field(() => LeverageRangeInput)
  @ValidateNested()
  leverage!: LeverageRangeInput;

  @Field(() => [String])
  @ArrayMaxSize(MAX_SUPPORTED_ASSETS, {
    message: `must have at most ${MAX_SUPPORTED_ASSETS} entries`,
  })
  @Matches(ASSET, {
    each: true,
    message: 'each entry must be an upper-case asset symbol such as BTC',
  })
  @ArrayUnique({ message: 'must not repeat an asset' })
  supportedAssets!: string[];
}

@InputType()
export class ApiConfigInput {
  @Field()
  @MaxLength(2000, { message: 'must be at most 2000 characters' })
  @IsUrl(HTTP_URL, { message: 'must be an http(s) URL' })
  @SafeText()
  baseUrl!: string;

  @Field(() => String, { nullable: true })
  @IsOptional()
  @MaxLength(2000, { message: 'must be at most 2000 characters' })
  @IsUrl(HTTP_URL, { message: 'must be an http(s) URL' })
  @SafeText()
  testnetUrl?: string | null;

  @Field(() => String, { nullable: true })
  @IsOptional()
  @MaxLength(2000, { message: 'must be at most 2000 characters' })
  @IsUrl(WS_URL, { message: 'must be a ws(s) URL' })
  @SafeText()
  websocketUrl?: string | null;

  @Field(() => Int)
  @IsInt()
  @Min(1, { message: 'must be greater than 0' })
  rateLimit!: number;
}

/** Fields that create and update share; update makes every one optional. */
@InputType()
export class CreateWalletDefinitionInput {
  @Field()
  @Name()
  name!: string;

  @Field()
  @Matches(SLUG_PATTERN, {
    message: 'must be 2 to 40 lower-case letters, digits or dashes, not starting with a dash',
  })
  slug!: string;

  @Field(() => WalletType)
  type!: WalletType;

  @Field(() => String, {
    nullable: true,
    description: 'Left out: the slug, when ccxt has an exchange of that id.',
  })
  @IsOptional()
  @Matches(CCXT_ID, { message: CCXT_ID_MESSAGE })
  ccxtId?: string | null;

  @Field(() => String, { nullable: true })
  @IsOptional()
  @MaxLength(2000, { message: 'must be at most 2000 characters' })
  @SafeText()
  description?: string | null;

  @Field(() => String, { nullable: true })
  @IsOptional()
  @MaxLength(2000, { message: 'must be at most 2000 characters' })
  @IsUrl(HTTP_URL, { message: 'must be an http(s) URL' })
  @SafeText()
  logo?: string | null;

  @Field(() => [AuthFieldInput])
  @ArrayMinSize(1, { message: 'must have at least one auth field' })
  @ArrayMaxSize(MAX_AUTH_FIELDS, { message: `must have at most ${MAX_AUTH_FIELDS} auth fields` })
  @ArrayUnique((f: AuthFieldInput) => f.key, { message: 'keys must be unique' })
  @ValidateNested({ each: true })
  authFields!: AuthFieldInput[];

  @Field(() => WalletFeaturesInput)
  @ValidateNested()
  features!: WalletFeaturesInput;

  @Field(() => ApiConfigInput)
  @ValidateNested()
  apiConfig!: ApiConfigInput;

  @Field(() => Boolean, { nullable: true })
  isActive?: boolean | null;

  @Field(() => Int, { nullable: true, description: 'Left out: after the last definition.' })
  @IsOptional()
  @IsInt()
  @Min(-1_000_000, { message: 'must be at least -1000000' })
  @Max(1_000_000, { message: 'must be at most 1000000' })
  order?: number | null;
}

@InputType()
export class UpdateWalletDefinitionInput {
  @Field(() => String, { nullable: true })
  @IsOptional()
  @Name()
  name?: string | null;

  @Field(() => WalletType, { nullable: true })
  type?: WalletType | null;

  @Field(() => String, {
    nullable: true,
    description: 'null: no ccxt exchange (no connection test).',
  })
  @IsOptional()
  @Matches(CCXT_ID, { message: CCXT_ID_MESSAGE })
  ccxtId?: string | null;

  @Field(() => String, { nullable: true })
  @IsOptional()
  @MaxLength(2000, { message: 'must be at most 2000 characters' })
  @SafeText()
  description?: string | null;

  @Field(() => String, { nullable: true })
  @IsOptional()
  @MaxLength(2000, { message: 'must be at most 2000 characters' })
  @IsUrl(HTTP_URL, { message: 'must be an http(s) URL' })
  @SafeText()
  logo?: string | null;

  @Field(() => [AuthFieldInput], { nullable: true })
  @IsOptional()
  @ArrayMinSize(1, { message: 'must have at least one auth field' })
  @ArrayMaxSize(MAX_AUTH_FIELDS, { message: `must have at most ${MAX_AUTH_FIELDS} auth fields` })
  @ArrayUnique((f: AuthFieldInput) => f.key, { message: 'keys must be unique' })
  @ValidateNested({ each: true })
  authFields?: AuthFieldInput[] | null;

  @Field(() => WalletFeaturesInput, { nullable: true })
  @IsOptional()
  @ValidateNested()
  features?: WalletFeaturesInput | null;

  @Field(() => ApiConfigInput, { nullable: true })
  @IsOptional()
  @ValidateNested()
  apiConfig?: ApiConfigInput | null;

  @Field(() => Boolean, { nullable: true })
  isActive?: boolean | null;

  @Field(() => Int, { nullable: true })
  @IsOptional()
  @IsInt()
  @Min(-1_000_000, { message: 'must be at least -1000000' })
  @Max(1_000_000, { message: 'must be at most 1000000' })
  order?: number | null;
}

@InputType()
export class WalletDefinitionFilter {
  @Field(() => WalletType, { nullable: true })
  type?: WalletType | null;

  @Field(() => Boolean, { nullable: true, description: 'Left out: active definitions only.' })
  isActive?: boolean | null;
}
