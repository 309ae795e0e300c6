import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Principal } from './auth/roles';
import type { AuthService } from './auth/auth.service';
import type { Logger } from './logger';

/** Built once per request: the verified principal, a request id and a child logger. */
export interface Context {
  requestId: string;
  principal: Principal | null;
  logger: Logger;
}

const REQUEST_ID = /^[A-Za-z0-9._-]{1,64}$/;

export function requestIdOf(req: IncomingMessage): string {
  const given = req.headers['x-request-id'];
  return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
}

export async function buildContext(
  req: IncomingMessage,
  requestId: string,
  auth: AuthService,
  logger: Logger,
): Promise<Context> {
  const child = logger.child({ requestId });
  const principal = await auth.authenticate(req.headers.authorization);
  return { requestId, principal, logger: child };
}
