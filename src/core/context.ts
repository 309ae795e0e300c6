import type { Actor, Principal, SystemActor, UserPrincipal } from '../modules/auth/roles';
import { SYSTEM_ACTOR } from '../modules/auth/roles';
import { backgroundComment } from '../shared/background';
import { createLoaders, type Loaders } from './loaders';
import type { Logger } from './logger';

/**
 * What every service method takes first (Vendure's RequestContext): who acts, a logger that names
 * the request, the request's loaders, its deadline and the comment its database commands carry.
 * Built once per request (app/request-context.ts) or per subscription (live/ws-server.ts); the
 * service's own work runs on systemCtx().
 */
export interface RequestContext<A extends Actor | null = Principal | null> {
  requestId: string;
  /**
   * The client's address: the peer's, or behind proxies we trust the one they saw (never an entry
   * the client wrote; see shared/client-address.ts). The service's own work has none ('').
   */
  clientAddress: string;
  /** Who acts: a signed-in user or agent, the service itself, or null for no token. */
  actor: A;
  /** A child of the root logger with this request's id (or the background job's name). */
  logger: Logger;
  /** Fresh per request, so no cache outlives it. */
  loaders: Loaders;
  /** When this request's execution time is up (ms since the epoch); see shared/deadline.ts. */
  deadline: number;
  /**
   * How many more list items this request's answer may hold (see shared/answer-budget.ts): the
   * cost limit's, as an answer holds at most that many values.
   */
  itemsLeft: number;
  /**
   * The `comment` of every database command sent for this context: the service's own work names
   * itself (shared/background.ts), so a count of a request's commands can leave it out; requests
   * send none.
   */
  comment: string | undefined;
  /** On a subscription (over WebSocket): the connection it runs on; see LiveChannel. */
  live?: LiveChannel;
}

/**
 * What modules/live/ws-server.ts gives a subscription's resolvers. The live module adds its service
 * here itself (a module augmentation in live-events.service.ts), so the core imports nothing of it.
 */
export interface LiveChannel {
  connection: LiveConnection;
  /**
   * Subscriptions with the same key answer alike and share each event's execution (see
   * live/shared-execution.ts).
   */
  shareKey: string;
}

/** What a subscription knows of the connection it runs on. */
export interface LiveConnection {
  /** Events that may wait for this connection's consumer before it counts as too slow. */
  maxWaiting: number;
  /** Closes the connection, saying why. */
  close(code: number, reason: string): void;
}

/** A request by a signed-in caller (user, admin or agent). */
export type CallerContext = RequestContext<Principal>;
/** A request by a user or an admin: what `@UserCtx()` hands a resolver. */
export type UserContext = RequestContext<UserPrincipal>;
/** A request by an AI agent service: what `@AgentCtx()` hands a resolver. */
export type AgentContext = RequestContext<Extract<Principal, { kind: 'agent' }>>;
/** The service acting by itself: systemCtx(). */
export type SystemContext = RequestContext<SystemActor>;
/** Anyone who may change a wallet: a caller, or the service itself. */
export type ActorContext = RequestContext<Actor>;

/**
 * The context of work the service does by itself (re-tests, sweeps, migrations): the service as
 * actor, a logger naming the job, no deadline, and the background comment on its commands.
 */
export function systemCtx(logger: Logger, job: string): SystemContext {
  return {
    requestId: job,
    clientAddress: '',
    actor: SYSTEM_ACTOR,
    logger: logger.child({ job }),
    loaders: createLoaders(),
    deadline: Number.MAX_SAFE_INTEGER,
    itemsLeft: Number.MAX_SAFE_INTEGER,
    comment: backgroundComment(job),
  };
}

/** The options every database command of a context carries (never `comment: undefined`). */
export function dbOptions(ctx: Pick<RequestContext, 'comment'>): { comment?: string } {
  return ctx.comment === undefined ? {} : { comment: ctx.comment };
}
