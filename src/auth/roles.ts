import { registerEnumType } from 'type-graphql';
import type { Types } from 'mongoose';
import { ForbiddenError } from '../errors';

/** Stored lowercase (users.role), shown as the contract's Role enum. */
export enum Role {
  USER = 'user',
  ADMIN = 'admin',
  AGENT = 'agent',
}
registerEnumType(Role, { name: 'Role' });

/** Who is calling: a platform user (USER or ADMIN) or an AI agent service. */
export type Principal =
  | { kind: 'user'; userId: Types.ObjectId; role: Role.USER | Role.ADMIN; email: string }
  | { kind: 'agent'; agentId: Types.ObjectId; role: Role.AGENT; name: string; issuedAt: Date };

export type UserPrincipal = Extract<Principal, { kind: 'user' }>;

/** Services that act for a user take a UserPrincipal; the auth checker has already kept agents out. */
export function requireUser(principal: Principal | null): UserPrincipal {
  if (principal?.kind !== 'user') throw new ForbiddenError('this operation is for USER or ADMIN only');
  return principal;
}

/** How logs and the audit trail name who acted: a user by id, an agent by its token's name. */
export function actorName(principal: Principal): string {
  return principal.kind === 'user' ? principal.userId.toHexString() : principal.name;
}
