import { SYSTEM_ACTOR } from '../auth/roles';
import { dbOptions, type ActorContext } from '../../core/context';
import {
  ConflictError,
  NotFoundError,
  UserInputError,
  isDuplicateKeyError,
} from '../../core/errors';
import { metrics } from '../../core/metrics';
import {
  scheduleChecks,
  unscheduleChecks,
  type CredentialWallets,
} from '../credentials/credential-link';
import { ConnectionState, type Credential } from '../credentials/credential.model';
import { findCredential } from '../credentials/credential.service';
import type { WalletDefinition } from '../catalog/wallet-definition.model';
import { findDefinition } from '../catalog/wallet-definition.service';
import { statusChangeEvent } from '../audit/build-events';
import type { OutboxContext } from '../audit/outbox';
import {
  LIVE_STATUSES,
  userChanged,
  UserWalletModel,
  WalletStatus,
  type UserWallet,
} from './user-wallet.model';
import { walletOutbox } from './wallet-outbox';

/**
 * The pause reason of a wallet whose credential the exchange refused, before the test's own
 * message.
 */
export const REFUSED_CREDENTIAL = "the exchange refused this wallet's credential";
export const TEST_AGAIN_FIRST = `${REFUSED_CREDENTIAL}: test the credential again first`;

/**
 * What a wallet write reads of a context: who acts, besides the outbox's logger and comment. A
 * caller's context, or the service's own.
 */
export type WalletWriteContext = Pick<ActorContext, 'actor' | 'logger' | 'comment'>;

/**
 * A condition a transition needs besides the status it starts from. It is checked on the wallet as
 * read, and the values it read go into the conditional update as they are, so a change of any of
 * them in between makes the update miss and the wallet is checked again as it is then.
 */
export interface TransitionGuard {
  /** Why this wallet may not make the transition, or null. */
  refusal(wallet: UserWallet): string | null;
  /** The stored values refusal() read, as an equality filter on their paths. */
  valuesRead(wallet: UserWallet): Record<string, unknown>;
  /**
   * Throws when the caller may no longer act on the wallet at all (a grant ended): checked on the
   * wallet as read again after a write that missed, before anything is said of its status.
   */
  admits?(wallet: UserWallet): void;
}

/** How often a guarded transition is checked again when only what its guard read moved. */
const GUARD_ATTEMPTS = 5;

/**
 * Status changes, for users and agents alike: one update conditional on the status it starts from
 * (not on the version: a user's pause must land however busy the agents are), so two requests
 * can't both make the same transition. Going live writes the credential's id into live_key, where
 * the unique index lets one live wallet per credential through; it also puts the credential in
 * the service's test queue, and leaving live takes it out.
 */
export async function transition(
  ctx: WalletWriteContext,
  wallet: UserWallet,
  from: readonly WalletStatus[],
  to: WalletStatus,
  pauseReason: string | null,
  guard?: TransitionGuard,
): Promise<UserWallet> {
  for (let attempt = 1; ; attempt++) {
    if (guard && from.includes(wallet.status)) {
      const refused = guard.refusal(wallet);
      if (refused) throw new ConflictError(refused);
    }
    const replaced = await writeTransition(ctx, wallet, from, to, pauseReason, guard);
    const now = await UserWalletModel.findById(wallet._id)
      .setOptions(dbOptions(ctx))
      .lean<UserWallet>();
    if (!now) throw new NotFoundError('no wallet with that id');
    if (replaced) {
      metrics.statusChanges.inc({ to });
      return now;
    }
    guard?.admits?.(now);
    if (!guard || !from.includes(now.status))
      throw new ConflictError(transitionRefusal(now.status, to));
    // The status still fits: only a value the guard read moved.
    if (attempt === GUARD_ATTEMPTS)
      throw new ConflictError('the wallet kept changing while its status was changed; try again');
    wallet = now;
  }
}

/** The conditional update of one transition; the wallet it replaced, or null when it missed. */
async function writeTransition(
  ctx: WalletWriteContext,
  wallet: UserWallet,
  from: readonly WalletStatus[],
  to: WalletStatus,
  pauseReason: string | null,
  guard: TransitionGuard | undefined,
): Promise<UserWallet | null> {
  if (to === WalletStatus.ACTIVE) await assertCanGoLive(ctx, wallet);
  const { provisional, complete } = statusChangeEvent({
    actor: ctx.actor,
    walletId: wallet._id,
    to,
    pauseReason,
  });
  let replaced: UserWallet | null;
  try {
    replaced = await walletOutbox.writeWithEvent(
      ctx,
      { ...guard?.valuesRead(wallet), _id: wallet._id, status: { $in: from } },
      {
        $set: {
          status: to,
          pause_reason: pauseReason,
          live_key: LIVE_STATUSES.includes(to) ? wallet.credential_id : wallet._id,
          // A user's change (their own pause or resume, or a credential they deactivated) and the
          // service's are in the agents' change feed; an agent's own pause or resume is not.
          ...(ctx.actor.kind === 'agent' ? {} : userChanged()),
        },
      },
      provisional,
      complete,
    );
  } catch (error) {
    // Only a wallet going live can collide on live_key (a live one already holds its credential's
    // id).
    if (LIVE_STATUSES.includes(to) && isDuplicateKeyError(error))
      throw new ConflictError(
        'another live wallet already uses this credential: pause or delete it first',
      );
    throw error;
  }
  if (replaced) {
    const wasLive = LIVE_STATUSES.includes(replaced.status);
    if (LIVE_STATUSES.includes(to) && !wasLive) await scheduleChecks(ctx, wallet.credential_id);
    if (!LIVE_STATUSES.includes(to) && wasLive)
      await unscheduleChecks(ctx, credentialWallets, wallet.credential_id);
    // The credential may have been refused between the check above and this write.
    if (to === WalletStatus.ACTIVE) await pauseIfCredentialRefused(ctx, wallet.credential_id);
  }
  return replaced;
}

function transitionRefusal(current: WalletStatus, to: WalletStatus): string {
  if (current === to) return `the wallet is already ${current.toUpperCase()}`;
  if (current === WalletStatus.USER_PAUSED)
    return 'the user paused this wallet: only the user can change that';
  return `a ${current.toUpperCase()} wallet can't become ${to.toUpperCase()} this way`;
}

/**
 * A wallet trades only on an active credential the exchange has not refused, of an active exchange.
 */
export async function assertCanGoLive(
  ctx: OutboxContext,
  wallet: Pick<UserWallet, 'credential_id' | 'wallet_id'>,
): Promise<void> {
  const [credential, definition] = await Promise.all([
    findCredential<Pick<Credential, 'is_active' | 'connection_state'>>(ctx, wallet.credential_id, {
      is_active: 1,
      connection_state: 1,
    }),
    findDefinition<Pick<WalletDefinition, 'is_active' | 'name'>>(ctx, wallet.wallet_id, {
      is_active: 1,
      name: 1,
    }),
  ]);
  if (!credential?.is_active)
    throw new UserInputError("the wallet's credential is not active", 'credentialId');
  if (!definition?.is_active)
    throw new UserInputError(`${definition?.name ?? 'the exchange'} is not active`, 'credentialId');
  if (credential.connection_state === ConnectionState.REJECTED)
    throw new ConflictError(TEST_AGAIN_FIRST);
}

/**
 * The service's own pause, whoever's test found the key refused: every live wallet on the
 * credential goes AI_PAUSED, as the risk limit pauses one, with why ("the exchange refused this
 * wallet's credential: <the test's message>") and one STATUS_CHANGED event each by the service
 * (Role.SYSTEM, "wallet-service"), logged and tagged in the context of the request or job whose
 * test found it. A wallet already paused for that very reason is left alone. Returns how many it
 * paused.
 */
export async function pauseWalletsOfRefusedCredential(
  ctx: OutboxContext,
  credential: Pick<Credential, '_id'>,
  message: string,
): Promise<number> {
  const reason = `${REFUSED_CREDENTIAL}: ${message}`;
  const filter = {
    credential_id: credential._id,
    status: { $in: LIVE_STATUSES },
    pause_reason: { $ne: reason },
  };
  const wallets = await UserWalletModel.find(filter, { _id: 1 })
    .setOptions(dbOptions(ctx))
    .lean<Array<Pick<UserWallet, '_id'>>>();
  let paused = 0;
  for (const wallet of wallets) {
    const { provisional, complete } = statusChangeEvent({
      actor: SYSTEM_ACTOR,
      walletId: wallet._id,
      to: WalletStatus.AI_PAUSED,
      pauseReason: reason,
    });
    // Still live (an AI_PAUSED wallet stays live): live_key is unchanged.
    // The agents' change feed shows it (userChanged): they did not pause it themselves.
    const update = {
      $set: { status: WalletStatus.AI_PAUSED, pause_reason: reason, ...userChanged() },
    };
    const replaced = await walletOutbox.writeWithEvent(
      ctx,
      { ...filter, _id: wallet._id },
      update,
      provisional,
      complete,
    );
    if (replaced) {
      paused += 1;
      metrics.statusChanges.inc({ to: WalletStatus.AI_PAUSED });
    }
  }
  if (paused > 0)
    ctx.logger.warn(
      { credentialId: credential._id.toHexString(), paused },
      'wallets paused: the exchange refused their credential',
    );
  return paused;
}

/**
 * After a wallet went live: if its credential is REJECTED by now, it is paused as any other of it.
 */
export async function pauseIfCredentialRefused(
  ctx: OutboxContext,
  credentialId: Credential['_id'],
): Promise<void> {
  const credential = await findCredential<
    Pick<Credential, '_id' | 'connection_state' | 'connection_error'>
  >(ctx, credentialId, { connection_state: 1, connection_error: 1 });
  if (credential?.connection_state !== ConnectionState.REJECTED) return;
  await pauseWalletsOfRefusedCredential(
    ctx,
    credential,
    credential.connection_error ?? 'the connection test failed',
  );
}

/**
 * What the credentials module asks of the wallets on a credential (credentials/credential-link.ts),
 * answered here: app/lifecycle.ts hands it to the credentials' services.
 */
export const credentialWallets: CredentialWallets = {
  async hasLive(ctx, credentialId) {
    const live = await UserWalletModel.exists({
      credential_id: credentialId,
      status: { $in: LIVE_STATUSES },
    }).setOptions(dbOptions(ctx));
    return Boolean(live);
  },

  async hasAny(ctx, credentialId) {
    const used = await UserWalletModel.exists({ credential_id: credentialId }).setOptions(
      dbOptions(ctx),
    );
    return Boolean(used);
  },

  async pauseLive(ctx, credentialId, reason) {
    const live = await UserWalletModel.findOne({
      credential_id: credentialId,
      status: { $in: LIVE_STATUSES },
    })
      .setOptions(dbOptions(ctx))
      .lean<UserWallet>()
      .exec();
    if (!live) return;
    await transition(ctx, live, LIVE_STATUSES, WalletStatus.USER_PAUSED, reason);
  },

  pauseRefused: pauseWalletsOfRefusedCredential,
};
