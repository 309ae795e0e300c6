import {
  Arg,
  Authorized,
  Ctx,
  FieldResolver,
  Int,
  Mutation,
  Query,
  Resolver,
  Root,
  UseMiddleware,
} from 'type-graphql';
import { Role } from '../auth/roles';
import { Deadline } from '../../shared/deadline';
import type { RequestContext, UserContext } from '../../core/context';
import { ObjectIdScalar, toObjectId } from '../../shared/scalars';
import { UserCtx } from '../auth/ctx-decorators';
import { WalletDefinition } from '../catalog/wallet-definition.model';
import { referencedDefinition } from '../catalog/wallet-definition.loader';
import { UserInputError } from '../../core/errors';
import { CredentialBalance } from './credential-balance.model';
import { DEFAULT_BALANCE_HISTORY, MAX_BALANCE_HISTORY } from './credential.loader';
import { describeFields } from './credential-values';
import {
  CreateCredentialInput,
  CredentialFilter,
  PaperBalanceInput,
  UpdateCredentialInput,
} from './credential.inputs';
import { ConnectionState, Credential, Environment } from './credential.model';
import type { CredentialService } from './credential.service';
import { ConnectionTestResult, CredentialField, DeletePayload } from './credential.types';

@UseMiddleware(Deadline)
@Resolver(() => Credential)
export class CredentialResolver {
  constructor(private readonly service: CredentialService) {}

  @Query(() => [String], {
    description:
      'Public: the addresses this service calls exchanges from (EGRESS_IPS), for users to whitelist on their keys; empty when not configured.',
  })
  egressAddresses(@Ctx() ctx: RequestContext): readonly string[] {
    return this.service.egressAddresses(ctx);
  }

  @Authorized(Role.USER)
  @Query(() => [Credential], { description: "USER/ADMIN: the caller's own credentials." })
  credentials(
    @UserCtx() ctx: UserContext,
    @Arg('filter', () => CredentialFilter, { nullable: true }) filter?: CredentialFilter | null,
  ): Promise<Credential[]> {
    // The contract's walletId is the catalog entry's id.
    return this.service.list(ctx, {
      definitionId: filter?.walletId ? toObjectId(filter.walletId) : null,
      isActive: filter?.isActive,
    });
  }

  @Authorized(Role.USER)
  @Query(() => Credential, { description: "USER/ADMIN: FORBIDDEN for another user's credential." })
  credential(
    @Arg('id', () => ObjectIdScalar) id: string,
    @UserCtx() ctx: UserContext,
  ): Promise<Credential> {
    return this.service.get(ctx, id);
  }

  @Authorized(Role.USER)
  @Mutation(() => Credential, { description: 'USER/ADMIN.' })
  createCredential(
    @Arg('input', () => CreateCredentialInput) { walletId, ...input }: CreateCredentialInput,
    @UserCtx() ctx: UserContext,
  ): Promise<Credential> {
    return this.service.create(ctx, { ...input, definitionId: toObjectId(walletId) });
  }

  @Authorized(Role.USER)
  @Mutation(() => Credential)
  updateCredential(
    @Arg('id', () => ObjectIdScalar) id: string,
    @Arg('input', () => UpdateCredentialInput) input: UpdateCredentialInput,
    @UserCtx() ctx: UserContext,
  ): Promise<Credential> {
    return this.service.update(ctx, id, input);
  }

  @Authorized(Role.USER)
  @Mutation(() => DeletePayload, { description: 'CONFLICT while a user wallet still uses it.' })
  deleteCredential(
    @Arg('id', () => ObjectIdScalar) id: string,
    @UserCtx() ctx: UserContext,
  ): Promise<DeletePayload> {
    return this.service.delete(ctx, id);
  }

  @Authorized(Role.USER)
  @Mutation(() => Credential, {
    description:
      'Owner, PAPER credential only: set its virtual balances again; recorded in its balance history.',
  })
  resetPaperBalances(
    @Arg('credentialId', () => ObjectIdScalar) credentialId: string,
    @Arg('balances', () => [PaperBalanceInput]) balances: PaperBalanceInput[],
    @UserCtx() ctx: UserContext,
  ): Promise<Credential> {
    return this.service.resetPaperBalances(ctx, credentialId, balances);
  }

  @Authorized(Role.USER)
  @Mutation(() => ConnectionTestResult, {
    description: 'Calls the exchange with the stored credential and records the outcome on it.',
  })
  testCredentialConnection(
    @Arg('id', () => ObjectIdScalar) id: string,
    @UserCtx() ctx: UserContext,
  ): Promise<ConnectionTestResult> {
    return this.service.testConnection(ctx, id);
  }

  @FieldResolver(() => WalletDefinition)
  definition(
    @Root() credential: Credential,
    @Ctx() ctx: RequestContext,
  ): Promise<WalletDefinition> {
    return referencedDefinition(
      ctx.loaders,
      credential.wallet_id,
      `credential ${credential._id.toHexString()}`,
    );
  }

  @FieldResolver(() => Boolean, {
    description: 'True for a PAPER credential: nothing it shows is real money.',
  })
  isPaper(@Root() credential: Credential): boolean {
    return credential.environment === Environment.PAPER;
  }

  @FieldResolver(() => ConnectionState)
  connectionState(@Root() credential: Credential): ConnectionState {
    return credential.connection_state;
  }

  @FieldResolver(() => [CredentialBalance], {
    description:
      'Balances from passing tests, newest first (default 30, at most 500), kept BALANCE_HISTORY_DAYS.',
  })
  balanceHistory(
    @Root() credential: Credential,
    @Ctx() ctx: RequestContext,
    @Arg('first', () => Int, { nullable: true }) first?: number | null,
  ): Promise<CredentialBalance[]> {
    const count = first ?? DEFAULT_BALANCE_HISTORY;
    if (!Number.isInteger(count) || count < 1 || count > MAX_BALANCE_HISTORY)
      throw new UserInputError(`must be 1 to ${MAX_BALANCE_HISTORY}`, 'first');
    return ctx.loaders.balanceHistoryOf(count).load(credential._id);
  }

  @FieldResolver(() => [CredentialField])
  async fields(
    @Root() credential: Credential,
    @Ctx() ctx: RequestContext,
  ): Promise<CredentialField[]> {
    return describeFields(ctx, await this.definition(credential, ctx), credential.credentials);
  }
}
