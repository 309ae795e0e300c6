import { Arg, Args, Authorized, Ctx, Mutation, Query, Resolver, UseMiddleware } from 'type-graphql';
import type { Types } from 'mongoose';
import { Deadline } from '../../shared/deadline';
import type { CallerContext, RequestContext, UserContext } from '../../core/context';
import { ObjectIdScalar, toObjectId } from '../../shared/scalars';
import { AgentTokenRecord } from './agent-token.model';
import { ChangePasswordArgs, IssueAgentTokenArgs, LoginArgs, RegisterInput } from './auth.inputs';
import type { AuthService } from './auth.service';
import { AgentToken, AuthPayload } from './auth.types';
import { CallerCtx, UserCtx } from './ctx-decorators';
import { AgentScope, Role } from './roles';
import { User } from './user.model';

@UseMiddleware(Deadline)
@Resolver()
export class AuthResolver {
  constructor(private readonly auth: AuthService) {}

  @Authorized()
  @Query(() => User, { description: 'Any signed-in role.' })
  me(@CallerCtx() ctx: CallerContext): Promise<User> {
    return this.auth.me(ctx);
  }

  @Mutation(() => AuthPayload)
  register(
    @Arg('input', () => RegisterInput) input: RegisterInput,
    @Ctx() ctx: RequestContext,
  ): Promise<AuthPayload> {
    return this.auth.register(ctx, input);
  }

  @Mutation(() => AuthPayload)
  login(
    @Args(() => LoginArgs) { email, password }: LoginArgs,
    @Ctx() ctx: RequestContext,
  ): Promise<AuthPayload> {
    return this.auth.login(ctx, email, password);
  }

  @Authorized(Role.USER)
  @Mutation(() => AuthPayload, {
    description:
      'Any user: a new password; every token issued before it stops working. UNAUTHENTICATED for a wrong currentPassword.',
  })
  changePassword(
    @Args(() => ChangePasswordArgs) { currentPassword, newPassword }: ChangePasswordArgs,
    @UserCtx() ctx: UserContext,
  ): Promise<AuthPayload> {
    return this.auth.changePassword(ctx, currentPassword, newPassword);
  }

  @Authorized(Role.USER)
  @Mutation(() => AgentToken, {
    description:
      'USER/ADMIN: a token with role AGENT for an AI agent service. An admin issues either scope; a user issues GRANTED_WALLETS tokens only, personal agents only that user can grant (FORBIDDEN for ALL_WALLETS), at most MAX_AGENTS_PER_USER of them unrevoked and unexpired (BAD_USER_INPUT past it).',
  })
  issueAgentToken(
    @Args(() => IssueAgentTokenArgs) args: IssueAgentTokenArgs,
    @UserCtx() ctx: UserContext,
  ): Promise<AgentToken> {
    return this.auth.issueAgentToken(
      ctx,
      args.name,
      args.expiresInDays,
      args.scope ?? AgentScope.ALL_WALLETS,
    );
  }

  @Authorized(Role.USER)
  @Query(() => [AgentTokenRecord], {
    description:
      "USER/ADMIN: the agent tokens issued, newest first (at most 500); revoked ones too when includeRevoked is true. An admin sees every token, users' own included; a user, their own.",
  })
  agentTokens(
    @UserCtx() ctx: UserContext,
    @Arg('includeRevoked', () => Boolean, { nullable: true }) includeRevoked?: boolean | null,
  ): Promise<AgentTokenRecord[]> {
    return this.auth.listAgentTokens(ctx, includeRevoked);
  }

  @Authorized(Role.USER)
  @Query(() => [AgentTokenRecord], {
    description:
      "USER/ADMIN: the agents the caller may grant: GRANTED_WALLETS tokens an admin issued, and the caller's own.",
  })
  grantableAgents(@UserCtx() ctx: UserContext): Promise<AgentTokenRecord[]> {
    return this.auth.grantableAgents(ctx);
  }

  @Authorized(Role.USER)
  @Mutation(() => AgentTokenRecord, {
    description:
      "USER/ADMIN: the token stops working everywhere within 5 s. Idempotent. An admin revokes any token; a user only their own (another's is NOT_FOUND, as an unknown id).",
  })
  revokeAgentToken(
    @Arg('id', () => ObjectIdScalar) id: string | Types.ObjectId,
    @UserCtx() ctx: UserContext,
  ): Promise<AgentTokenRecord> {
    return this.auth.revokeAgentToken(ctx, toObjectId(id));
  }
}
