import { Types } from 'mongoose';
import { activeTraceIds } from '../../core/tracing';
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

/** What an event records: who changed which wallet, how, and the changed fields around it. */
export interface WalletEventOptions {
  actor: Actor;
  walletId: Types.ObjectId;
  /** The wallet's version the change produces; null while only its write can tell. */
  version: number | null;
  kind: WalletEventKind;
  /** The changed fields before and after, in the API's names (api-names.ts). */
  before: Record<string, unknown> | null;
  after: Record<string, unknown> | null;
}

/** One event, ready to go into the update that makes the change. */
export function walletEvent({
  actor,
  walletId,
  version,
  kind,
  before,
  after,
}: WalletEventOptions): WalletEventRecord {
  const trace = activeTraceIds();
  return {
    _id: new Types.ObjectId(),
    wallet_id: walletId,
    kind,
    ...actorOf(actor),
    before,
    after,
    version,
    at: new Date(),
    ...(trace ? { trace } : {}),
  };
}

/**
 * A status change's provisional event, and how writeWithEvent completes it from the document it
 * replaced.
 */
export function statusChangeEvent({
  actor,
  walletId,
  to,
  pauseReason,
}: {
  actor: Actor;
  walletId: Types.ObjectId;
  to: WalletStatus;
  pauseReason: string | null;
}): { provisional: WalletEventRecord; complete: (replaced: UserWallet) => WalletEventRecord } {
  const provisional = walletEvent({
    actor,
    walletId,
    version: null,
    kind: WalletEventKind.STATUS_CHANGED,
    before: null,
    after: apiStatus(to, pauseReason),
  });
  return {
    provisional,
    complete: (replaced) => ({
      ...provisional,
      version: replaced.version + 1,
      before: apiStatus(replaced.status, replaced.pause_reason),
    }),
  };
}
