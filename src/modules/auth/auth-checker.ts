import type { AuthChecker } from 'type-graphql';
import type { RequestContext } from '../../core/context';
import { ForbiddenError, UnauthenticatedError } from '../../core/errors';
import { Role } from './roles';

/**
 * The contract's roles. `@Authorized()` alone: any signed-in role. ADMIN may do everything USER
 * may (on its own resources; ownership is the services' business). AGENT is only ever AGENT.
 * On an operation, no token is UNAUTHENTICATED; on a field of a returned object (apiConfig),
 * anyone without the role is FORBIDDEN, as the contract says.
 */
export const authChecker: AuthChecker<RequestContext, Role> = ({ context, info }, roles) => {
  const principal = context.actor;
  const isOperation = ['Query', 'Mutation', 'Subscription'].includes(info.parentType.name);
  if (!principal) {
    if (isOperation) throw new UnauthenticatedError();
    throw new ForbiddenError(
      `${info.parentType.name}.${info.fieldName} is for ${roles.map((r) => r.toUpperCase()).join(' or ')} only`,
    );
  }
  if (roles.length === 0 || roles.includes(principal.role)) return true;
  if (principal.role === Role.ADMIN && roles.includes(Role.USER)) return true;
  const what = isOperation ? info.fieldName : `${info.parentType.name}.${info.fieldName}`;
  throw new ForbiddenError(`${what} is for ${roles.map((r) => r.toUpperCase()).join(' or ')} only`);
};
