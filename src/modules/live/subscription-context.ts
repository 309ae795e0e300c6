import { randomUUID } from 'node:crypto';
import type { LiveChannel, RequestContext } from '../../core/context';
import { createLoaders, type Loaders } from '../../core/loaders';
import type { Logger } from '../../core/logger';
import type { Principal } from '../auth/roles';

/**
 * A subscription's context. It lasts as long as the subscription, which mostly waits, and there
 * may be tens of thousands: what only a resolver or an error asks for (the child logger that names
 * the subscription, the DataLoaders) is made the first time it is asked for, once, and most
 * subscriptions never ask (an event's fields are the event's own).
 */
export function subscriptionContext(
  fields: { clientAddress: string; actor: Principal; live: LiveChannel },
  logger: Logger,
  makeLoaders: () => Loaders = createLoaders,
): RequestContext {
  const requestId = randomUUID();
  let child: Logger | undefined;
  let loaders: Loaders | undefined;
  return {
    requestId,
    clientAddress: fields.clientAddress,
    actor: fields.actor,
    comment: undefined,
    // A subscription lasts as long as its connection.
    deadline: Number.MAX_SAFE_INTEGER,
    // Each event is one object; the cost limit bounds what is selected of it.
    itemsLeft: Number.POSITIVE_INFINITY,
    live: fields.live,
    get logger() {
      return (child ??= logger.child({ requestId, transport: 'websocket' }));
    },
    get loaders() {
      return (loaders ??= makeLoaders());
    },
  };
}
