import type { Types } from 'mongoose';
import type { AgentPrincipal } from '../auth/roles';
import { dbOptions, type AgentContext } from '../../core/context';
import {
  AppError,
  ConflictError,
  type BoundViolation,
  InternalError,
  NotFoundError,
  UserInputError,
} from '../../core/errors';
import { metrics } from '../../core/metrics';
import { toObjectId } from '../../shared/scalars';
import { cleanName } from '../../shared/validators';
import type { WalletDefinition } from '../catalog/wallet-definition.model';
import { findDefinition } from '../catalog/wallet-definition.service';
import { AI_POLICY, aiBounds, riskPasses } from './ai-policy';
import {
  decodeIdCursor,
  decodeTimeCursor,
  encodeIdCursor,
  encodeTimeCursor,
  fromAscending,
} from '../../shared/cursors';
import { WalletEventKind, type WalletEventRecord } from '../audit/user-wallet-event.model';
import { apiAiState, apiStatus } from '../audit/api-names';
import { walletEvent } from '../audit/build-events';
import { eventIdsInTrail } from '../audit/trail.service';
import {
  DEFAULT_WALLET_PAGE,
  MAX_BATCH,
  type AiManagedStateInput,
  type AiStateUpdateInput,
  type ManagedWalletChangesArgs,
  type ManagedWalletsArgs,
} from './user-wallet.inputs';
import {
  AgentPermission,
  userChanged,
  UserWalletModel,
  WalletStatus,
  type AiManagedState,
  type UserWallet,
} from './user-wallet.model';
import {
  pageOf,
  type AiStateUpdateOutcome,
  type OperationError,
  type UserWalletConnection,
} from './user-wallet.types';
import { transition, type TransitionGuard } from './wallet-status';
import { assertGrant, mayRead, NO_WALLET, permittedTo, readableBy } from './agent-grants';
import { pushEvents, walletOutbox } from './wallet-outbox';

const WRITE_ATTEMPTS = 5;

/** Input field -> stored field of ai_managed_state. */
const STORED: Record<keyof AiManagedStateInput, keyof AiManagedState> = {
  currentRisk: 'current_risk',
  dailyPnl: 'daily_pnl',
  openPositions: 'open_positions',
  currentMaxPositionSize: 'current_max_position_size',
  currentLeverage: 'current_leverage',
  adaptiveStopLoss: 'adaptive_stop_loss',
  riskScore: 'risk_score',
  marketSentiment: 'market_sentiment',
  confidenceLevel: 'confidence_level',
};

/**
 * What AI agents do: read the wallets they may (every one for an ALL_WALLETS agent, those granted
 * for a GRANTED_WALLETS one: see agent-grants.ts), and write the AI-managed state inside each
 * user's limits.
 */
export class AiStateService {
  /** The wallets the agent may read, oldest first. The cursor is the last wallet's id. */
  async managedWallets(ctx: AgentContext, args: ManagedWalletsArgs): Promise<UserWalletConnection> {
    const first = args.first ?? DEFAULT_WALLET_PAGE;
    const query: Record<string, unknown> = readableBy(ctx.actor);
    if (args.status) query.status = args.status;
    if (args.after != null) query._id = { $gt: decodeIdCursor(args.after) };
    const found = await UserWalletModel.find(query)
      .sort({ _id: 1 })
      .limit(first + 1)
      .setOptions(dbOptions(ctx))
      .lean<UserWallet[]>();
    return grantedPage(
      ctx,
      pageOf(found, first, args.after, (node) => encodeIdCursor(node._id)),
    );
  }

  /** One wallet the agent may read: what an agent re-reads after a CONFLICT. */
  managedWallet(ctx: AgentContext, walletId: string): Promise<UserWallet> {
    return this.load(ctx, walletId, null);
  }

  /**
   * The change feed: wallets whose user_changed_at is at or after `since`, oldest change first.
   * The cursor is the last wallet's (user_changed_at, _id): a wallet changed again meanwhile moves
   * behind it and comes again, and nothing before it can shift a page.
   */
  async changes(ctx: AgentContext, args: ManagedWalletChangesArgs): Promise<UserWalletConnection> {
    const first = args.first ?? DEFAULT_WALLET_PAGE;
    const query = fromAscending(
      'user_changed_at',
      args.since,
      args.after != null ? decodeTimeCursor(args.after) : null,
    );
    const found = await UserWalletModel.find({ ...query, ...readableBy(ctx.actor) })
      .sort({ user_changed_at: 1, _id: 1 })
      .limit(first + 1)
      .setOptions(dbOptions(ctx))
      .lean<UserWallet[]>();
    return grantedPage(
      ctx,
      pageOf(found, first, args.after, (node) => encodeTimeCursor(node.user_changed_at, node._id)),
    );
  }

  /**
   * One conditional update: on the version the limits were checked against, and on the limits and
   * status themselves, so a user tightening them meanwhile makes this write miss instead of slip
   * through. With validateOnly, every check of that write on the wallet as read, and the wallet as
   * the write would leave it: nothing stored, no event.
   */
  async update(
    ctx: AgentContext,
    walletId: string,
    input: AiManagedStateInput,
    expectedVersion: number | null | undefined,
    validateOnly = false,
  ): Promise<UserWallet> {
    try {
      return await this.writeOne(ctx, walletId, input, expectedVersion, validateOnly);
    } catch (error) {
      if (error instanceof AppError) countRefusal(error, validateOnly);
      throw error;
    }
  }

  private async writeOne(
    ctx: AgentContext,
    walletId: string,
    input: AiManagedStateInput,
    expectedVersion: number | null | undefined,
    validateOnly: boolean,
  ): Promise<UserWallet> {
    assertSomeField(input);
    const id = toObjectId(walletId);
    const tagged = dbOptions(ctx);
    const mine = readableBy(ctx.actor);
    for (let attempt = 0; attempt < WRITE_ATTEMPTS; attempt++) {
      const wallet = await UserWalletModel.findOne({ _id: id, ...mine })
        .setOptions(tagged)
        .lean<UserWallet>();
      if (!wallet) throw new NotFoundError(NO_WALLET);
      assertGrant(ctx.actor, wallet, AgentPermission.MANAGE_STATE);
      assertVersion(wallet, expectedVersion);
      const definition = (await findDefinition<Pick<WalletDefinition, 'features'>>(
        ctx,
        wallet.wallet_id,
        { features: 1 },
      ))!;
      const now = new Date();
      const write = prepareAiWrite(ctx.actor, wallet, definition, input, now);
      if (validateOnly) {
        metrics.aiValidations.inc({ outcome: 'passed' });
        return wouldLeave(wallet, write, now);
      }
      const updated = await UserWalletModel.findOneAndUpdate(write.filter, write.update, {
        returnDocument: 'after',
        ...tagged,
      }).lean<UserWallet>();
      // Someone wrote first. Read again: with an expectedVersion, that read answers CONFLICT with
      // the version now (every change the filter depends on grows the version); without, the
      // write is checked again against what is stored now.
      if (!updated) continue;
      countWritten(write);
      await walletOutbox.deliverEvents(ctx, updated._id, write.events);
      return updated;
    }
    const now = await UserWalletModel.findOne(
      { _id: id, ...mine },
      { version: 1, agent_grants: 1, grant_agents: 1 },
    )
      .setOptions(tagged)
      .lean<Pick<UserWallet, 'version' | 'agent_grants' | 'grant_agents'>>();
    if (!now) throw new NotFoundError(NO_WALLET);
    // The grant may have ended while the writes missed: that, not the version, is the answer then.
    assertGrant(ctx.actor, now, AgentPermission.MANAGE_STATE);
    throw new ConflictError(
      'the wallet kept changing while the agent wrote; try again',
      now.version,
    );
  }

  /**
   * Up to MAX_BATCH writes, each checked and stored as `update` would, independently: one's failure
   * is its outcome's error. A validateOnly item is checked alike on the wallet as read, and answered
   * as its write would leave the wallet, storing nothing. The database work does not grow with the batch: one read of the
   * wallets, their definitions through the request's loader, one bulkWrite of the conditional
   * updates, one insertMany of their events and one pull from the outboxes. Only writes that
   * missed (someone wrote first) cost a read more per attempt.
   */
  async updateMany(
    ctx: AgentContext,
    updates: readonly AiStateUpdateInput[],
  ): Promise<AiStateUpdateOutcome[]> {
    if (updates.length > MAX_BATCH)
      throw new UserInputError(`must have at most ${MAX_BATCH} writes`, 'updates');
    const outcomes: AiStateUpdateOutcome[] = updates.map((u) => ({
      walletId: u.walletId,
      wallet: null,
      error: null,
    }));
    const fail = (i: number, error: AppError) => {
      countRefusal(error, updates[i].validateOnly === true);
      outcomes[i].error = operationError(error);
    };
    let open: number[] = [];
    updates.forEach((u, i) => {
      if (Object.values(u.input).some((v) => v != null)) open.push(i);
      else fail(i, noField());
    });
    const walletKey = (i: number) => toObjectId(updates[i].walletId).toHexString();
    const tagged = dbOptions(ctx);
    // The grant is in this query; a later read (of writes that may have landed) is not filtered,
    // and assertGrant below refuses what it shows the agent may no longer write.
    let wallets = await readWallets(
      ctx,
      open.map((i) => updates[i].walletId),
      readableBy(ctx.actor),
    );
    const events: WalletEventRecord[] = [];
    for (let attempt = 0; open.length > 0 && attempt < WRITE_ATTEMPTS; attempt++) {
      const definitions = await definitionsOf(ctx, [...wallets.values()]);
      const now = new Date();
      const planned: Array<{ i: number; wallet: UserWallet; write: PreparedAiWrite }> = [];
      for (const i of open) {
        const wallet = wallets.get(walletKey(i));
        const definition = wallet && definitions.get(wallet.wallet_id.toHexString());
        if (wallet && !definition) {
          // A broken reference is this write's failure alone, as it would be the one request's.
          ctx.logger.error(
            { walletId: updates[i].walletId },
            'a wallet refers to a missing wallet definition',
          );
          fail(i, new InternalError());
          continue;
        }
        try {
          if (!wallet || !definition) throw new NotFoundError(NO_WALLET);
          assertGrant(ctx.actor, wallet, AgentPermission.MANAGE_STATE);
          assertVersion(wallet, updates[i].expectedVersion);
          const write = prepareAiWrite(ctx.actor, wallet, definition, updates[i].input, now);
          if (updates[i].validateOnly) {
            metrics.aiValidations.inc({ outcome: 'passed' });
            outcomes[i].wallet = wouldLeave(wallet, write, now);
          } else {
            planned.push({ i, wallet, write });
          }
        } catch (error) {
          // The refusals updateAiManagedState would answer with; anything else fails the request.
          if (!(error instanceof AppError)) throw error;
          fail(i, error);
        }
      }
      open = [];
      if (planned.length === 0) break;
      // updated_at set here rather than by mongoose, so the wallets answered (applied) carry the
      // one stored.
      const result = await UserWalletModel.bulkWrite(
        planned.map(({ write }) => ({
          updateOne: {
            filter: write.filter,
            update: { ...write.update, $set: { ...write.update.$set, updated_at: now } },
          },
        })),
        { ordered: false, timestamps: false, ...tagged },
      );
      let landed: Set<string>;
      if (result.matchedCount === planned.length) {
        landed = new Set(planned.map((p) => eventKey(p.write)));
      } else {
        // The bulk answer counts matches but doesn't say which: a write that landed left its events
        // in its wallet's outbox. This read is also the next attempt's.
        wallets = await readWallets(
          ctx,
          planned.map((p) => p.wallet._id),
        );
        landed = new Set(
          planned
            .filter((p) =>
              wallets
                .get(p.wallet._id.toHexString())
                ?.pending_events?.some((e) => e._id.equals(p.write.events[0]._id)),
            )
            .map((p) => eventKey(p.write)),
        );
        if (landed.size < result.matchedCount) {
          // Gone from the outbox already (a wallet deleted meanwhile copies its events to the trail
          // first).
          const unsure = planned
            .filter((p) => !landed.has(eventKey(p.write)))
            .map((p) => p.write.events[0]._id);
          for (const id of await eventIdsInTrail(ctx, unsure)) landed.add(id.toHexString());
        }
      }
      for (const p of planned) {
        if (landed.has(eventKey(p.write))) {
          countWritten(p.write);
          outcomes[p.i].wallet = applied(p.wallet, p.write, now);
          events.push(...p.write.events);
        } else {
          open.push(p.i);
        }
      }
    }
    for (const i of open) {
      const wallet = wallets.get(walletKey(i));
      if (!wallet) {
        fail(i, new NotFoundError(NO_WALLET));
        continue;
      }
      try {
        // This read is not filtered by the grant, which may have ended while the writes missed.
        assertGrant(ctx.actor, wallet, AgentPermission.MANAGE_STATE);
        fail(
          i,
          new ConflictError(
            'the wallet kept changing while the agent wrote; try again',
            wallet.version,
          ),
        );
      } catch (error) {
        if (!(error instanceof AppError)) throw error;
        fail(i, error);
      }
    }
    const delivered = await walletOutbox.deliverEventsOfMany(ctx, events);
    for (const outcome of outcomes) {
      if (outcome.wallet)
        outcome.wallet.pending_events = outcome.wallet.pending_events?.filter(
          (e) => !delivered.has(e._id.toHexString()),
        );
    }
    return outcomes;
  }

  /** The reason is checked as text at the edge (AiPauseWalletArgs) and stored as names are. */
  async pause(ctx: AgentContext, walletId: string, reason: string): Promise<UserWallet> {
    return transition(
      ctx,
      await this.load(ctx, walletId, AgentPermission.PAUSE_RESUME),
      [WalletStatus.ACTIVE],
      WalletStatus.AI_PAUSED,
      cleanName(reason),
      grantGuard(ctx.actor),
    );
  }

  /**
   * Not while the risk taken is over the user's limit: an agent brings currentRisk within it first
   * (its writes land on a paused wallet too), or the user resumes the wallet themselves.
   */
  async resume(ctx: AgentContext, walletId: string): Promise<UserWallet> {
    return transition(
      ctx,
      await this.load(ctx, walletId, AgentPermission.PAUSE_RESUME),
      [WalletStatus.AI_PAUSED],
      WalletStatus.ACTIVE,
      null,
      grantGuard(ctx.actor, WITHIN_RISK_LIMIT),
    );
  }

  /** A wallet the agent may read; with `permission`, one it may also do that on. */
  private async load(
    ctx: AgentContext,
    walletId: string,
    permission: AgentPermission | null,
  ): Promise<UserWallet> {
    const wallet = await UserWalletModel.findOne({
      _id: toObjectId(walletId),
      ...readableBy(ctx.actor),
    })
      .setOptions(dbOptions(ctx))
      .lean<UserWallet>();
    if (!wallet) throw new NotFoundError(NO_WALLET);
    assertGrant(ctx.actor, wallet, permission);
    return wallet;
  }
}

/**
 * A page of wallets the agent's query found, less those whose grant has expired (the query checks
 * that a grant stands, the document says until when): such a page may hold fewer than asked, and
 * its cursors and hasNextPage stay those of what the query read, so nothing is skipped or repeated.
 */
function grantedPage(ctx: AgentContext, page: UserWalletConnection): UserWalletConnection {
  const now = Date.now();
  return { ...page, edges: page.edges.filter((edge) => mayRead(ctx.actor, edge.node, now)) };
}

/**
 * A GRANTED_WALLETS agent's pause and resume land only while it holds PAUSE_RESUME (in the
 * update's filter); should the grant move meanwhile, the wallet is checked again as it is then.
 */
function grantGuard(agent: AgentPrincipal, also?: TransitionGuard): TransitionGuard | undefined {
  const held = permittedTo(agent, AgentPermission.PAUSE_RESUME);
  if (Object.keys(held).length === 0) return also;
  return {
    refusal: (wallet) => {
      assertGrant(agent, wallet, AgentPermission.PAUSE_RESUME);
      return also?.refusal(wallet) ?? null;
    },
    valuesRead: (wallet) => ({ ...also?.valuesRead(wallet), ...held }),
    admits: (wallet) => assertGrant(agent, wallet, AgentPermission.PAUSE_RESUME),
  };
}

/**
 * The risk the wallet has taken is within the user's limit (the rule planAiWrite pauses by), on the
 * exact risk and limit read, so a write of either between the check and the resume makes it miss.
 */
const WITHIN_RISK_LIMIT: TransitionGuard = {
  refusal: (wallet) =>
    wallet.ai_managed_state.current_risk > wallet.user_limits.max_total_risk
      ? "the wallet's currentRisk is over its maxTotalRisk: an agent can resume it once an update brings currentRisk within the limit; its user can resume it as it is"
      : null,
  valuesRead: (wallet) => ({
    'ai_managed_state.current_risk': wallet.ai_managed_state.current_risk,
    'user_limits.max_total_risk': wallet.user_limits.max_total_risk,
  }),
};

function countWritten(write: AiWrite): void {
  metrics.aiWrites.inc({ outcome: write.pauseReason === null ? 'written' : 'paused' });
  if (write.pauseReason !== null) metrics.statusChanges.inc({ to: WalletStatus.AI_PAUSED });
}

/** A validation's refusal is counted with the validations: it refused no write. */
function countRefusal(error: AppError, validateOnly: boolean): void {
  const counter = validateOnly ? metrics.aiValidations : metrics.aiWrites;
  if (error.code === 'BAD_USER_INPUT') counter.inc({ outcome: 'refused' });
  if (error.code === 'CONFLICT') counter.inc({ outcome: 'conflict' });
}

function noField(): UserInputError {
  return new UserInputError('give at least one field to change', 'input');
}

function assertSomeField(input: AiManagedStateInput): void {
  if (!Object.values(input).some((v) => v != null)) throw noField();
}

function assertVersion(wallet: UserWallet, expectedVersion: number | null | undefined): void {
  // The message says the version now, never the one sent: no error repeats what a client wrote.
  if (expectedVersion != null && wallet.version !== expectedVersion) {
    throw new ConflictError(
      `expectedVersion is stale: the wallet is at version ${wallet.version}`,
      wallet.version,
    );
  }
}

function operationError(error: AppError): OperationError {
  return {
    code: error.code,
    message: error.message,
    field: error instanceof UserInputError ? (error.field ?? null) : null,
    violations: error instanceof UserInputError ? (error.violations ?? null) : null,
    currentVersion: error instanceof ConflictError ? (error.currentVersion ?? null) : null,
  };
}

const eventKey = (write: PreparedAiWrite) => write.events[0]._id.toHexString();

async function readWallets(
  ctx: AgentContext,
  ids: ReadonlyArray<string | Types.ObjectId>,
  also: Record<string, unknown> = {},
): Promise<Map<string, UserWallet>> {
  const found = await UserWalletModel.find({ _id: { $in: ids.map(toObjectId) }, ...also })
    .setOptions(dbOptions(ctx))
    .lean<UserWallet[]>();
  return new Map(found.map((w) => [w._id.toHexString(), w]));
}

async function definitionsOf(
  ctx: AgentContext,
  wallets: UserWallet[],
): Promise<Map<string, WalletDefinition>> {
  const ids = [...new Map(wallets.map((w) => [w.wallet_id.toHexString(), w.wallet_id])).values()];
  const found = await Promise.all(ids.map((id) => ctx.loaders.definitionById.load(id)));
  return new Map(
    found.filter((d): d is WalletDefinition => d !== null).map((d) => [d._id.toHexString(), d]),
  );
}

/**
 * The wallet as a write that landed left it, without reading it back: the update matched the
 * version read, and every change to a wallet but its outbox's and its grants' grows the version, so
 * the document stored is the one read with this write's changes (its grants aside).
 */
function applied(wallet: UserWallet, write: PreparedAiWrite, now: Date): UserWallet {
  const paused =
    write.pauseReason === null
      ? {}
      : { status: WalletStatus.AI_PAUSED, pause_reason: write.pauseReason, ...userChanged(now) };
  return {
    ...wallet,
    ...paused,
    ai_managed_state: { ...wallet.ai_managed_state, ...write.changes },
    version: wallet.version + 1,
    updated_at: now,
    pending_events: [...(wallet.pending_events ?? []), ...write.events],
  };
}

/** What a validateOnly write answers: the wallet as `applied`, but its outbox as it is. */
function wouldLeave(wallet: UserWallet, write: PreparedAiWrite, now: Date): UserWallet {
  return { ...applied(wallet, write, now), pending_events: wallet.pending_events };
}

export interface AiWrite {
  filter: Record<string, unknown>;
  set: Record<string, unknown>;
  /** The changed fields as stored, lastAiDecision included. */
  changes: Partial<AiManagedState>;
  /** Set when the write also pauses the wallet (its risk passes the limit), with why. */
  pauseReason: string | null;
}

/**
 * The one conditional update for an agent's input, checked against the wallet as read: on that
 * version, and on the limits and status the values depend on, so the database refuses it if any
 * moved. BAD_USER_INPUT, naming the field and the limit, for a value outside the policy.
 */
export function planAiWrite(
  wallet: UserWallet,
  definition: Pick<WalletDefinition, 'features'>,
  input: AiManagedStateInput,
  now: Date,
): AiWrite {
  const context = { limits: wallet.user_limits, definition };
  const set: Record<string, unknown> = {};
  const changes: Partial<AiManagedState> = {};
  let refused: UserInputError | null = null;
  const violations: BoundViolation[] = [];
  for (const field of Object.keys(STORED) as Array<keyof AiManagedStateInput>) {
    const value = input[field];
    if (value == null) continue;
    if (field !== 'marketSentiment') {
      const broken = AI_POLICY[field](value as number, context);
      if (broken) {
        // The error names the first field refused, as it always has; the rest are only listed.
        refused ??= new UserInputError(`${field} ${broken.limit}`, field);
        for (const b of broken.bounds) violations.push({ field, ...b, value: value as number });
        continue;
      }
    }
    set[`ai_managed_state.${STORED[field]}`] = value;
    Object.assign(changes, { [STORED[field]]: value });
  }
  if (refused)
    throw violations.length === 0
      ? refused
      : new UserInputError(refused.message, refused.field, violations);
  set['ai_managed_state.last_ai_decision'] = now;
  changes.last_ai_decision = now;

  // Exactly the state the values were checked against: its version, the limits and the status the
  // policy and the pause depend on. Every change of those grows the version too; the limits are in
  // the filter as well so that the database itself refuses a write checked against other limits.
  const filter: Record<string, unknown> = {
    _id: wallet._id,
    version: wallet.version,
    'user_limits.max_total_risk': wallet.user_limits.max_total_risk,
    'user_limits.trading_mode': wallet.user_limits.trading_mode,
    status: wallet.status,
  };

  const risk = input.currentRisk ?? wallet.ai_managed_state.current_risk;
  let pauseReason: string | null = null;
  if (wallet.status === WalletStatus.ACTIVE && riskPasses(risk, aiBounds(context))) {
    pauseReason = `risk limit exceeded: currentRisk ${risk} > maxTotalRisk ${wallet.user_limits.max_total_risk}`;
    set.status = WalletStatus.AI_PAUSED;
    set.pause_reason = pauseReason;
    // The service's own pause, though an agent's write set it off: agents watching the change
    // feed see it like a user's.
    Object.assign(set, userChanged(now));
  }
  return { filter, set, changes, pauseReason };
}

export interface PreparedAiWrite extends AiWrite {
  update: {
    $set: Record<string, unknown>;
    $inc: { version: 1 };
    $push: { pending_events: { $each: WalletEventRecord[] } };
  };
  /** AI_STATE_CHANGED first, then STATUS_CHANGED when the write pauses the wallet. */
  events: WalletEventRecord[];
}

/**
 * planAiWrite with its audit events in the update: their version is known, as the update is
 * conditional on the one read.
 */
function prepareAiWrite(
  actor: AgentPrincipal,
  wallet: UserWallet,
  definition: Pick<WalletDefinition, 'features'>,
  input: AiManagedStateInput,
  now: Date,
): PreparedAiWrite {
  const plan = planAiWrite(wallet, definition, input, now);
  const version = wallet.version + 1;
  const before = Object.fromEntries(
    Object.keys(plan.changes).map((k) => [k, wallet.ai_managed_state[k as keyof AiManagedState]]),
  );
  const events = [
    walletEvent({
      actor,
      walletId: wallet._id,
      version,
      kind: WalletEventKind.AI_STATE_CHANGED,
      before: apiAiState(before),
      after: apiAiState(plan.changes),
    }),
  ];
  if (plan.pauseReason !== null) {
    const after = apiStatus(WalletStatus.AI_PAUSED, plan.pauseReason);
    events.push(
      walletEvent({
        actor,
        walletId: wallet._id,
        version,
        kind: WalletEventKind.STATUS_CHANGED,
        before: apiStatus(wallet.status, wallet.pause_reason),
        after,
      }),
    );
  }
  return {
    ...plan,
    // Lands only while the agent still holds MANAGE_STATE (nothing for an ALL_WALLETS agent).
    filter: { ...plan.filter, ...permittedTo(actor, AgentPermission.MANAGE_STATE) },
    events,
    update: { $set: plan.set, $inc: { version: 1 }, ...pushEvents(events) },
  };
}
