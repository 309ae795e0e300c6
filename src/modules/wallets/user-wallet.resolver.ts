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
import type { AgentContext, RequestContext, UserContext } from '../../core/context';
import { AgentCtx, UserCtx } from '../auth/ctx-decorators';
import { UserInputError } from '../../core/errors';
import { ObjectIdScalar } from '../../shared/scalars';
import { Credential } from '../credentials/credential.model';
import { DeletePayload } from '../credentials/credential.types';
import { WalletDefinition } from '../catalog/wallet-definition.model';
import { referencedDefinition } from '../catalog/wallet-definition.loader';
import type { AiStateService } from './ai-state.service';
import { DEFAULT_EVENTS, MAX_EVENTS, withPending } from '../audit/trail.loader';
import { UserWalletEvent } from '../audit/user-wallet-event.model';
import { aiBounds } from './ai-policy';
import { decodeTimeCursor, encodeTimeCursor } from '../../shared/cursors';
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
    @UserCtx() ctx: UserContext,
    @Arg('filter', () => UserWalletFilter, { nullable: true }) filter?: UserWalletFilter | null,
  ): Promise<UserWallet[]> {
    return this.wallets.list(ctx, filter);
  }

  @Authorized(Role.USER)
  @Query(() => UserWallet, { description: "USER/ADMIN: FORBIDDEN for another user's wallet." })
  userWallet(
    @Arg('id', () => ObjectIdScalar) id: string,
    @UserCtx() ctx: UserContext,
  ): Promise<UserWallet> {
    return this.wallets.get(ctx, id);
  }

  @Authorized(Role.USER)
  @Mutation(() => UserWallet, { description: 'USER/ADMIN.' })
  createUserWallet(
    @Arg('input', () => CreateUserWalletInput) input: CreateUserWalletInput,
    @UserCtx() ctx: UserContext,
  ): Promise<UserWallet> {
    return this.wallets.create(ctx, input);
  }

  @Authorized(Role.USER)
  @Mutation(() => UserWallet)
  updateUserWallet(
    @Arg('id', () => ObjectIdScalar) id: string,
    @Arg('input', () => UpdateUserWalletInput) input: UpdateUserWalletInput,
    @UserCtx() ctx: UserContext,
  ): Promise<UserWallet> {
    return this.wallets.update(ctx, id, input);
  }

  @Authorized(Role.USER)
  @Mutation(() => DeletePayload)
  deleteUserWallet(
    @Arg('id', () => ObjectIdScalar) id: string,
    @UserCtx() ctx: UserContext,
  ): Promise<DeletePayload> {
    return this.wallets.delete(ctx, id);
  }

  @Authorized(Role.USER)
  @Mutation(() => UserWallet)
  pauseUserWallet(
    @Arg('id', () => ObjectIdScalar) id: string,
    @UserCtx() ctx: UserContext,
  ): Promise<UserWallet> {
    return this.wallets.pause(ctx, id);
  }

  @Authorized(Role.USER)
  @Mutation(() => UserWallet)
  resumeUserWallet(
    @Arg('id', () => ObjectIdScalar) id: string,
    @UserCtx() ctx: UserContext,
  ): Promise<UserWallet> {
    return this.wallets.resume(ctx, id);
  }

  @Authorized(Role.AGENT)
  @Query(() => UserWalletConnection, {
    description: "AGENT: every user's wallets, oldest first, for the agents to manage.",
  })
  managedWallets(
    @AgentCtx() ctx: AgentContext,
    @Args(() => ManagedWalletsArgs) args: ManagedWalletsArgs,
  ): Promise<UserWalletConnection> {
    return this.ai.managedWallets(ctx, args);
  }

  @Authorized(Role.AGENT)
  @Query(() => UserWallet, {
    description: 'AGENT: one wallet, whoever owns it. NOT_FOUND for an unknown id.',
  })
  managedWallet(
    @Arg('id', () => ObjectIdScalar) id: string,
    @AgentCtx() ctx: AgentContext,
  ): Promise<UserWallet> {
    return this.ai.managedWallet(ctx, id);
  }

  @Authorized(Role.AGENT)
  @Query(() => UserWalletConnection, {
    description: 'AGENT: wallets whose userChangedAt is at or after since, oldest change first.',
  })
  managedWalletChanges(
    @AgentCtx() ctx: AgentContext,
    @Args(() => ManagedWalletChangesArgs) args: ManagedWalletChangesArgs,
  ): Promise<UserWalletConnection> {
    return this.ai.changes(ctx, args);
  }

  @Authorized(Role.AGENT)
  @Mutation(() => UserWallet, {
    description:
      "AGENT. BAD_USER_INPUT when a value leaves the user's limits; CONFLICT on a stale expectedVersion, with extensions.currentVersion.",
  })
  updateAiManagedState(
    @Arg('walletId', () => ObjectIdScalar) walletId: string,
    @Arg('input', () => AiManagedStateInput) input: AiManagedStateInput,
    @AgentCtx() ctx: AgentContext,
    @Arg('expectedVersion', () => Int, { nullable: true }) expectedVersion?: number | null,
    @Arg('validateOnly', () => Boolean, { nullable: true, defaultValue: false })
    validateOnly?: boolean | null,
  ): Promise<UserWallet> {
    return this.ai.update(ctx, walletId, input, expectedVersion, validateOnly === true);
  }

  @Authorized(Role.AGENT)
  @Mutation(() => [AiStateUpdateOutcome], {
    description:
      'AGENT: up to 100 writes, each checked and stored as updateAiManagedState would, independently; outcomes in input order.',
  })
  updateAiManagedStates(
    @Args(() => AiStateUpdatesArgs) { updates }: AiStateUpdatesArgs,
    @AgentCtx() ctx: AgentContext,
  ): Promise<AiStateUpdateOutcome[]> {
    return this.ai.updateMany(ctx, updates);
  }

  @Authorized(Role.AGENT)
  @Mutation(() => UserWallet, { description: 'AGENT: ACTIVE -> AI_PAUSED.' })
  aiPauseWallet(
    @Args(() => AiPauseWalletArgs) { walletId, reason }: AiPauseWalletArgs,
    @AgentCtx() ctx: AgentContext,
  ): Promise<UserWallet> {
    return this.ai.pause(ctx, walletId, reason);
  }

  @Authorized(Role.AGENT)
  @Mutation(() => UserWallet, { description: 'AGENT: AI_PAUSED -> ACTIVE.' })
  aiResumeWallet(
    @Arg('walletId', () => ObjectIdScalar) walletId: string,
    @AgentCtx() ctx: AgentContext,
  ): Promise<UserWallet> {
    return this.ai.resume(ctx, walletId);
  }

  @FieldResolver(() => WalletDefinition)
  definition(@Root() wallet: UserWallet, @Ctx() ctx: RequestContext): Promise<WalletDefinition> {
    return referencedDefinition(
      ctx.loaders,
      wallet.wallet_id,
      `wallet ${wallet._id.toHexString()}`,
    );
  }

  @FieldResolver(() => Boolean, { description: 'True when its credential is PAPER.' })
  isPaper(@Root() wallet: UserWallet): boolean {
    // Wallets older than paper credentials have no is_paper: they are real.
    return wallet.is_paper === true;
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
