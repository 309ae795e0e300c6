import { getModelForClass, index, modelOptions, prop } from '@typegoose/typegoose';
import { Schema, type Types } from 'mongoose';
import { Field, ObjectType } from 'type-graphql';
import { ObjectIdScalar } from '../../shared/scalars';
import { AgentScope, Role } from './roles';

/**
 * Collection `agent_tokens`: every agent token issued, by the id it carries (`jti`, and the id in
 * its subject). The token itself is never stored: a token is honoured only while its record is
 * here, unrevoked and unexpired, and its issuer still keeps it good: an admin's while the issuer is
 * an admin, a user's own (personal) while the user's account exists (see AgentTokenRegistry).
 */
@ObjectType('AgentTokenInfo', {
  description:
    'USER/ADMIN: an agent token as the service keeps it; the token itself is never stored or shown again.',
})
@modelOptions({
  schemaOptions: {
    collection: 'agent_tokens',
    versionKey: false,
    timestamps: { createdAt: 'created_at', updatedAt: false },
  },
  options: { customName: 'AgentToken' },
})
@index({ created_at: -1 })
@index({ revoked_at: 1, expires_at: 1 })
// The registry's refresh reads what changed since its last look.
@index({ changed_at: 1 })
// A user's own tokens: their list, and the count their cap takes.
@index({ issued_by: 1, created_at: -1 })
export class AgentTokenRecord {
  @Field(() => ObjectIdScalar, { name: 'id' })
  readonly _id!: Types.ObjectId;

  @Field()
  @prop({ required: true, type: String })
  name!: string;

  @Field(() => ObjectIdScalar, {
    name: 'issuedBy',
    description: 'Who issued it: an admin, or the user whose own agent it is.',
  })
  @prop({ required: true, type: Schema.Types.ObjectId })
  issued_by!: Types.ObjectId;

  /** Fixed at issue. Records from before it: all_wallets (migration 005). */
  @Field(() => AgentScope)
  @prop({ required: true, type: String, enum: Object.values(AgentScope) })
  scope!: AgentScope;

  /**
   * The issuer's role when it issued the token, which says what keeps the token good; fixed at
   * issue, so a later promotion or demotion changes nothing for a personal token. Records from
   * before it: admin (migration 005).
   */
  @Field(() => Role, {
    name: 'issuerRole',
    description:
      "ADMIN or USER: the role of who issued it (issuedBy); a user's own agent has its owner there.",
  })
  @prop({ required: true, type: String, enum: [Role.ADMIN, Role.USER] })
  issuer_role!: Role.ADMIN | Role.USER;

  @Field(() => Date, { name: 'createdAt' })
  created_at!: Date;

  @Field(() => Date, { name: 'expiresAt' })
  @prop({ required: true, type: Date })
  expires_at!: Date;

  @Field(() => Date, {
    name: 'revokedAt',
    nullable: true,
    description:
      'Set once revoked: from then on the token is refused on every instance (within 5 s).',
  })
  @prop({ type: Date, default: null })
  revoked_at!: Date | null;

  /**
   * Set when the token is issued and when it is revoked, by the instance that does it (its clock):
   * each instance's registry reads only the records changed since its last look.
   */
  @prop({ required: true, type: Date })
  changed_at!: Date;
}

export const AgentTokenModel = getModelForClass(AgentTokenRecord);

type ScopeFields = Pick<AgentTokenRecord, 'scope' | 'issuer_role'>;

/**
 * A record as this version reads it. An instance of a version from before scopes, running beside
 * this one while it is deployed, writes records without scope and issuer_role (after migration 005
 * ran): those are all an admin's ALL_WALLETS tokens, as that version only issued.
 */
export function withScopeDefaults<T extends Partial<ScopeFields>>(
  record: T,
): Omit<T, keyof ScopeFields> & ScopeFields {
  return {
    ...record,
    scope: record.scope ?? AgentScope.ALL_WALLETS,
    issuer_role: record.issuer_role ?? Role.ADMIN,
  };
}
