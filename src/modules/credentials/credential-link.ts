import { Types } from 'mongoose';
import { dbOptions, type RequestContext, type UserContext } from '../../core/context';
import { ConflictError } from '../../core/errors';
import type { CheckKind } from '../../exchanges/types';
import { CredentialModel, Environment, type Credential } from './credential.model';

/*
 * The link between a credential and the user wallets on it, in one place. A wallet names its
 * credential (`credential_id`); a live one (ACTIVE or AI_PAUSED) also holds it in `live_key`,
 * unique, so at most one live wallet uses a credential. What the credentials module must know of
 * those wallets, or have done to them, the wallets module answers through CredentialWallets below,
 * handed over at start-up (app/lifecycle.ts): this module imports nothing of theirs.
 *
 * The service's re-tests. `next_check_at`, the scheduler's queue, is `check_due_at` (when the last
 * test said the next one is due: see checkDelayMs below) while a live
 * wallet uses the credential, and null otherwise. The wallet write that makes a wallet live calls
 * scheduleChecks after its own write, and the one that ends its liveness (a pause by its user, a
 * delete) unscheduleChecks after its own write: that clears first and then asks whether a live
 * wallet remains, so a wallet going live meanwhile is never left out of the queue. A test's outcome
 * moves the credential's place in the queue in the write that records it (recordOutcome); the
 * scheduler drops one that no live wallet uses any more.
 *
 * Deletion, without a transaction. The credential's delete (deleteUnlessUsed) marks it first
 * (`deleting_at`, with a token of its own), then asks whether a wallet uses it, then deletes it by
 * its token. A wallet's creation (UserWalletService.create) writes the wallet first, then looks
 * for a mark (assertCredentialStays) and takes the wallet back if it finds one. Each writes before
 * it looks, so one of the two always sees the other. A mark counts for DELETION_GRACE_MS only: an
 * older one is a delete that stopped midway, which must not keep the credential from wallets for
 * ever.
 *
 * The wallets on a changed credential. Its user deactivating it pauses its live wallet as that user
 * would (CredentialWallets.pauseLive); the exchange refusing its key pauses every live wallet on it
 * as the service (CredentialWallets.pauseRefused, from the connection test's record), and a wallet
 * going live looks at the credential again after its own write (the wallets'
 * pauseIfCredentialRefused), so none goes on trading on a refused key.
 *
 * Each function takes the context of the request or job it works for, and reads only its database
 * comment (a user's wallet going live, the scheduler's own re-tests).
 */
type LinkContext = Pick<RequestContext, 'comment'>;

/** What the credentials module asks of the wallets on a credential (the wallets module answers). */
export interface CredentialWallets {
  /** Whether a live wallet uses the credential (at most one can: live_key is unique). */
  hasLive(ctx: LinkContext, credentialId: Types.ObjectId): Promise<boolean>;
  /** Whether any wallet, live or not, uses the credential: it may not be deleted while one does. */
  hasAny(ctx: LinkContext, credentialId: Types.ObjectId): Promise<boolean>;
  /** Its user deactivated the credential: its live wallet, if any, pauses as by that user. */
  pauseLive(ctx: UserContext, credentialId: Types.ObjectId, reason: string): Promise<void>;
  /**
   * The exchange refused the credential: every live wallet on it pauses, as by the service, in the
   * context of the request or job whose test found it. Returns how many it paused.
   */
  pauseRefused(
    ctx: Pick<RequestContext, 'logger' | 'comment'>,
    credential: Pick<Credential, '_id'>,
    message: string,
  ): Promise<number>;
}

/**
 * A credential whose deletion began this recently counts as being deleted (see above): an older
 * mark is a delete that stopped midway.
 */
export const DELETION_GRACE_MS = 60_000;

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
    environment: 1,
  })
    .setOptions(tagged)
    .lean<Pick<Credential, '_id' | 'check_due_at' | 'next_check_at' | 'environment'>>();
  // A paper credential has nothing to re-test: it never joins the queue.
  if (!credential || credential.next_check_at != null) return;
  if (credential.environment === Environment.PAPER) return;
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
 * No live wallet uses the credential any more, as far as the caller's write knows. Cleared first,
 * then asked again: a wallet going live meanwhile wrote itself before scheduling, so either this
 * sees it or its schedule comes after.
 */
export async function unscheduleChecks(
  ctx: LinkContext,
  wallets: Pick<CredentialWallets, 'hasLive'>,
  credentialId: Types.ObjectId,
): Promise<void> {
  const cleared = await CredentialModel.updateOne(
    { _id: credentialId, next_check_at: { $ne: null } },
    { $set: { next_check_at: null } },
    { timestamps: false, ...dbOptions(ctx) },
  );
  if (cleared.matchedCount === 0) return;
  if (await wallets.hasLive(ctx, credentialId)) await scheduleChecks(ctx, credentialId);
}

/**
 * A test's outcome (`set`) recorded on the credential at the version tested, and its place in the
 * queue, if it has one, moved to the outcome's due time in the same write: no reader sees the one
 * without the other (a passing test beside the end of its lease). Whether it has a place is each
 * write's own filter; one that changes between the two (a wallet going live or ending) is tried
 * again, three times at most. Null when the credential is no longer at that version, or when its
 * place kept changing that long: the outcome is then not recorded, as for another version.
 */
export async function recordOutcome(
  ctx: LinkContext,
  credential: Pick<Credential, '_id' | 'version'>,
  set: Partial<Credential>,
  due: Date,
): Promise<Credential | null> {
  const tagged = dbOptions(ctx);
  const tested = { _id: credential._id, version: credential.version };
  for (let attempt = 0; attempt < 3; attempt++) {
    const queued = await CredentialModel.findOneAndUpdate(
      { ...tested, next_check_at: { $ne: null } },
      { $set: { ...set, next_check_at: due } },
      { returnDocument: 'after', ...tagged },
    ).lean<Credential>();
    if (queued) return queued;
    const unqueued = await CredentialModel.findOneAndUpdate(
      { ...tested, next_check_at: null },
      { $set: set },
      { returnDocument: 'after', ...tagged },
    ).lean<Credential>();
    if (unqueued) return unqueued;
    if (!(await CredentialModel.exists(tested).setOptions(tagged))) return null;
  }
  return null;
}

/**
 * The credential's side of a deletion: marks it, asks whether a wallet uses it, and deletes it by
 * its own mark. CONFLICT, its mark cleared again, while a wallet does. False when there was nothing
 * of its own left to delete (another request's mark, or a delete, came in between).
 */
export async function deleteUnlessUsed(
  ctx: UserContext,
  wallets: Pick<CredentialWallets, 'hasAny'>,
  credential: Pick<Credential, '_id' | 'user_id'>,
): Promise<boolean> {
  // Each delete marks with a token of its own, so one request never clears or uses another's
  // mark.
  const token = new Types.ObjectId();
  await CredentialModel.updateOne(
    { _id: credential._id },
    { $set: { deleting_at: new Date(), deleting_token: token } },
    { timestamps: false, ...dbOptions(ctx) },
  );
  if (await wallets.hasAny(ctx, credential._id)) {
    await CredentialModel.updateOne(
      { _id: credential._id, deleting_token: token },
      { $set: { deleting_at: null, deleting_token: null } },
      { timestamps: false, ...dbOptions(ctx) },
    );
    throw new ConflictError('a wallet still uses this credential: delete the wallet first');
  }
  const { deletedCount } = await CredentialModel.deleteOne(
    { _id: credential._id, user_id: credential.user_id, deleting_token: token },
    dbOptions(ctx),
  );
  return deletedCount > 0;
}

/**
 * The wallet's side of a deletion, right after the wallet on the credential was written: a
 * credential being deleted may have asked for wallets just before. Looking for its mark after the
 * write closes that gap; if it is there, the wallet is taken back (`takeBack`) and CONFLICT.
 */
export async function assertCredentialStays(
  ctx: LinkContext,
  credentialId: Types.ObjectId,
  takeBack: () => Promise<unknown>,
): Promise<void> {
  const stays = await CredentialModel.exists({
    _id: credentialId,
    $or: [
      { deleting_at: null },
      { deleting_at: { $lt: new Date(Date.now() - DELETION_GRACE_MS) } },
    ],
  }).setOptions(dbOptions(ctx));
  if (stays) return;
  await takeBack();
  throw new ConflictError('the credential is being deleted');
}

/*
 * When the service tests a credential by itself (docs/api.md, "The re-test schedule"). Each test's
 * outcome sets `check_due_at`: the interval after a test that passed or was refused, a tenth of it
 * after an UNREACHABLE one, doubling with each further one up to the interval; ±10 % jitter on
 * all, and never later than the key's expiry the exchange told (checkDueAt). The credential is in
 * the queue (next_check_at) while a live wallet uses it.
 */
const JITTER = 0.1;

/**
 * ms until the next test after an outcome; `failures` counts consecutive UNREACHABLE ones, this one
 * included.
 */
export function checkDelayMs(kind: CheckKind, failures: number, intervalMs: number): number {
  // An untestable definition is no exchange outage: testing sooner can't help until an admin
  // changes it.
  const base =
    kind === 'unreachable'
      ? Math.min(intervalMs, (intervalMs / 10) * 2 ** Math.max(0, failures - 1))
      : intervalMs;
  return Math.round(base * (1 - JITTER + Math.random() * 2 * JITTER));
}

/**
 * When the next test is due after one recorded at `testedAt`: after `delayMs` (checkDelayMs), or at
 * the key's expiry if that comes first, so the test that finds it expired, and pauses the live
 * wallets on it, runs as trading on it stops. A test that `passed` heard the key live, so an expiry
 * already past when it is recorded fell during the test: the next one is due at once.
 */
export function checkDueAt(
  testedAt: Date,
  delayMs: number,
  keyExpiresAt: Date | null,
  passed: boolean,
): Date {
  const now = testedAt.getTime();
  const due = now + delayMs;
  const expiry = keyExpiresAt?.getTime() ?? Infinity;
  if (expiry >= due) return new Date(due);
  if (expiry > now) return new Date(expiry);
  return new Date(passed ? now : due);
}
