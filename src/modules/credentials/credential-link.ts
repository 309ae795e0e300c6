import type { Types } from 'mongoose';
import { dbOptions, type RequestContext } from '../../core/context';
import { LIVE_STATUSES, UserWalletModel, type UserWallet } from '../wallets/user-wallet.model';
import { CredentialModel, type Credential } from './credential.model';

/*
 * The link between a credential and the user wallets on it, in one place: which live wallets use a
 * credential; the service's re-tests of it while one does; and the grace of its deletion.
 *
 * `next_check_at`, the scheduler's queue, is `check_due_at` (when the last test said the next one
 * is due: see checkDelayMs in credential-check-scheduler.ts) while a live wallet uses the credential and null otherwise: the wallet
 * writes that change liveness call scheduleChecks and unscheduleChecks, after their own write.
 *
 * Each function takes the context of the request or job it works for, and reads only its database
 * comment (a user's wallet going live, the scheduler's own re-tests).
 */
type LinkContext = Pick<RequestContext, 'comment'>;

/**
 * A credential whose deletion began this recently counts as being deleted: CredentialService.delete
 * marks it (deleting_at) before it looks for wallets, and UserWalletService.create looks for the
 * mark after its own write, so one of the two always sees the other. An older mark is a delete that
 * stopped midway.
 */
export const DELETION_GRACE_MS = 60_000;

/** Whether a live wallet uses the credential (at most one can: live_key is unique). */
export async function hasLiveWallet(
  ctx: LinkContext,
  credentialId: Types.ObjectId,
): Promise<boolean> {
  const live = await UserWalletModel.exists({
    credential_id: credentialId,
    status: { $in: LIVE_STATUSES },
  }).setOptions(dbOptions(ctx));
  return Boolean(live);
}

/** The live wallet on the credential, if any. */
export function liveWalletOf(
  ctx: LinkContext,
  credentialId: Types.ObjectId,
): Promise<UserWallet | null> {
  return UserWalletModel.findOne({ credential_id: credentialId, status: { $in: LIVE_STATUSES } })
    .setOptions(dbOptions(ctx))
    .lean<UserWallet>()
    .exec();
}

/** Whether any wallet, live or not, uses the credential: it may not be deleted while one does. */
export async function hasWallet(ctx: LinkContext, credentialId: Types.ObjectId): Promise<boolean> {
  const used = await UserWalletModel.exists({ credential_id: credentialId }).setOptions(
    dbOptions(ctx),
  );
  return Boolean(used);
}

/**
 * A live wallet now uses the credential: its tests go on from when the last one said, or start at
 * once when it was never tested (or is overdue).
 */
export async function scheduleChecks(
  ctx: LinkContext,
  credentialId: Types.ObjectId,
): Promise<void> {
  const tagged = dbOptions(ctx);
  const credential = await CredentialModel.findById(credentialId, {
    check_due_at: 1,
    next_check_at: 1,
  })
    .setOptions(tagged)
    .lean<Pick<Credential, '_id' | 'check_due_at' | 'next_check_at'>>();
  if (!credential || credential.next_check_at != null) return;
  const now = Date.now();
  const due =
    credential.check_due_at && credential.check_due_at.getTime() > now
      ? credential.check_due_at
      : new Date(now);
  await CredentialModel.updateOne(
    { _id: credentialId, next_check_at: null },
    { $set: { next_check_at: due } },
    { timestamps: false, ...tagged },
  );
}

/**
 * No live wallet uses the credential any more. Cleared first, then looked again: a wallet going
 * live meanwhile wrote itself before scheduling, so either this sees it or its schedule comes
 * after.
 */
export async function unscheduleChecks(
  ctx: LinkContext,
  credentialId: Types.ObjectId,
): Promise<void> {
  const cleared = await CredentialModel.updateOne(
    { _id: credentialId, next_check_at: { $ne: null } },
    { $set: { next_check_at: null } },
    { timestamps: false, ...dbOptions(ctx) },
  );
  if (cleared.matchedCount === 0) return;
  if (await hasLiveWallet(ctx, credentialId)) await scheduleChecks(ctx, credentialId);
}

/**
 * A test moved the credential's due time: so does its place in the queue, if it has one. True when
 * it had.
 */
export async function rescheduleChecks(
  ctx: LinkContext,
  credentialId: Types.ObjectId,
  due: Date,
): Promise<boolean> {
  const moved = await CredentialModel.updateOne(
    { _id: credentialId, next_check_at: { $ne: null } },
    { $set: { next_check_at: due } },
    { timestamps: false, ...dbOptions(ctx) },
  );
  return moved.matchedCount > 0;
}
