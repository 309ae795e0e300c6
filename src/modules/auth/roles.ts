import { registerEnumType } from 'type-graphql';
import { Types } from 'mongoose';

/**
 * Stored lowercase (users.role, user_wallet_events.actor_role), shown as the contract's Role enum.
 * SYSTEM is only ever an actor in the audit trail (the service's own pauses): no account, token or
 * principal has it, so no operation can be authorised by it.
 */
export enum Role {
  USER = 'user',
  ADMIN = 'admin',
  AGENT = 'agent',
  SYSTEM = 'system',
}
registerEnumType(Role, {
  name: 'Role',
  valuesConfig: {
    SYSTEM: {
      description:
        "The service itself, in the audit trail (e.g. pausing a wallet whose key the exchange refused); never a caller's role.",
    },
  },
});

/**
 * Which wallets an agent token may act on. Stored lowercase (agent_tokens.scope), shown as the
 * contract's AgentScope.
 */
export enum AgentScope {
  ALL_WALLETS = 'all_wallets',
  GRANTED_WALLETS = 'granted_wallets',
}
registerEnumType(AgentScope, {
  name: 'AgentScope',
  description: 'Which wallets an agent token may act on.',
  valuesConfig: {
    ALL_WALLETS: {
      description:
        "Every user's wallets: the platform's own agent services. Only an admin issues these.",
    },
    GRANTED_WALLETS: {
      description: 'Only the wallets whose owners granted this agent, while the grant stands.',
    },
  },
});

/** Who is calling: a platform user (USER or ADMIN) or an AI agent service. */
export type Principal =
  | { kind: 'user'; userId: Types.ObjectId; role: Role.USER | Role.ADMIN; email: string }
  | {
      kind: 'agent';
      agentId: Types.ObjectId;
      role: Role.AGENT;
      name: string;
      issuedAt: Date;
      /** From the token's record, never from the token itself. */
      scope: AgentScope;
    };

export type AgentPrincipal = Extract<Principal, { kind: 'agent' }>;

export type UserPrincipal = Extract<Principal, { kind: 'user' }>;

/**
 * Whose token a request is, as the per-token request budget and the connection limit count it
 * (HTTP and WebSocket alike): user:<id>, agent:<id>.
 */
export function principalKey(principal: Principal): string {
  return principal.kind === 'user'
    ? `user:${principal.userId.toHexString()}`
    : `agent:${principal.agentId.toHexString()}`;
}

/** The service acting by itself (its background connection tests), as the audit trail names it. */
export interface SystemActor {
  kind: 'system';
  role: Role.SYSTEM;
  name: 'wallet-service';
  /** user_wallet_events.actor_id: the service has no account, so a fixed id no account can have. */
  id: Types.ObjectId;
}

export const SYSTEM_ACTOR: SystemActor = Object.freeze({
  kind: 'system',
  role: Role.SYSTEM,
  name: 'wallet-service',
  id: new Types.ObjectId('000000000000000000000000'),
});

/** Whoever makes a change: a caller, or the service itself. */
export type Actor = Principal | SystemActor;

/**
 * How logs and the audit trail name who acted: a user by id, an agent by its token's name, the
 * service as wallet-service.
 */
export function actorName(actor: Actor): string {
  return actor.kind === 'user' ? actor.userId.toHexString() : actor.name;
}
