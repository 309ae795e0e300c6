import { Types } from 'mongoose';
import { actorName, type Actor } from '../auth/roles';
import type { UserWallet, WalletStatus } from '../wallets/user-wallet.model';
import { apiStatus } from './api-names';
import { WalletEventKind, type WalletEventRecord } from './user-wallet-event.model';

/**
 * Who did it, as the audit trail names them: a user by id, an agent by its token's name, the
 * service as wallet-service.
 */
function actorOf(actor: Actor): {
  actor: string;
  actor_role: Actor['role'];
  actor_id: Types.ObjectId;
} {
  // Agent names are not unique: the token's own id is kept beside the name.
  const id =
    actor.kind === 'user' ? actor.userId : actor.kind === 'agent' ? actor.agentId : actor.id;
  return { actor: actorName(actor), actor_role: actor.role, actor_id: id };
}

/**
 * One event, ready to go into the update that makes the change; `version` is the one it produces.
 */
export function walletEvent(
  principal: Actor,
  walletId: Types.ObjectId,
  version: number | null,
  kind: WalletEventKind,
  before: Record<string, unknown> | null,
  after: Record<string, unknown> | null,
): WalletEventRecord {
  return {
    _id: new Types.ObjectId(),
    wallet_id: walletId,
    kind,
    ...actorOf(principal),
    before,
    after,
    version,
    at: new Date(),
  };
}

/**
 * A status change's provisional event, and how writeWithEvent completes it from the document it
 * replaced.
 */
export function statusChangeEvent(
  principal: Actor,
  walletId: Types.ObjectId,
  to: WalletStatus,
  pauseReason: string | null,
): { provisional: WalletEventRecord; complete: (replaced: UserWallet) => WalletEventRecord } {
  const provisional = walletEvent(
    principal,
    walletId,
    null,
    WalletEventKind.STATUS_CHANGED,
    null,
    apiStatus(to, pauseReason),
  );
  return {
    provisional,
    complete: (replaced) => ({
      ...provisional,
      version: replaced.version + 1,
      before: apiStatus(replaced.status, replaced.pause_reason),
    }),
  };
}
