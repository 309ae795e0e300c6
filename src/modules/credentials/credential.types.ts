import { Field, Int, ObjectType } from 'type-graphql';
import { ObjectIdScalar } from '../../shared/scalars';
import { AssetBalance, Credential, KeyPermissions } from './credential.model';

@ObjectType({
  description: 'What the API shows of one stored credential value: never the value itself.',
})
export class CredentialField {
  @Field()
  key!: string;

  @Field()
  label!: string;

  @Field()
  encrypted!: boolean;

  @Field()
  isSet!: boolean;

  @Field(() => String, {
    nullable: true,
    description:
      "Last 4 characters of a non-encrypted value at least 12 long, masked (for example ****9f3a; **** for a shorter one); null for encrypted fields, and for an agent's view.",
  })
  hint!: string | null;
}

@ObjectType()
export class ConnectionTestResult {
  @Field()
  ok!: boolean;

  @Field(() => Credential)
  credential!: Credential;

  @Field(() => Int, { nullable: true })
  latencyMs!: number | null;

  @Field(() => String, { nullable: true })
  error!: string | null;

  @Field(() => [String], {
    description:
      'Safety findings that do not fail the test, e.g. an API key that may withdraw funds.',
  })
  warnings!: string[];

  @Field(() => [AssetBalance], {
    description:
      "The account's non-zero balances, by asset (at most 100); empty when the test failed.",
  })
  balances!: AssetBalance[];

  @Field(() => KeyPermissions, { nullable: true })
  permissions!: KeyPermissions | null;

  @Field(() => Date)
  testedAt!: Date;
}

@ObjectType()
export class DeletePayload {
  @Field(() => ObjectIdScalar)
  id!: string;

  @Field()
  deleted!: boolean;
}
