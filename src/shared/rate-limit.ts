import { getModelForClass, index, modelOptions, prop } from '@typegoose/typegoose';
import { RateLimitedError, isDuplicateKeyError } from '../errors';

/**
 * Fixed-window counters in the database, so that every instance behind a load balancer shares
 * them. One document per key and window; the TTL index lets the database drop old windows.
 */
@modelOptions({ schemaOptions: { collection: 'rate_limits', versionKey: false }, options: { customName: 'RateLimit' } })
@index({ expires_at: 1 }, { expireAfterSeconds: 0 })
class RateLimit {
  /** `<key>:<window start>` */
  @prop({ required: true, type: String })
  _id!: string;

  @prop({ required: true, type: Number })
  count!: number;

  @prop({ required: true, type: Date })
  expires_at!: Date;
}

export const RateLimitModel = getModelForClass(RateLimit);

function windowOf(key: string, windowMs: number, now: number): { id: string; start: number } {
  const start = now - (now % windowMs);
  return { id: `${key}:${start}`, start };
}

/** Adds one hit to `key` in the current window and returns the window's count. */
export async function record(key: string, windowMs: number, now = Date.now()): Promise<number> {
  const { id, start } = windowOf(key, windowMs, now);
  const hit = () =>
    RateLimitModel.findOneAndUpdate(
      { _id: id },
      { $inc: { count: 1 }, $setOnInsert: { expires_at: new Date(start + windowMs) } },
      { upsert: true, returnDocument: 'after' },
    ).lean<RateLimit>();
  // Two first hits at once: one inserts, the other meets the unique _id and counts on retry.
  const counter = await hit().catch((error: unknown) => (isDuplicateKeyError(error) ? hit() : Promise.reject(error)));
  return counter!.count;
}

function limited(what: string, limit: number, windowMs: number, start: number, now: number): RateLimitedError {
  return new RateLimitedError(`too many ${what}: at most ${limit} per ${windowMs / 1000} s`, Math.ceil((start + windowMs - now) / 1000));
}

/** Counts one hit on `key`; RATE_LIMITED when it is over `limit` within the current window. */
export async function consume(key: string, limit: number, windowMs: number, what: string, now = Date.now()): Promise<void> {
  if ((await record(key, windowMs, now)) > limit) throw limited(what, limit, windowMs, windowOf(key, windowMs, now).start, now);
}

/** RATE_LIMITED when any of `keys` already has `limit` hits in the current window; counts nothing. */
export async function assertUnder(keys: string[], limit: number, windowMs: number, what: string, now = Date.now()): Promise<void> {
  const windows = keys.map((key) => windowOf(key, windowMs, now));
  const counters = await RateLimitModel.find({ _id: { $in: windows.map((w) => w.id) } }, { count: 1 }).lean<RateLimit[]>();
  if (counters.some((c) => c.count >= limit)) throw limited(what, limit, windowMs, windows[0].start, now);
}
