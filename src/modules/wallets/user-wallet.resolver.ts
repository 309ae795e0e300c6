import {
  Arg,
  Args,
  Authorized,
  Ctx,
  FieldResolver,
  Int,
  Mutation,
  Query,
  Resolver,
  Root,
  UseMiddleware,
} from 'type-graphql';
import { Role } from '../auth/roles';
import { Deadline } from '../../shared/deadline';
import type { RequestContext } from '../../core/context';
import { UserInputError } from '../../core/errors';
import { ObjectIdScalar } from '../../shared/scalars';
import { Credential } from '../credentials/credential.model';
import { DeletePayload } from '../credentials/credential.types';
import { WalletDefinition } from '../catalog/wallet-definition.model';
import type { AiStateService } from './ai-state.service';
import { DEFAULT_EVENTS, MAX_EVENTS, withPending } from './user-wallet-events';
import { UserWalletEvent } from './user-wallet-event.model';
import { aiBounds } from './ai-policy';
import { decodeTimeCursor, encodeTimeCursor } from './cursors';
import {
  AiManagedStateInput,
  AiPauseWalletArgs,
  AiStateUpdatesArgs,
  AuditTrailArgs,
  CreateUserWalletInput,
  ManagedWalletChangesArgs,
  ManagedWalletsArgs,
  UpdateUserWalletInput,
  UserWalletFilter,
} from './user-wallet.inputs';
import { UserWallet } from './user-wallet.model';
import type { UserWalletService } from './user-wallet.service';
import {
  AiBounds,
  AiStateUpdateOutcome,
  pageOf,
  UserWalletConnection,
  UserWalletEventConnection,
} from './user-wallet.types';

@UseMiddleware(Deadline)
@Resolver(() => UserWallet)
export class UserWalletResolver {
  constructor(
    private readonly wallets: UserWalletService,
    private readonly ai: AiStateService,
  ) {}

  @Authorized(Role.USER)
  @Query(() => [UserWallet], { description: "USER/ADMIN: the caller's own wallets." })
  userWallets(
    @Ctx() ctx: RequestContext,
    @Arg('filter', () => UserWalletFilter, { nullable: true }) filter?: UserWalletFilter | null,
  ): Promise<UserWallet[]> {
    return this.wallets.list(ctx.actor, filter);
  }

  @Authorized(Role.USER)
  @Query(() => UserWallet, { description: "USER/ADMIN: FORBIDDEN for another user's wallet." })
  userWallet(
    @Arg('id', () => ObjectIdScalar) id: string,
    @Ctx() ctx: RequestContext,
  ): Promise<UserWallet> {
    return this.wallets.get(ctx.actor, id);
  }

  @Authorized(Role.USER)
  @Mutation(() => UserWallet, { description: 'USER/ADMIN.' })
  createUserWallet(
    @Arg('input', () => CreateUserWalletInput) input: CreateUserWalletInput,
    @Ctx() ctx: RequestContext,
  ): Promise<UserWallet> {
    return this.wallets.create(ctx.actor, input);
  }

  @Authorized(Role.USER)
  @Mutation(() => UserWallet)
  updateUserWallet(
    @Arg('id', () => ObjectIdScalar) id: string,
    @Arg('input', () => UpdateUserWalletInput) input: UpdateUserWalletInput,
    @Ctx() ctx: RequestContext,
  ): Promise<UserWallet> {
    return this.wallets.update(ctx.actor, id, input);
  }

  @Authorized(Role.USER)
  @Mutation(() => DeletePayload)
  deleteUserWallet(
    @Arg('id', () => ObjectIdScalar) id: string,
    @Ctx() ctx: RequestContext,
  ): Promise<DeletePayload> {
    return this.wallets.delete(ctx.actor, id);
  }

  @Authorized(Role.USER)
  @Mutation(() => UserWallet)
  pauseUserWallet(
    @Arg('id', () => ObjectIdScalar) id: string,
    @Ctx() ctx: RequestContext,
  ): Promise<UserWallet> {
    return this.wallets.pause(ctx.actor, id);
  }

  @Authorized(Role.USER)
  @Mutation(() => UserWallet)
  resumeUserWallet(
    @Arg('id', () => ObjectIdScalar) id: string,
    @Ctx() ctx: RequestContext,
  ): Promise<UserWallet> {
    return this.wallets.resume(ctx.actor, id);
  }

  @Authorized(Role.AGENT)
  @Query(() => UserWalletConnection, {
    description: "AGENT: every user's wallets, oldest first, for the agents to manage.",
  })
  managedWallets(
    @Args(() => ManagedWalletsArgs) args: ManagedWalletsArgs,
  ): Promise<UserWalletConnection> {
    return this.ai.managedWallets(args);
  }

  @Authorized(Role.AGENT)
  @Query(() => UserWallet, {
    description: 'AGENT: one wallet, whoever owns it. NOT_FOUND for an unknown id.',
  })
  managedWallet(@Arg('id', () => ObjectIdScalar) id: string): Promise<UserWallet> {
    return this.ai.managedWallet(id);
  }

  @Authorized(Role.AGENT)
  @Query(() => UserWalletConnection, {
    description: 'AGENT: wallets whose userChangedAt is at or after since, oldest change first.',
  })
  managedWalletChanges(
    @Args(() => ManagedWalletChangesArgs) args: ManagedWalletChangesArgs,
  ): Promise<UserWalletConnection> {
    return this.ai.changes(args);
  }

  @Authorized(Role.AGENT)
  @Mutation(() => UserWallet, {
    description:
      "AGENT. BAD_USER_INPUT when a value leaves the user's limits; CONFLICT on a stale expectedVersion, with extensions.currentVersion.",
  })
  updateAiManagedState(
    @Arg('walletId', () => ObjectIdScalar) walletId: string,
    @Arg('input', () => AiManagedStateInput) input: AiManagedStateInput,
    @Ctx() ctx: RequestContext,
    @Arg('expectedVersion', () => Int, { nullable: true }) expectedVersion?: number | null,
  ): Promise<UserWallet> {
    return this.ai.update(ctx.actor!, walletId, input, expectedVersion);
  }

  @Authorized(Role.AGENT)
  @Mutation(() => [AiStateUpdateOutcome], {
    description:
      'AGENT: up to 100 writes, each checked and stored as updateAiManagedState would, independently; outcomes in input order.',
  })
  updateAiManagedStates(
    @Args(() => AiStateUpdatesArgs) { updates }: AiStateUpdatesArgs,
    @Ctx() ctx: RequestContext,
  ): Promise<AiStateUpdateOutcome[]> {
    return this.ai.updateMany(ctx.actor!, updates, ctx.loaders);
  }

  @Authorized(Role.AGENT)
  @Mutation(() => UserWallet, { description: 'AGENT: ACTIVE -> AI_PAUSED.' })
  aiPauseWallet(
    @Args(() => AiPauseWalletArgs) { walletId, reason }: AiPauseWalletArgs,
    @Ctx() ctx: RequestContext,
  ): Promise<UserWallet> {
    return this.ai.pause(ctx.actor!, walletId, reason);
  }

  @Authorized(Role.AGENT)
  @Mutation(() => UserWallet, { description: 'AGENT: AI_PAUSED -> ACTIVE.' })
  aiResumeWallet(
    @Arg('walletId', () => ObjectIdScalar) walletId: string,
    @Ctx() ctx: RequestContext,
  ): Promise<UserWallet> {
    return this.ai.resume(ctx.actor!, walletId);
  }

  @FieldResolver(() => WalletDefinition)
  async definition(
    @Root() wallet: UserWallet,
    @Ctx() ctx: RequestContext,
  ): Promise<WalletDefinition> {
    const definition = await ctx.loaders.definitionById.load(wallet.wallet_id);
    if (!definition)
      throw new Error(`wallet ${wallet._id.toHexString()} refers to a missing wallet definition`);
    return definition;
  }

  @FieldResolver(() => Credential)
  async credential(@Root() wallet: UserWallet, @Ctx() ctx: RequestContext): Promise<Credential> {
    const credential = await ctx.loaders.credentialById.load(wallet.credential_id);
    if (!credential)
      throw new Error(`wallet ${wallet._id.toHexString()} refers to a missing credential`);
    return credential;
  }

  @FieldResolver(() => [UserWalletEvent], {
    description: 'The audit trail, newest first: to the owner and to agents.',
  })
  async events(
    @Root() wallet: UserWallet,
    @Ctx() ctx: RequestContext,
    @Arg('first', () => Int, { nullable: true }) first?: number | null,
  ): Promise<UserWalletEvent[]> {
    const count = first ?? DEFAULT_EVENTS;
    if (!Number.isInteger(count) || count < 1 || count > MAX_EVENTS)
      throw new UserInputError(`must be 1 to ${MAX_EVENTS}`, 'first');
    const query = { first: count, kinds: null, before: null };
    return withPending(
      await ctx.loaders.trailOf(query).load(wallet._id),
      wallet.pending_events,
      query,
    );
  }

  @FieldResolver(() => UserWalletEventConnection, {
    description: 'The audit trail, newest first, in pages; kinds left out: every kind.',
  })
  async auditTrail(
    @Root() wallet: UserWallet,
    @Ctx() ctx: RequestContext,
    @Args(() => AuditTrailArgs) args: AuditTrailArgs,
  ): Promise<UserWalletEventConnection> {
    const first = args.first ?? DEFAULT_EVENTS;
    // One more than the page, to know whether another follows.
    const query = {
      first: first + 1,
      kinds: args.kinds?.length ? args.kinds : null,
      before: args.after != null ? decodeTimeCursor(args.after) : null,
    };
    const found = withPending(
      await ctx.loaders.trailOf(query).load(wallet._id),
      wallet.pending_events,
      query,
    );
    return pageOf(found, first, args.after, (event) => encodeTimeCursor(event.at, event._id));
  }

  @FieldResolver(() => AiBounds)
  async aiBounds(@Root() wallet: UserWallet, @Ctx() ctx: RequestContext): Promise<AiBounds> {
    return aiBounds({ limits: wallet.user_limits, definition: await this.definition(wallet, ctx) });
  }

  @FieldResolver(() => Date, {
    description:
      "When a user or the service last changed the limits or the status; agents' writes leave it.",
  })
  userChangedAt(@Root() wallet: UserWallet): Date {
    return wallet.user_changed_at;
  }
}
