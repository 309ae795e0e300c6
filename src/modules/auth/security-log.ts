import type { RequestContext } from '../../core/context';
import { actorName } from './roles';

export type SecurityEvent =
  | 'login failed'
  | 'rate limited'
  | 'forbidden'
  | 'token refused'
  | 'agent token issued'
  | 'agent token revoked'
  | 'password changed'
  | 'password change refused'
  | 'admin promoted';

/**
 * What a security event says of the request it happened in (its context, or as much of one as a
 * connection has); the logger carries the request id.
 */
export type RequestMeta = Pick<RequestContext, 'logger' | 'clientAddress' | 'actor'>;

/**
 * Security events go out at warn, with the request id (the logger's), who acted and from where;
 * never a password, a token, or what a client typed into a name or an email field (the details
 * name a digest of it where one is needed).
 */
export function logSecurityEvent(
  meta: RequestMeta,
  event: SecurityEvent,
  details: Record<string, unknown> = {},
): void {
  meta.logger.warn(
    {
      security: event,
      actor: meta.actor ? actorName(meta.actor) : 'anonymous',
      actorRole: meta.actor?.role ?? null,
      clientAddress: meta.clientAddress,
      ...details,
    },
    `security: ${event}`,
  );
}
