import { Types } from 'mongoose';
import { UserInputError } from '../core/errors';

/*
 * Opaque page cursors: base64url of the sort key of the last node. A cursor is the node's own
 * position, not an offset, so nodes arriving or moving meanwhile never shift a page.
 */

/** A cursor on _id alone (managedWallets). */
export function encodeIdCursor(id: Types.ObjectId): string {
  return Buffer.from(id.toHexString(), 'hex').toString('base64url');
}

export function decodeIdCursor(cursor: string, field = 'after'): Types.ObjectId {
  const hex = Buffer.from(cursor, 'base64url').toString('hex');
  if (!/^[0-9a-f]{24}$/.test(hex) || encodeIdCursor(new Types.ObjectId(hex)) !== cursor)
    throw new UserInputError('not a cursor from this list', field);
  return new Types.ObjectId(hex);
}

/** A position in an order on (a time, _id): the change feed and the audit trail. */
export interface TimeCursor {
  at: Date;
  id: Types.ObjectId;
}

export function encodeTimeCursor(at: Date, id: Types.ObjectId): string {
  const bytes = Buffer.alloc(20);
  bytes.writeBigInt64BE(BigInt(at.getTime()), 0);
  Buffer.from(id.toHexString(), 'hex').copy(bytes, 8);
  return bytes.toString('base64url');
}

export function decodeTimeCursor(cursor: string, field = 'after'): TimeCursor {
  const bytes = Buffer.from(cursor, 'base64url');
  const ms = bytes.length === 20 ? Number(bytes.readBigInt64BE(0)) : Number.NaN;
  const at = new Date(ms);
  if (Number.isNaN(at.getTime())) throw new UserInputError('not a cursor from this list', field);
  const id = new Types.ObjectId(bytes.subarray(8).toString('hex'));
  if (encodeTimeCursor(at, id) !== cursor)
    throw new UserInputError('not a cursor from this list', field);
  return { at, id };
}

/**
 * The filter for `field >= since` and after `cursor` in ascending (field, _id) order. Written as
 * `field >= max(since, cursor.at)` and then `field > cursor.at or _id > cursor.id`: the same set,
 * with the range doing most of the work (an engine without range indexes tests it first on every
 * document).
 */
export function fromAscending(
  field: string,
  since: Date,
  cursor: TimeCursor | null,
): Record<string, unknown> {
  if (!cursor) return { [field]: { $gte: since } };
  const from = cursor.at > since ? cursor.at : since;
  return {
    [field]: { $gte: from },
    $or: [{ [field]: { $gt: cursor.at } }, { _id: { $gt: cursor.id } }],
  };
}

/** The filter for what comes after `cursor` in descending (field, _id) order. */
export function afterDescending(field: string, cursor: TimeCursor): Record<string, unknown> {
  return {
    $or: [{ [field]: { $lt: cursor.at } }, { [field]: cursor.at, _id: { $lt: cursor.id } }],
  };
}
