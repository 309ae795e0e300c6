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
import { Role } from './roles';
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

  @Authorized(Role.ADMIN)
  @Mutation(() => AgentToken, {
    description: 'ADMIN: a token with role AGENT for an AI agent service.',
  })
  issueAgentToken(
    @Args(() => IssueAgentTokenArgs) args: IssueAgentTokenArgs,
    @UserCtx() ctx: UserContext,
  ): Promise<AgentToken> {
    return this.auth.issueAgentToken(ctx, args.name, args.expiresInDays);
  }

  @Authorized(Role.ADMIN)
  @Query(() => [AgentTokenRecord], {
    description:
      'ADMIN: the agent tokens issued, newest first; revoked ones too when includeRevoked is true.',
  })
  agentTokens(
    @UserCtx() ctx: UserContext,
    @Arg('includeRevoked', () => Boolean, { nullable: true }) includeRevoked?: boolean | null,
  ): Promise<AgentTokenRecord[]> {
    return this.auth.listAgentTokens(ctx, includeRevoked);
  }

  @Authorized(Role.ADMIN)
  @Mutation(() => AgentTokenRecord, {
    description: 'ADMIN: the token stops working everywhere within 5 s. Idempotent.',
  })
  revokeAgentToken(
    @Arg('id', () => ObjectIdScalar) id: string | Types.ObjectId,
    @UserCtx() ctx: UserContext,
  ): Promise<AgentTokenRecord> {
    return this.auth.revokeAgentToken(ctx, toObjectId(id));
  }
}
