import { randomInt } from 'node:crypto';
import type { Model, Types } from 'mongoose';
import { ConflictError, UserInputError, isDuplicateKeyError } from '../core/errors';

/**
 * Per-user caps, held by the database: each capped document takes a slot `<user id>:<n>` with n
 * below the cap, under a unique (sparse) index, so however many creates run at once no user gets
 * more than `cap` of them. A delete frees its slot. Documents from before the caps have none; they
 * still count against a new one.
 */
export interface CappedDocument {
  user_id: Types.ObjectId;
  cap_slot?: string;
}

const ATTEMPTS = 10;

/** Whether a duplicate-key error is on the cap_slot index (and not, say, on live_key). */
export function isCapSlotCollision(error: unknown): boolean {
  if (!isDuplicateKeyError(error)) return false;
  const { keyPattern, message } = error as {
    keyPattern?: Record<string, unknown>;
    message?: string;
  };
  return keyPattern ? 'cap_slot' in keyPattern : /cap_slot/.test(message ?? '');
}

/**
 * Runs `insert` with a free slot of `userId`'s, retrying when another request took the same slot
 * meanwhile. BAD_USER_INPUT naming the cap when the user has `cap` documents already.
 */
export async function insertWithinCap<T>(
  model: Model<CappedDocument>,
  userId: Types.ObjectId,
  cap: number,
  what: string,
  insert: (slot: string) => Promise<T>,
): Promise<T> {
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    const owned = await model
      .find({ user_id: userId }, { cap_slot: 1 })
      .lean<Array<Pick<CappedDocument, 'cap_slot'>>>();
    if (owned.length >= cap) throw capReached(cap, what);
    const taken = new Set(owned.map((d) => d.cap_slot));
    const free = Array.from({ length: cap }, (_, n) => `${userId.toHexString()}:${n}`).filter(
      (slot) => !taken.has(slot),
    );
    if (free.length === 0) throw capReached(cap, what);
    // A random free slot: creates running at once rarely pick the same one.
    try {
      return await insert(free[randomInt(free.length)]);
    } catch (error) {
      if (!isCapSlotCollision(error)) throw error;
    }
  }
  throw new ConflictError(`too many ${what} created at once: try again`);
}

function capReached(cap: number, what: string): UserInputError {
  return new UserInputError(`at most ${cap} ${what} per user: delete one first`);
}
