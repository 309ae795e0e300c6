import { Types } from 'mongoose';
import { Field, ObjectType } from 'type-graphql';
import { AgentScope, type AgentPrincipal } from '../auth/roles';
import { dbOptions, type AgentContext, type UserContext } from '../../core/context';
import { ConflictError, ForbiddenError, NotFoundError, UserInputError } from '../../core/errors';
import { ObjectIdScalar, toObjectId } from '../../shared/scalars';
import { walletEvent } from '../audit/build-events';
import { WalletEventKind, type WalletEventRecord } from '../audit/user-wallet-event.model';
import type { GrantIndex } from './grant-index';
import {
  AgentPermission,
  userChanged,
  UserWalletModel,
  type AgentGrantRecord,
  type UserWallet,
} from './user-wallet.model';
import { ownedWallet } from './user-wallet.service';
import { walletOutbox } from './wallet-outbox';

/*
 * Which wallets a GRANTED_WALLETS agent may touch: those whose owner granted it, while the grant is
 * unrevoked and unexpired (and its token honoured, which authentication already checked). An
 * ALL_WALLETS agent (the platform's own services) needs no grant.
 *
 * The grants live on the wallet (user_wallets.agent_grants) with the ids of the agents holding one
 * in flat arrays, so an agent's query carries the check as an equality on its id: no read of the
 * grants before the query, no filter after it but the expiry's. A wallet the agent may not read
 * answers NOT_FOUND in the words of an unknown id, so the answer tells nothing of other wallets.
 */

/** An unknown id's answer: a wallet the agent holds no live grant on gets the same. */
export const NO_WALLET = 'no wallet with that id';

/** The array of agents holding each permission (see UserWallet). */
const HOLDERS: Record<AgentPermission, 'grant_state_agents' | 'grant_pause_agents'> = {
  [AgentPermission.MANAGE_STATE]: 'grant_state_agents',
  [AgentPermission.PAUSE_RESUME]: 'grant_pause_agents',
};

/**
 * At most this many agents hold an unrevoked grant on one wallet (expired ones count until revoked):
 * enough for any owner, and it bounds what UserWallet.agentGrants can answer.
 */
export const MAX_GRANTS_PER_WALLET = 20;
/** myGrants answers at most this many (the first wallets by id). */
export const MAX_LISTED_GRANTS = 1_000;

/** How many times a grant or revocation is tried again when the wallet's grant moved meanwhile. */
const GRANT_ATTEMPTS = 5;

function bound(agent: AgentPrincipal): boolean {
  return agent.scope !== AgentScope.ALL_WALLETS;
}

/** The part of an agent's wallet query that keeps only wallets it may read. */
export function readableBy(agent: AgentPrincipal): Record<string, unknown> {
  return bound(agent) ? { grant_agents: agent.agentId } : {};
}

/** The part of an agent's conditional write that needs the permission still granted. */
export function permittedTo(
  agent: AgentPrincipal,
  permission: AgentPermission,
): Record<string, unknown> {
  return bound(agent) ? { [HOLDERS[permission]]: agent.agentId } : {};
}

/** Whether a stored grant is in force at `now` (its token aside). */
export function inForce(grant: AgentGrantRecord | undefined, now: number): boolean {
  return (
    grant !== undefined &&
    grant.revoked_at === null &&
    (grant.expires_at === null || grant.expires_at.getTime() > now)
  );
}

/** The agent's grant on this wallet when in force; undefined otherwise. */
function grantOf(
  agent: AgentPrincipal,
  wallet: Pick<UserWallet, 'agent_grants' | 'grant_agents'>,
  now: number,
): AgentGrantRecord | undefined {
  const grant = wallet.agent_grants?.[agent.agentId.toHexString()];
  const listed = wallet.grant_agents?.some((id) => id.equals(agent.agentId)) ?? false;
  return listed && inForce(grant, now) ? grant : undefined;
}

/** Whether the agent may read this wallet (as read: the query carried readableBy). */
export function mayRead(
  agent: AgentPrincipal,
  wallet: Pick<UserWallet, 'agent_grants' | 'grant_agents'>,
  now = Date.now(),
): boolean {
  return !bound(agent) || grantOf(agent, wallet, now) !== undefined;
}

/**
 * NOT_FOUND, as for an unknown id, unless the agent holds a grant in force on the wallet read;
 * FORBIDDEN when that grant lacks `permission`.
 */
export function assertGrant(
  agent: AgentPrincipal,
  wallet: Pick<UserWallet, 'agent_grants' | 'grant_agents'>,
  permission: AgentPermission | null,
  now = Date.now(),
): void {
  if (!bound(agent)) return;
  const grant = grantOf(agent, wallet, now);
  if (!grant) throw new NotFoundError(NO_WALLET);
  if (permission !== null && !grant.permissions.includes(permission))
    throw new ForbiddenError(
      `this agent's grant on the wallet does not include ${permission.toUpperCase()}`,
    );
}

@ObjectType({ description: "An owner's permission for one agent on one wallet." })
export class AgentGrant {
  @Field(() => ObjectIdScalar)
  id!: Types.ObjectId;

  @Field(() => ObjectIdScalar)
  walletId!: Types.ObjectId;

  @Field(() => ObjectIdScalar)
  agentId!: Types.ObjectId;

  @Field()
  agentName!: string;

  @Field(() => [AgentPermission])
  permissions!: AgentPermission[];

  @Field(() => Date)
  createdAt!: Date;

  @Field(() => Date, { nullable: true, description: 'Null: until revoked.' })
  expiresAt!: Date | null;

  @Field(() => Date, {
    nullable: true,
    description:
      'Set once revoked: from then on the agent is refused on this wallet on every instance (within 5 s).',
  })
  revokedAt!: Date | null;
}

export function shownGrant(walletId: Types.ObjectId, grant: AgentGrantRecord): AgentGrant {
  return {
    id: grant._id,
    walletId,
    agentId: grant.agent_id,
    agentName: grant.agent_name,
    permissions: grant.permissions,
    createdAt: grant.created_at,
    expiresAt: grant.expires_at,
    revokedAt: grant.revoked_at,
  };
}

/** A grant as its audit events show it, in the API's names. */
function grantInTrail(grant: AgentGrantRecord): Record<string, unknown> {
  return {
    agentId: grant.agent_id.toHexString(),
    agentName: grant.agent_name,
    permissions: grant.permissions.map((p) => p.toUpperCase()),
    expiresAt: grant.expires_at?.toISOString() ?? null,
  };
}

/** What the grants ask of the tokens (the auth module's answers, handed in by app/lifecycle.ts). */
export interface AgentDirectory {
  /** The token when `ctx`'s user may grant it (grantableAgents), else null. */
  grantableAgent(
    ctx: UserContext,
    agentId: Types.ObjectId,
  ): Promise<{ _id: Types.ObjectId; name: string } | null>;
  /** Whether the token is honoured now (unrevoked, unexpired, its issuer as its scope needs). */
  isHonoured(agentId: string): Promise<boolean>;
}

/** Owners grant and revoke; agents see what they hold. */
export class AgentGrantService {
  constructor(
    private readonly agents: AgentDirectory,
    private readonly index: GrantIndex,
  ) {}

  /**
   * The owner lets an agent act on the wallet; granting again replaces the permissions and the
   * expiry (a grant in force keeps its id and createdAt; after a revocation it is a new one). The
   * grant and its AGENT_GRANTED event are one update, which leaves the version (agents' expected
   * versions stay good) and sets userChangedAt (the agent's change feed shows it the wallet).
   */
  async grant(
    ctx: UserContext,
    walletId: string | Types.ObjectId,
    agentId: string | Types.ObjectId,
    permissions: readonly AgentPermission[],
    expiresAt: Date | null | undefined,
  ): Promise<AgentGrant> {
    const wanted = [...new Set(permissions)];
    if (wanted.length === 0)
      throw new UserInputError('give at least one permission', 'permissions');
    if (expiresAt != null && expiresAt.getTime() <= Date.now())
      throw new UserInputError('must be in the future', 'expiresAt');
    let wallet = await ownedWallet(ctx, walletId);
    const agent = await this.agents.grantableAgent(ctx, toObjectId(agentId));
    if (!agent)
      throw new UserInputError(
        'not an agent you may grant (see grantableAgents): an admin-issued GRANTED_WALLETS token or your own, unrevoked and unexpired',
        'agentId',
      );
    const key = agent._id.toHexString();
    for (let attempt = 0; attempt < GRANT_ATTEMPTS; attempt++) {
      const now = new Date();
      const current = wallet.agent_grants?.[key];
      const live = inForce(current, now.getTime()) ? current : undefined;
      const record: AgentGrantRecord = {
        _id: live?._id ?? new Types.ObjectId(),
        agent_id: agent._id,
        agent_name: agent.name,
        permissions: wanted,
        created_at: live?.created_at ?? now,
        expires_at: expiresAt ?? null,
        revoked_at: null,
      };
      const holds = wallet.grant_agents?.some((id) => id.equals(agent._id)) ?? false;
      if (!holds && (wallet.grant_agents?.length ?? 0) >= MAX_GRANTS_PER_WALLET)
        throw new UserInputError(
          `at most ${MAX_GRANTS_PER_WALLET} agents may hold a grant on a wallet (expired ones count until revoked): revoke one first${await this.deadHolders(wallet)}`,
          'agentId',
        );
      const without = Object.values(AgentPermission).filter((p) => !wanted.includes(p));
      const update: Record<string, unknown> = {
        $set: { [`agent_grants.${key}`]: record, grants_changed_at: now, ...userChanged(now) },
        $addToSet: Object.fromEntries([
          ['grant_agents', agent._id],
          ...wanted.map((p) => [HOLDERS[p], agent._id]),
        ]),
      };
      if (without.length > 0)
        update.$pull = Object.fromEntries(without.map((p) => [HOLDERS[p], agent._id]));
      // The expiry sweep's next look at this wallet: no later than this grant's end.
      if (record.expires_at) update.$min = { grants_expire_at: record.expires_at };
      const provisional = grantEvent(ctx, wallet._id, WalletEventKind.AGENT_GRANTED, null, record);
      const replaced = await walletOutbox.writeWithEvent(
        ctx,
        {
          ...sameGrant(wallet, key),
          user_id: ctx.actor.userId,
          // A new holder only while there is room: grants made at once can't pass the cap.
          ...(holds ? {} : { [`grant_agents.${MAX_GRANTS_PER_WALLET - 1}`]: { $exists: false } }),
        },
        update,
        provisional,
        (before) => {
          const was = before.agent_grants?.[key];
          return {
            ...provisional,
            version: before.version,
            before: was && inForce(was, now.getTime()) ? grantInTrail(was) : null,
          };
        },
        true,
      );
      if (replaced) {
        this.index.changed(wallet._id, agent._id, record);
        return shownGrant(wallet._id, record);
      }
      // The grant moved meanwhile (another grant or a revocation): decide again on what is there.
      wallet = await ownedWallet(ctx, wallet._id);
    }
    throw new ConflictError("the wallet's grants kept changing; try again");
  }

  /**
   * The agent stops acting on the wallet everywhere within 5 s. Idempotent for a grant that
   * exists: a revoked one is answered as it is, with no second event. NOT_FOUND for an agent never
   * granted here.
   */
  async revoke(
    ctx: UserContext,
    walletId: string | Types.ObjectId,
    agentId: string | Types.ObjectId,
  ): Promise<AgentGrant> {
    let wallet = await ownedWallet(ctx, walletId);
    const agent = toObjectId(agentId);
    const key = agent.toHexString();
    for (let attempt = 0; attempt < GRANT_ATTEMPTS; attempt++) {
      const current = wallet.agent_grants?.[key];
      if (!current) throw new NotFoundError('this agent was never granted this wallet');
      if (current.revoked_at !== null) return shownGrant(wallet._id, current);
      const now = new Date();
      const record: AgentGrantRecord = { ...current, revoked_at: now };
      const provisional = grantEvent(ctx, wallet._id, WalletEventKind.AGENT_REVOKED, current, null);
      const replaced = await walletOutbox.writeWithEvent(
        ctx,
        { ...sameGrant(wallet, key), user_id: ctx.actor.userId },
        {
          $set: {
            [`agent_grants.${key}.revoked_at`]: now,
            grants_changed_at: now,
            ...userChanged(now),
          },
          $pull: Object.fromEntries(
            ['grant_agents', ...Object.values(HOLDERS)].map((field) => [field, agent]),
          ),
        },
        provisional,
        (before) => ({ ...provisional, version: before.version }),
        true,
      );
      if (replaced) {
        this.index.changed(wallet._id, agent, null);
        return shownGrant(wallet._id, record);
      }
      wallet = await ownedWallet(ctx, wallet._id);
    }
    throw new ConflictError("the wallet's grants kept changing; try again");
  }

  /**
   * The holders of a slot whose grant is no longer in force (expired, or its token dead), which
   * agentGrants does not show: named so the owner can revoke them.
   */
  private async deadHolders(wallet: UserWallet): Promise<string> {
    const live = new Set(
      (await this.grantsInForce(wallet, Date.now())).map((g) => g.agent_id.toHexString()),
    );
    const dead = (wallet.grant_agents ?? [])
      .map((id) => id.toHexString())
      .filter((id) => !live.has(id));
    return dead.length > 0 ? ` (no longer in force: ${dead.join(', ')})` : '';
  }

  /** The wallet's grants in force whose token is honoured: a dead token's grants are dead too. */
  private async grantsInForce(wallet: UserWallet, now: number): Promise<AgentGrantRecord[]> {
    const live = Object.values(wallet.agent_grants ?? {}).filter((g) => inForce(g, now));
    const honoured = await Promise.all(
      live.map((g) => this.agents.isHonoured(g.agent_id.toHexString())),
    );
    return live.filter((_, i) => honoured[i]);
  }

  /**
   * The grants this agent holds now, newest first (at most MAX_LISTED_GRANTS): none for an
   * ALL_WALLETS agent.
   */
  async held(ctx: AgentContext): Promise<AgentGrant[]> {
    const agent = ctx.actor;
    if (!bound(agent)) return [];
    const key = agent.agentId.toHexString();
    const wallets = await UserWalletModel.find(readableBy(agent), {
      [`agent_grants.${key}`]: 1,
      grant_agents: 1,
    })
      .sort({ _id: 1 })
      .limit(MAX_LISTED_GRANTS)
      .setOptions(dbOptions(ctx))
      .lean<Array<Pick<UserWallet, '_id' | 'agent_grants' | 'grant_agents'>>>();
    const now = Date.now();
    return newestFirst(
      wallets.flatMap((wallet) => {
        const grant = grantOf(agent, wallet, now);
        return grant ? [shownGrant(wallet._id, grant)] : [];
      }),
    );
  }

  /**
   * A wallet's grants in force, newest first: all of them to its owner (those of a revoked or
   * expired token are dead, so left out), its own to an agent.
   */
  async shownOn(ctx: UserContext | AgentContext, wallet: UserWallet): Promise<AgentGrant[]> {
    const now = Date.now();
    if (ctx.actor.kind === 'agent') {
      const grant = bound(ctx.actor) ? grantOf(ctx.actor, wallet, now) : undefined;
      return grant ? [shownGrant(wallet._id, grant)] : [];
    }
    if (!wallet.user_id.equals(ctx.actor.userId)) return [];
    return newestFirst(
      (await this.grantsInForce(wallet, now)).map((g) => shownGrant(wallet._id, g)),
    );
  }
}

function newestFirst(grants: AgentGrant[]): AgentGrant[] {
  return grants.sort(
    (a, b) =>
      b.createdAt.getTime() - a.createdAt.getTime() ||
      b.id.toHexString().localeCompare(a.id.toHexString()),
  );
}

/** The wallet with the agent's grant exactly as read: a change of it meanwhile makes a write miss. */
function sameGrant(wallet: UserWallet, key: string): Record<string, unknown> {
  const current = wallet.agent_grants?.[key];
  return current
    ? {
        _id: wallet._id,
        [`agent_grants.${key}._id`]: current._id,
        [`agent_grants.${key}.revoked_at`]: current.revoked_at,
        [`agent_grants.${key}.expires_at`]: current.expires_at,
      }
    : { _id: wallet._id, [`agent_grants.${key}`]: null };
}

function grantEvent(
  ctx: UserContext,
  walletId: Types.ObjectId,
  kind: WalletEventKind,
  before: AgentGrantRecord | null,
  after: AgentGrantRecord | null,
): WalletEventRecord {
  return walletEvent({
    actor: ctx.actor,
    walletId,
    version: null,
    kind,
    before: before && grantInTrail(before),
    after: after && grantInTrail(after),
  });
}
