import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { principalKey, type Principal } from '../modules/auth/roles';
import type { AuthService } from '../modules/auth/auth.service';
import { logSecurityEvent } from '../modules/auth/security-log';
import { RateLimitedError, UnauthenticatedError } from './errors';
import type { Logger } from './logger';
import type { LiveConnection, LiveEventsService } from '../modules/live/live-events.service';
import type { TokenBudget } from '../shared/token-budget';
import { clientAddressFrom, type TrustProxy } from '../shared/client-address';
import {
  createBalanceHistoryLoader,
  createCredentialLoader,
} from '../modules/credentials/credential.loader';
import {
  createTrailLoader,
  trailQueryKey,
  type TrailQuery,
} from '../modules/wallets/user-wallet-events';
import { createDefinitionLoader } from '../modules/catalog/wallet-definition.loader';

/** Fresh per request, so no cache outlives it. */
export function createLoaders() {
  const trails = new Map<string, ReturnType<typeof createTrailLoader>>();
  const balancesByFirst = new Map<number, ReturnType<typeof createBalanceHistoryLoader>>();
  return {
    definitionById: createDefinitionLoader(),
    credentialById: createCredentialLoader(),
    /** One loader per part of the trails asked for in this request (page size, kinds, cursor). */
    trailOf(query: TrailQuery) {
      const key = trailQueryKey(query);
      let loader = trails.get(key);
      if (!loader) trails.set(key, (loader = createTrailLoader(query)));
      return loader;
    },
    /** Likewise for Credential.balanceHistory. */
    balanceHistoryOf(first: number) {
      let loader = balancesByFirst.get(first);
      if (!loader) balancesByFirst.set(first, (loader = createBalanceHistoryLoader(first)));
      return loader;
    },
  };
}
export type Loaders = ReturnType<typeof createLoaders>;

/** Built once per request: the verified principal, a request id and a child logger. */
export interface Context {
  requestId: string;
  /**
   * The client's address: the peer's, or behind proxies we trust the one they saw (never an entry
   * the client wrote; see shared/client-address.ts).
   */
  clientAddress: string;
  principal: Principal | null;
  logger: Logger;
  loaders: Loaders;
  /** When this request's execution time is up (ms since the epoch); see shared/deadline.ts. */
  deadline: number;
  /**
   * How many more list items this request's answer may hold (see shared/answer-budget.ts): the
   * cost limit's, as an answer holds at most that many values.
   */
  itemsLeft: number;
  /** On a subscription (over WebSocket): the live events and the connection they go to. */
  live?: {
    service: LiveEventsService;
    connection: LiveConnection;
    /**
     * Subscriptions with the same key answer alike and share each event's execution (see
     * shared-execution.ts).
     */
    shareKey: string;
  };
}

const REQUEST_ID = /^[A-Za-z0-9._-]{1,64}$/;

export function requestIdOf(req: IncomingMessage): string {
  const given = req.headers['x-request-id'];
  return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
}

export function clientAddressOf(req: IncomingMessage, trustProxy: TrustProxy): string {
  return clientAddressFrom(req.socket.remoteAddress, req.headers['x-forwarded-for'], trustProxy);
}

export async function buildContext(
  req: IncomingMessage,
  requestId: string,
  auth: AuthService,
  budget: TokenBudget,
  settings: { trustProxy: TrustProxy; requestTimeoutMs: number; maxRequestCost: number },
  logger: Logger,
): Promise<Context> {
  const deadline = Date.now() + settings.requestTimeoutMs;
  const child = logger.child({ requestId });
  const clientAddress = clientAddressOf(req, settings.trustProxy);
  let principal: Principal | null = null;
  try {
    principal = await auth.authenticate(req.headers.authorization);
    if (principal) budget.take(principalKey(principal));
  } catch (error) {
    if (error instanceof UnauthenticatedError)
      logSecurityEvent({ logger: child, clientAddress, principal }, 'token refused', {
        reason: error.message,
      });
    if (error instanceof RateLimitedError)
      logSecurityEvent({ logger: child, clientAddress, principal }, 'rate limited', {
        message: error.message,
      });
    throw error;
  }
  return {
    requestId,
    clientAddress,
    principal,
    logger: child,
    loaders: createLoaders(),
    deadline,
    itemsLeft: settings.maxRequestCost,
  };
}
