import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { principalKey, type Principal } from '../modules/auth/roles';
import type { AuthService } from '../modules/auth/auth.service';
import { logSecurityEvent } from '../modules/auth/security-log';
import { RateLimitedError, UnauthenticatedError } from '../core/errors';
import type { Logger } from '../core/logger';
import { createLoaders } from '../core/loaders';
import type { RequestContext } from '../core/context';
import type { TokenBudget } from '../shared/token-budget';
import { clientAddressFrom, type TrustProxy } from '../shared/client-address';

/** A request's id: the caller's X-Request-Id when it is a sane one, else a fresh one. */
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
): Promise<RequestContext<Principal | null>> {
  const deadline = Date.now() + settings.requestTimeoutMs;
  const child = logger.child({ requestId });
  const clientAddress = clientAddressOf(req, settings.trustProxy);
  let principal: Principal | null = null;
  try {
    principal = await auth.authenticate(req.headers.authorization);
    if (principal) budget.take(principalKey(principal));
  } catch (error) {
    if (error instanceof UnauthenticatedError)
      logSecurityEvent({ logger: child, clientAddress, actor: principal }, 'token refused', {
        reason: error.message,
      });
    if (error instanceof RateLimitedError)
      logSecurityEvent({ logger: child, clientAddress, actor: principal }, 'rate limited', {
        message: error.message,
      });
    throw error;
  }
  return {
    requestId,
    clientAddress,
    actor: principal,
    logger: child,
    loaders: createLoaders(),
    deadline,
    itemsLeft: settings.maxRequestCost,
    comment: undefined,
  };
}
