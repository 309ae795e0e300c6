import { Field, ObjectType } from 'type-graphql';
import { CcxtCredential } from '../../exchanges/credentials';
import { ApiConfig, AuthField, WalletFeatures, WalletType } from './wallet-definition.model';

@ObjectType({
  description:
    'A catalog entry drafted from what ccxt knows of an exchange, ready for createWalletDefinition.',
})
export class WalletDefinitionDraft {
  @Field()
  name!: string;

  @Field()
  slug!: string;

  @Field(() => WalletType)
  type!: WalletType;

  @Field(() => String, { nullable: true })
  description!: string | null;

  @Field(() => String, { nullable: true })
  logo!: string | null;

  @Field(() => String, { name: 'ccxtId' })
  ccxt_id!: string;

  @Field(() => [AuthField], { name: 'authFields' })
  auth_fields!: AuthField[];

  @Field(() => WalletFeatures)
  features!: WalletFeatures;

  @Field(() => ApiConfig, { name: 'apiConfig' })
  api_config!: ApiConfig;
}

@ObjectType()
export class ExchangeTemplate {
  @Field()
  ccxtId!: string;

  @Field()
  name!: string;

  @Field(() => [CcxtCredential])
  requiredCredentials!: CcxtCredential[];

  @Field()
  hasTestnet!: boolean;

  @Field({
    description:
      'Whether a connection test can prove a key of this exchange with a signed request.',
  })
  signedProof!: boolean;

  @Field(() => WalletDefinitionDraft)
  draft!: WalletDefinitionDraft;
}
