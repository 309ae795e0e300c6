import { createHmac } from 'node:crypto';
import { getModelForClass, index, modelOptions, prop } from '@typegoose/typegoose';
import { RateLimitedError, isDuplicateKeyError } from '../core/errors';
import { metrics } from '../core/metrics';

/**
 * Counters in the database, so that every instance behind a load balancer shares them. A counter's
 * window opens with its first hit and lasts `windowMs` (it moves with the first hit, so twice the
 * limit can't pass around a fixed boundary). A hit is taken *before* the work it guards, by one
 * conditional update that only matches below the limit: however many requests arrive together, at
 * most `limit` get through per window. The TTL index lets the database drop old windows.
 */
@modelOptions({
  schemaOptions: { collection: 'rate_limits', versionKey: false },
  options: { customName: 'RateLimit' },
})
@index({ expires_at: 1 }, { expireAfterSeconds: 0 })
class RateLimit {
  /** `<kind>:<HMAC of what is counted>`: never what a client typed. */
  @prop({ required: true, type: String })
  _id!: string;

  @prop({ required: true, type: Number })
  count!: number;

  /** When the window that opened with the first hit closes. */
  @prop({ required: true, type: Date })
  expires_at!: Date;
}

export const RateLimitModel = getModelForClass(RateLimit);

export interface Limit {
  /** What is counted, e.g. `login:pair:<digest>`; see counterKey. */
  key: string;
  limit: number;
  windowMs: number;
  /** For the refusal: "too many <what>". */
  what: string;
}

/** A hit taken on a counter, which the caller may give back (a login that succeeded, say). */
export interface Hit {
  release(): Promise<void>;
}

/** Lost races (an insert beaten by another's, a window that closed meanwhile) retry this often. */
const ATTEMPTS = 4;

/**
 * A counter key that never holds what a client typed: `<kind>:<HMAC-SHA256 of the parts>`. A
 * password typed into the email field must not sit in the database in clear.
 */
export function counterKey(secret: string, kind: string, ...parts: string[]): string {
  const digest = createHmac('sha256', secret)
    .update(`${kind}\u0000${parts.join('\u0000')}`)
    .digest('base64url');
  return `${kind}:${digest.slice(0, 32)}`;
}

/**
 * Takes one hit on the counter, or refuses (RATE_LIMITED) when its window already holds `limit`.
 */
export async function take({ key, limit, windowMs, what }: Limit, now = new Date()): Promise<Hit> {
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    // Below the limit in an open window: the common case, one command.
    const counted = await RateLimitModel.findOneAndUpdate(
      { _id: key, expires_at: { $gt: now }, count: { $lt: limit } },
      { $inc: { count: 1 } },
      { returnDocument: 'after', projection: { expires_at: 1 } },
    ).lean<RateLimit>();
    if (counted) return hitOn(key, counted.expires_at);
    // A closed window: the first hit opens a new one.
    const expiresAt = new Date(now.getTime() + windowMs);
    const reopened = await RateLimitModel.updateOne(
      { _id: key, expires_at: { $lte: now } },
      { $set: { count: 1, expires_at: expiresAt } },
    );
    if (reopened.matchedCount === 1) return hitOn(key, expiresAt);
    try {
      await RateLimitModel.create({ _id: key, count: 1, expires_at: expiresAt });
      return hitOn(key, expiresAt);
    } catch (error) {
      if (!isDuplicateKeyError(error)) throw error;
    }
    // It exists and is open: at the limit, unless a race moved it meanwhile.
    const current = await RateLimitModel.findById(key, {
      count: 1,
      expires_at: 1,
    }).lean<RateLimit>();
    if (current && current.expires_at > now && current.count >= limit)
      throw refusal(what, limit, windowMs, current.expires_at, now, key);
  }
  metrics.rateLimitRefusals.inc({ kind: kindOf(key) });
  throw new RateLimitedError(`too many ${what}: try again in a moment`, 1);
}

/**
 * The metric's kind of a counter: its key's first part (login, register, connection-test), never
 * what it counts.
 */
function kindOf(key: string): string {
  return key.slice(0, key.indexOf(':'));
}

/**
 * Takes a hit on every counter, or on none: when one refuses, the hits already taken are given
 * back and the refusal is thrown.
 */
export async function takeAll(limits: Limit[], now = new Date()): Promise<Hit> {
  const hits: Hit[] = [];
  try {
    for (const limit of limits) hits.push(await take(limit, now));
  } catch (error) {
    await Promise.all(hits.map((hit) => hit.release()));
    throw error;
  }
  return { release: async () => void (await Promise.all(hits.map((hit) => hit.release()))) };
}

/** Gives a hit back to the window it was taken in (not to a newer one). */
function hitOn(key: string, expiresAt: Date): Hit {
  let released = false;
  return {
    async release() {
      if (released) return;
      released = true;
      await RateLimitModel.updateOne(
        { _id: key, expires_at: expiresAt, count: { $gt: 0 } },
        { $inc: { count: -1 } },
      );
    },
  };
}

function refusal(
  what: string,
  limit: number,
  windowMs: number,
  expiresAt: Date,
  now: Date,
  key: string,
): RateLimitedError {
  metrics.rateLimitRefusals.inc({ kind: kindOf(key) });
  return new RateLimitedError(
    `too many ${what}: at most ${limit} per ${windowMs / 1000} s`,
    Math.max(1, Math.ceil((expiresAt.getTime() - now.getTime()) / 1000)),
  );
}
