import type { Principal } from '../../auth/roles';
import { ConflictError, NotFoundError, UserInputError, isDuplicateKeyError } from '../../errors';
import type { Logger } from '../../logger';
import { CredentialModel, type Credential } from '../credentials/credential.model';
import { WalletDefinitionModel, type WalletDefinition } from '../wallet-definitions/wallet-definition.model';
import { apiStatus, deliverEvents, pushEvents, walletEvent, WalletEventKind } from './user-wallet-events';
import { LIVE_STATUSES, UserWalletModel, WalletStatus, type UserWallet } from './user-wallet.model';

/** Agents may write a wallet many times a second; a status change reads again and retries. */
const ATTEMPTS = 10;

/**
 * Status changes, for users and agents alike: one conditional update on the status it starts
 * from and on the version read (the update carries its audit event, which names that version), so
 * two requests can't both make the same transition. A write in between only makes it read again.
 * Going live writes the credential's id into live_key, where the unique index lets one live
 * wallet per credential through.
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
  let seen: UserWallet | null = wallet;
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    if (!seen) throw new NotFoundError('no wallet with that id');
    if (!from.includes(seen.status)) throw new ConflictError(transitionRefusal(seen.status, to));
    const goingLive = LIVE_STATUSES.includes(to) && !LIVE_STATUSES.includes(seen.status);
    const event = walletEvent(principal, seen._id, seen.version + 1, WalletEventKind.STATUS_CHANGED, apiStatus(seen.status, seen.pause_reason), apiStatus(to, pauseReason));
    let updated: UserWallet | null;
    try {
      updated = await UserWalletModel.findOneAndUpdate(
        { _id: seen._id, status: seen.status, version: seen.version },
        {
          $set: { status: to, pause_reason: pauseReason, live_key: LIVE_STATUSES.includes(to) ? seen.credential_id : seen._id },
          $inc: { version: 1 },
          ...pushEvents([event]),
        },
        { returnDocument: 'after' },
      ).lean<UserWallet>();
    } catch (error) {
      if (goingLive && isDuplicateKeyError(error)) throw new ConflictError('another live wallet already uses this credential: pause or delete it first');
      throw error;
    }
    if (updated) {
      await deliverEvents(logger, updated._id, [event]);
      return updated;
    }
    seen = await UserWalletModel.findById(wallet._id).lean<UserWallet>();
  }
  throw new ConflictError('the wallet kept changing; try again');
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
