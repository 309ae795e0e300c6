import { Arg, Args, Authorized, Ctx, Mutation, Query, Resolver, UseMiddleware } from 'type-graphql';
import type { Types } from 'mongoose';
import { Deadline } from '../../shared/deadline';
import type { RequestContext } from '../../core/context';
import { ObjectIdScalar, toObjectId } from '../../shared/scalars';
import { AgentTokenRecord } from './agent-token.model';
import { ChangePasswordArgs, IssueAgentTokenArgs, LoginArgs, RegisterInput } from './auth.inputs';
import type { AuthService } from './auth.service';
import { AgentToken, AuthPayload } from './auth.types';
import { Role } from './roles';
import { User } from './user.model';

@UseMiddleware(Deadline)
@Resolver()
export class AuthResolver {
  constructor(private readonly auth: AuthService) {}

  @Authorized()
  @Query(() => User, { description: 'Any signed-in role.' })
  me(@Ctx() ctx: RequestContext): Promise<User> {
    return this.auth.me(ctx.actor!);
  }

  @Mutation(() => AuthPayload)
  register(
    @Arg('input', () => RegisterInput) input: RegisterInput,
    @Ctx() ctx: RequestContext,
  ): Promise<AuthPayload> {
    return this.auth.register(input, ctx);
  }

  @Mutation(() => AuthPayload)
  login(
    @Args(() => LoginArgs) { email, password }: LoginArgs,
    @Ctx() ctx: RequestContext,
  ): Promise<AuthPayload> {
    return this.auth.login(email, password, ctx);
  }

  @Authorized(Role.USER)
  @Mutation(() => AuthPayload, {
    description:
      'Any user: a new password; every token issued before it stops working. UNAUTHENTICATED for a wrong currentPassword.',
  })
  changePassword(
    @Args(() => ChangePasswordArgs) { currentPassword, newPassword }: ChangePasswordArgs,
    @Ctx() ctx: RequestContext,
  ): Promise<AuthPayload> {
    return this.auth.changePassword(ctx, currentPassword, newPassword);
  }

  @Authorized(Role.ADMIN)
  @Mutation(() => AgentToken, {
    description: 'ADMIN: a token with role AGENT for an AI agent service.',
  })
  issueAgentToken(
    @Args(() => IssueAgentTokenArgs) args: IssueAgentTokenArgs,
    @Ctx() ctx: RequestContext,
  ): Promise<AgentToken> {
    return this.auth.issueAgentToken(ctx, args.name, args.expiresInDays);
  }

  @Authorized(Role.ADMIN)
  @Query(() => [AgentTokenRecord], {
    description:
      'ADMIN: the agent tokens issued, newest first; revoked ones too when includeRevoked is true.',
  })
  agentTokens(
    @Arg('includeRevoked', () => Boolean, { nullable: true }) includeRevoked?: boolean | null,
  ): Promise<AgentTokenRecord[]> {
    return this.auth.listAgentTokens(includeRevoked);
  }

  @Authorized(Role.ADMIN)
  @Mutation(() => AgentTokenRecord, {
    description: 'ADMIN: the token stops working everywhere within 5 s. Idempotent.',
  })
  revokeAgentToken(
    @Arg('id', () => ObjectIdScalar) id: string | Types.ObjectId,
    @Ctx() ctx: RequestContext,
  ): Promise<AgentTokenRecord> {
    return this.auth.revokeAgentToken(ctx, toObjectId(id));
  }
}
