import type { Principal } from '../../auth/roles';
import { ConflictError, NotFoundError, UserInputError, isDuplicateKeyError } from '../../errors';
import type { Logger } from '../../logger';
import { metrics } from '../../metrics';
import { CredentialModel, type Credential } from '../credentials/credential.model';
import { WalletDefinitionModel, type WalletDefinition } from '../wallet-definitions/wallet-definition.model';
import { statusChangeEvent, writeWithEvent } from './user-wallet-events';
import { LIVE_STATUSES, userChanged, UserWalletModel, WalletStatus, type UserWallet } from './user-wallet.model';

/**
 * Status changes, for users and agents alike: one update conditional on the status it starts from
 * (not on the version: a user's pause must land however busy the agents are), so two requests
 * can't both make the same transition. Going live writes the credential's id into live_key, where
 * the unique index lets one live wallet per credential through.
 */
export async function transition(
  logger: Logger,
  principal: Principal,
  wallet: UserWallet,
  from: readonly WalletStatus[],
  to: WalletStatus,
  pauseReason: string | null,
): Promise<UserWallet> {
  if (to === WalletStatus.ACTIVE) await assertCanGoLive(wallet);
  const { provisional, complete } = statusChangeEvent(principal, wallet._id, to, pauseReason);
  let replaced: UserWallet | null;
  try {
    replaced = await writeWithEvent(
      logger,
      { _id: wallet._id, status: { $in: from } },
      {
        $set: {
          status: to,
          pause_reason: pauseReason,
          live_key: LIVE_STATUSES.includes(to) ? wallet.credential_id : wallet._id,
          // A user's change (their own pause or resume, or a credential they deactivated) is in the
          // agents' change feed; an agent's own pause or resume is not.
          ...(principal.kind === 'user' ? userChanged() : {}),
        },
      },
      provisional,
      complete,
    );
  } catch (error) {
    // Only a wallet going live can collide on live_key (a live one already holds its credential's id).
    if (LIVE_STATUSES.includes(to) && isDuplicateKeyError(error)) throw new ConflictError('another live wallet already uses this credential: pause or delete it first');
    throw error;
  }
  const now = await UserWalletModel.findById(wallet._id).lean<UserWallet>();
  if (!now) throw new NotFoundError('no wallet with that id');
  if (!replaced) throw new ConflictError(transitionRefusal(now.status, to));
  metrics.statusChanges.inc({ to });
  return now;
}

function transitionRefusal(current: WalletStatus, to: WalletStatus): string {
  if (current === to) return `the wallet is already ${current.toUpperCase()}`;
  if (current === WalletStatus.USER_PAUSED) return 'the user paused this wallet: only the user can change that';
  return `a ${current.toUpperCase()} wallet can't become ${to.toUpperCase()} this way`;
}

/** A wallet trades only on an active credential of an active exchange. */
export async function assertCanGoLive(wallet: Pick<UserWallet, 'credential_id' | 'wallet_id'>): Promise<void> {
  const [credential, definition] = await Promise.all([
    CredentialModel.findById(wallet.credential_id, { is_active: 1 }).lean<Pick<Credential, 'is_active'>>(),
    WalletDefinitionModel.findById(wallet.wallet_id, { is_active: 1, name: 1 }).lean<Pick<WalletDefinition, 'is_active' | 'name'>>(),
  ]);
  if (!credential?.is_active) throw new UserInputError("the wallet's credential is not active", 'credentialId');
  if (!definition?.is_active) throw new UserInputError(`${definition?.name ?? 'the exchange'} is not active`, 'credentialId');
}
