import { Arg, Args, Authorized, Ctx, Mutation, Query, Resolver, UseMiddleware } from 'type-graphql';
import { Deadline } from '../shared/deadline';
import type { Context } from '../context';
import { IssueAgentTokenArgs, LoginArgs, RegisterInput } from './auth.inputs';
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
  me(@Ctx() ctx: Context): Promise<User> {
    return this.auth.me(ctx.principal!);
  }

  @Mutation(() => AuthPayload)
  register(@Arg('input', () => RegisterInput) input: RegisterInput, @Ctx() ctx: Context): Promise<AuthPayload> {
    return this.auth.register(input, ctx.clientAddress);
  }

  @Mutation(() => AuthPayload)
  login(@Args(() => LoginArgs) { email, password }: LoginArgs, @Ctx() ctx: Context): Promise<AuthPayload> {
    return this.auth.login(email, password, ctx.clientAddress);
  }

  @Authorized(Role.ADMIN)
  @Mutation(() => AgentToken, { description: 'ADMIN: a token with role AGENT for an AI agent service.' })
  issueAgentToken(@Args(() => IssueAgentTokenArgs) args: IssueAgentTokenArgs, @Ctx() ctx: Context): AgentToken {
    return this.auth.issueAgentToken(ctx.principal!, args.name, args.expiresInDays);
  }
}
