import { createParameterDecorator, type ParameterDecorator } from 'type-graphql';
import type { AgentContext, CallerContext, RequestContext, UserContext } from '../../core/context';
import { ForbiddenError, UnauthenticatedError } from '../../core/errors';

/*
 * The request context, typed by who may call: `@Authorized(...)` has already kept everyone else out
 * (auth-checker.ts), and these say so to the compiler, so a service method states in its signature
 * whom it acts for (`list(ctx: UserContext, ...)`) and never checks the caller's kind again. The
 * check here only guards against a resolver whose role and decorator disagree.
 */

/** The context of an operation for USER (and ADMIN): the actor is a user. */
export function UserCtx(): ParameterDecorator {
  return createParameterDecorator<RequestContext>(({ context }) => userCtxOf(context));
}

/** The context of an operation for AGENT: the actor is an AI agent service. */
export function AgentCtx(): ParameterDecorator {
  return createParameterDecorator<RequestContext>(({ context }) => agentCtxOf(context));
}

/** The context of an operation for any signed-in role (`@Authorized()` alone). */
export function CallerCtx(): ParameterDecorator {
  return createParameterDecorator<RequestContext>(({ context }) => callerCtxOf(context));
}

/** As `@UserCtx()`, where no parameter decorator applies (a subscription's `subscribe`). */
export function userCtxOf(context: RequestContext): UserContext {
  if (context.actor?.kind !== 'user')
    throw new ForbiddenError('this operation is for USER or ADMIN only');
  return context as UserContext;
}

/** As `@AgentCtx()`, where no parameter decorator applies (a subscription's `subscribe`). */
export function agentCtxOf(context: RequestContext): AgentContext {
  if (context.actor?.kind !== 'agent') throw new ForbiddenError('this operation is for AGENT only');
  return context as AgentContext;
}

function callerCtxOf(context: RequestContext): CallerContext {
  if (!context.actor) throw new UnauthenticatedError();
  return context as CallerContext;
}
