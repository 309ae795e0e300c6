import { SYSTEM_ACTOR, type Actor } from '../auth/roles';
import {
  ConflictError,
  NotFoundError,
  UserInputError,
  isDuplicateKeyError,
} from '../../core/errors';
import type { Logger } from '../../core/logger';
import { metrics } from '../../core/metrics';
import { commentOption } from '../../shared/background';
import { scheduleChecks, unscheduleChecks } from '../credentials/credential-link';
import { ConnectionState, CredentialModel, type Credential } from '../credentials/credential.model';
import { WalletDefinitionModel, type WalletDefinition } from '../catalog/wallet-definition.model';
import { statusChangeEvent, writeWithEvent } from './user-wallet-events';
import {
  LIVE_STATUSES,
  userChanged,
  UserWalletModel,
  WalletStatus,
  type UserWallet,
} from './user-wallet.model';

/**
 * The pause reason of a wallet whose credential the exchange refused, before the test's own
 * message.
 */
export const REFUSED_CREDENTIAL = "the exchange refused this wallet's credential";
export const TEST_AGAIN_FIRST = `${REFUSED_CREDENTIAL}: test the credential again first`;

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
  logger: Logger,
  principal: Actor,
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
    const replaced = await writeTransition(logger, principal, wallet, from, to, pauseReason, guard);
    const now = await UserWalletModel.findById(wallet._id).lean<UserWallet>();
    if (!now) throw new NotFoundError('no wallet with that id');
    if (replaced) {
      metrics.statusChanges.inc({ to });
      return now;
    }
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
  logger: Logger,
  principal: Actor,
  wallet: UserWallet,
  from: readonly WalletStatus[],
  to: WalletStatus,
  pauseReason: string | null,
  guard: TransitionGuard | undefined,
): Promise<UserWallet | null> {
  if (to === WalletStatus.ACTIVE) await assertCanGoLive(wallet);
  const { provisional, complete } = statusChangeEvent(principal, wallet._id, to, pauseReason);
  let replaced: UserWallet | null;
  try {
    replaced = await writeWithEvent(
      logger,
      { ...guard?.valuesRead(wallet), _id: wallet._id, status: { $in: from } },
      {
        $set: {
          status: to,
          pause_reason: pauseReason,
          live_key: LIVE_STATUSES.includes(to) ? wallet.credential_id : wallet._id,
          // A user's change (their own pause or resume, or a credential they deactivated) and the
          // service's are in the agents' change feed; an agent's own pause or resume is not.
          ...(principal.kind === 'agent' ? {} : userChanged()),
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
    if (LIVE_STATUSES.includes(to) && !wasLive)
      await scheduleChecks({ comment: undefined }, wallet.credential_id);
    if (!LIVE_STATUSES.includes(to) && wasLive)
      await unscheduleChecks({ comment: undefined }, wallet.credential_id);
    // The credential may have been refused between the check above and this write.
    if (to === WalletStatus.ACTIVE) await pauseIfCredentialRefused(logger, wallet.credential_id);
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
  wallet: Pick<UserWallet, 'credential_id' | 'wallet_id'>,
): Promise<void> {
  const [credential, definition] = await Promise.all([
    CredentialModel.findById(wallet.credential_id, { is_active: 1, connection_state: 1 }).lean<
      Pick<Credential, 'is_active' | 'connection_state'>
    >(),
    WalletDefinitionModel.findById(wallet.wallet_id, { is_active: 1, name: 1 }).lean<
      Pick<WalletDefinition, 'is_active' | 'name'>
    >(),
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
 * (Role.SYSTEM, "wallet-service"). A wallet already paused for that very reason is left alone.
 * Returns how many it paused.
 */
export async function pauseWalletsOfRefusedCredential(
  logger: Logger,
  credential: Pick<Credential, '_id'>,
  message: string,
  comment?: string,
): Promise<number> {
  const reason = `${REFUSED_CREDENTIAL}: ${message}`;
  const filter = {
    credential_id: credential._id,
    status: { $in: LIVE_STATUSES },
    pause_reason: { $ne: reason },
  };
  const wallets = await UserWalletModel.find(filter, { _id: 1 })
    .setOptions(commentOption(comment))
    .lean<Array<Pick<UserWallet, '_id'>>>();
  let paused = 0;
  for (const wallet of wallets) {
    const { provisional, complete } = statusChangeEvent(
      SYSTEM_ACTOR,
      wallet._id,
      WalletStatus.AI_PAUSED,
      reason,
    );
    // Still live (an AI_PAUSED wallet stays live): live_key is unchanged.
    // The agents' change feed shows it (userChanged): they did not pause it themselves.
    const update = {
      $set: { status: WalletStatus.AI_PAUSED, pause_reason: reason, ...userChanged() },
    };
    const replaced = await writeWithEvent(
      logger,
      { ...filter, _id: wallet._id },
      update,
      provisional,
      complete,
      comment,
    );
    if (replaced) {
      paused += 1;
      metrics.statusChanges.inc({ to: WalletStatus.AI_PAUSED });
    }
  }
  if (paused > 0)
    logger.warn(
      { credentialId: credential._id.toHexString(), paused },
      'wallets paused: the exchange refused their credential',
    );
  return paused;
}

/**
 * After a wallet went live: if its credential is REJECTED by now, it is paused as any other of it.
 */
export async function pauseIfCredentialRefused(
  logger: Logger,
  credentialId: Credential['_id'],
): Promise<void> {
  const credential = await CredentialModel.findById(credentialId, {
    connection_state: 1,
    connection_error: 1,
  }).lean<Pick<Credential, '_id' | 'connection_state' | 'connection_error'>>();
  if (credential?.connection_state !== ConnectionState.REJECTED) return;
  await pauseWalletsOfRefusedCredential(
    logger,
    credential,
    credential.connection_error ?? 'the connection test failed',
  );
}
