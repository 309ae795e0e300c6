import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Principal } from './auth/roles';
import type { AuthService } from './auth/auth.service';
import type { Logger } from './logger';
import { createCredentialLoader } from './modules/credentials/credential.loader';
import { createEventsLoader } from './modules/user-wallets/user-wallet-events';
import { createDefinitionLoader } from './modules/wallet-definitions/wallet-definition.loader';

/** Fresh per request, so no cache outlives it. */
export function createLoaders() {
  const eventsByFirst = new Map<number, ReturnType<typeof createEventsLoader>>();
  return {
    definitionById: createDefinitionLoader(),
    credentialById: createCredentialLoader(),
    /** One loader per page size asked for in this request. */
    eventsOf(first: number) {
      let loader = eventsByFirst.get(first);
      if (!loader) eventsByFirst.set(first, (loader = createEventsLoader(first)));
      return loader;
    },
  };
}
export type Loaders = ReturnType<typeof createLoaders>;

/** Built once per request: the verified principal, a request id and a child logger. */
export interface Context {
  requestId: string;
  principal: Principal | null;
  logger: Logger;
  loaders: Loaders;
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
  return { requestId, principal, logger: child, loaders: createLoaders() };
}
