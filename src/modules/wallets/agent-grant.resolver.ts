import type { Types } from 'mongoose';
import {
  Arg,
  Authorized,
  Ctx,
  FieldResolver,
  Mutation,
  Query,
  Resolver,
  Root,
  UseMiddleware,
} from 'type-graphql';
import type { AgentContext, RequestContext, UserContext } from '../../core/context';
import { Deadline } from '../../shared/deadline';
import { ObjectIdScalar } from '../../shared/scalars';
import { AgentCtx, UserCtx } from '../auth/ctx-decorators';
import { Role } from '../auth/roles';
import { AgentGrant, type AgentGrantService } from './agent-grants';
import { AgentPermission, UserWallet } from './user-wallet.model';

@UseMiddleware(Deadline)
@Resolver(() => UserWallet)
export class AgentGrantResolver {
  constructor(private readonly grants: AgentGrantService) {}

  @Authorized(Role.USER)
  @Mutation(() => AgentGrant, {
    description:
      'USER/ADMIN, own wallet: let an agent act on it. Granting again replaces permissions and expiry.',
  })
  grantAgent(
    @Arg('walletId', () => ObjectIdScalar) walletId: Types.ObjectId | string,
    @Arg('agentId', () => ObjectIdScalar) agentId: Types.ObjectId | string,
    @Arg('permissions', () => [AgentPermission]) permissions: AgentPermission[],
    @UserCtx() ctx: UserContext,
    @Arg('expiresAt', () => Date, { nullable: true }) expiresAt?: Date | null,
  ): Promise<AgentGrant> {
    return this.grants.grant(ctx, walletId, agentId, permissions, expiresAt);
  }

  @Authorized(Role.USER)
  @Mutation(() => AgentGrant, {
    description:
      'USER/ADMIN, own wallet: the agent stops acting on it everywhere within 5 s. Idempotent.',
  })
  revokeAgentGrant(
    @Arg('walletId', () => ObjectIdScalar) walletId: Types.ObjectId | string,
    @Arg('agentId', () => ObjectIdScalar) agentId: Types.ObjectId | string,
    @UserCtx() ctx: UserContext,
  ): Promise<AgentGrant> {
    return this.grants.revoke(ctx, walletId, agentId);
  }

  @Authorized(Role.AGENT)
  @Query(() => [AgentGrant], {
    description: 'AGENT: the grants this agent holds now; empty for an ALL_WALLETS agent.',
  })
  myGrants(@AgentCtx() ctx: AgentContext): Promise<AgentGrant[]> {
    return this.grants.held(ctx);
  }

  @FieldResolver(() => [AgentGrant], {
    description:
      'The grants in force on this wallet, newest first: all of them for the owner, its own for an agent.',
  })
  agentGrants(@Root() wallet: UserWallet, @Ctx() ctx: RequestContext): Promise<AgentGrant[]> {
    // Only the owner and agents reach a wallet; anyone else is shown nothing.
    if (!ctx.actor) return Promise.resolve([]);
    return this.grants.shownOn(ctx as UserContext | AgentContext, wallet);
  }
}
