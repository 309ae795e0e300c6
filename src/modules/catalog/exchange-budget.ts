import { getModelForClass, index, modelOptions, prop } from '@typegoose/typegoose';
import { Types } from 'mongoose';
import { dbOptions, type RequestContext } from '../../core/context';
import { isDuplicateKeyError } from '../../core/errors';
import { metrics } from '../../core/metrics';
import { ExchangeBudgetExhausted, type RequestBudget } from '../../exchanges/budget';
import type { WalletDefinition } from './wallet-definition.model';

/*
 * One budget per exchange (catalog entry) of `api_config.rate_limit` requests in any 60 s window,
 * shared by every instance on the database (docs/api.md, "The exchange's rate limit").
 *
 * The budget is `rate_limit` slots, one document each. A request takes a slot: one
 * findOneAndUpdate, which moves the slot's `free_at` a window and a margin ahead of the latest
 * moment the request may go. A slot carries one request per window, so no 60 s window, however
 * placed, holds more requests than there are slots; there is no fixed boundary to double up
 * across. The margin (a second) covers the time between taking a slot and the request's arrival,
 * and small clock differences between instances (their clocks must agree, as NTP keeps them).
 */

/** The exchanges' window. */
const BUDGET_WINDOW_MS = 60_000;
/** What a slot is held beyond the window: see above. */
const MARGIN_MS = 1_000;
/** The longest a test waits for the exchange's budget, all its requests together. */
const MAX_WAIT_MS = 2_000;
/**
 * Slots per exchange at most: a rate limit above it is held at it (a larger one is no connection
 * test's need, and its slots would be that many documents).
 */
const MAX_SLOTS = 5_000;

@modelOptions({
  schemaOptions: { collection: 'exchange_budget_slots', versionKey: false },
  options: { customName: 'ExchangeBudgetSlot' },
})
@index({ exchange_id: 1, free_at: 1 })
@index({ exchange_id: 1, index: 1 })
class ExchangeBudgetSlot {
  /** `<definition id>:<index>` */
  @prop({ required: true, type: String })
  _id!: string;

  /** The catalog entry (wallet_definitions._id) whose budget this is. */
  @prop({ required: true, type: Types.ObjectId })
  exchange_id!: Types.ObjectId;

  /** 0..rate_limit-1; re-tests take only the first half. */
  @prop({ required: true, type: Number })
  index!: number;

  /** When the slot may carry its next request. */
  @prop({ required: true, type: Date })
  free_at!: Date;
}

export const ExchangeBudgetSlotModel = getModelForClass(ExchangeBudgetSlot);

/** Who draws: a user's test, or the service's re-test (which may use only half the slots). */
type BudgetUse = 'user' | 'service';

/** The slots a use may take: all of them for users, the first half for the service's re-tests. */
export function slotsFor(rateLimit: number, use: BudgetUse): number {
  const all = Math.min(MAX_SLOTS, Math.max(1, Math.floor(rateLimit)));
  return use === 'user' ? all : Math.max(1, Math.floor(all / 2));
}

/** Exchanges whose slots this process has made sure of, with the count it made sure of. */
const ensured = new Map<string, number>();

/** Creates the exchange's missing slots (free at once); the ones that exist are left alone. */
async function ensureSlots(
  ctx: Pick<RequestContext, 'comment'>,
  exchangeId: Types.ObjectId,
  count: number,
): Promise<void> {
  const key = exchangeId.toHexString();
  if ((ensured.get(key) ?? 0) >= count) return;
  const slots = Array.from({ length: count }, (_, i) => ({
    _id: `${key}:${i}`,
    exchange_id: exchangeId,
    index: i,
    free_at: new Date(0),
  }));
  try {
    await ExchangeBudgetSlotModel.insertMany(slots, { ordered: false, ...dbOptions(ctx) });
  } catch (error) {
    if (!isDuplicateKeyError(error) && !allDuplicates(error)) throw error;
  }
  ensured.set(key, count);
}

/** insertMany's error when only some slots already existed. */
function allDuplicates(error: unknown): boolean {
  const writeErrors = (error as { writeErrors?: Array<{ code?: number; err?: { code?: number } }> })
    ?.writeErrors;
  return (
    Array.isArray(writeErrors) &&
    writeErrors.length > 0 &&
    writeErrors.every((e) => (e.code ?? e.err?.code) === 11000)
  );
}

/** A slot taken: when its request may go, and what it was, to give back if it goes unused. */
interface Taken {
  id: string;
  /** The request may go from then. */
  from: number;
  /** What the claim set: the request must go by heldUntil - HOLD_MS, or the slot is held anew. */
  heldUntil: number;
}

/** How long a slot carries one request. */
const HOLD_MS = BUDGET_WINDOW_MS + MARGIN_MS;

/**
 * Refusals this process gave lately, by exchange and use: a test asking again before a slot can be
 * free is refused without asking the database.
 */
const refusedUntil = new Map<string, number>();

/**
 * The budget one connection test draws from, all of it before the test sends anything: the slots
 * its `expected` requests need (what the last passing test on the exchange sent, at most the slots
 * its use may take), so a test is either made whole or not started, and tests started together
 * can't each take a part and leave none finishable. A request past those takes one more slot as
 * it goes. Slots left unused at the end are given back (release()).
 *
 * The slots are found within MAX_WAIT_MS of the test's start or the test is refused: take()
 * rejects with ExchangeBudgetExhausted (kept in `refusal` too, since ccxt may wrap what it
 * throws), with the time until enough slots free, and the slots not used are given back.
 *
 * A slot is held from the end of the test's wait; a request that goes later than that (after a
 * slow answer to the one before it) holds its slot anew from when it goes, with one more command.
 */
export class TestBudget implements RequestBudget {
  refusal: ExchangeBudgetExhausted | undefined;
  /** Requests sent on the budget. */
  sent = 0;
  private readonly waitUntil: number;
  private readonly slots: number;
  private readonly need: number;
  private readonly ready: Taken[] = [];
  private starting: Promise<void> | undefined;

  constructor(
    private readonly ctx: Pick<RequestContext, 'comment'>,
    private readonly definition: Pick<WalletDefinition, '_id' | 'slug' | 'api_config'>,
    private readonly use: BudgetUse,
    expected = 1,
    now = Date.now(),
  ) {
    this.waitUntil = now + MAX_WAIT_MS;
    this.slots = slotsFor(definition.api_config.rate_limit, use);
    this.need = Math.min(Math.max(1, expected), this.slots);
  }

  async take(): Promise<void> {
    if (this.refusal) throw this.refusal;
    // ccxt may send a test's requests together (Bybit's balance): all wait for the first slots.
    this.starting ??= this.start();
    await this.starting;
    const slot = this.ready.shift() ?? (await this.claimOrRefuse());
    // Another request of the test was held back meanwhile: this one does not go either.
    const refusal = this.refusal as ExchangeBudgetExhausted | undefined;
    if (refusal) {
      await this.giveBack(slot);
      throw refusal;
    }
    const wait = slot.from - Date.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    const now = Date.now();
    if (now > slot.heldUntil - HOLD_MS) await this.holdAnew(slot, now);
    this.sent++;
  }

  /** Gives back the slots taken for requests the test did not send. */
  async release(): Promise<void> {
    const unused = this.ready.splice(0);
    await Promise.all(unused.map((slot) => this.giveBack(slot)));
  }

  private async start(): Promise<void> {
    const key = this.refusalKey();
    const until = refusedUntil.get(key) ?? 0;
    if (until > Date.now()) this.refuse(until - Date.now());
    await ensureSlots(
      this.ctx,
      this.definition._id,
      slotsFor(this.definition.api_config.rate_limit, 'user'),
    );
    for (let i = 0; i < this.need; i++) this.ready.push(await this.claimOrRefuse());
  }

  /**
   * One slot free by the end of the test's wait, held from then: a user's test takes the highest
   * free (the half re-tests can't use first), a re-test the one of its half free soonest. The
   * answer is the slot as it was: when it came free.
   */
  private async claimOrRefuse(): Promise<Taken> {
    const until = Math.max(Date.now(), this.waitUntil);
    const heldUntil = until + HOLD_MS;
    const slot = await ExchangeBudgetSlotModel.findOneAndUpdate(
      {
        exchange_id: this.definition._id,
        index: { $lt: this.slots },
        free_at: { $lte: new Date(until) },
      },
      { $set: { free_at: new Date(heldUntil) } },
      {
        sort: this.use === 'user' ? { index: -1 } : { free_at: 1 },
        projection: { free_at: 1 },
        returnDocument: 'before',
        ...dbOptions(this.ctx),
      },
    ).lean<Pick<ExchangeBudgetSlot, '_id' | 'free_at'>>();
    if (slot) return { id: slot._id, from: slot.free_at.getTime(), heldUntil };
    await this.release();
    // When as many slots as the test needs are free (the slots it has given back included).
    const needed = Math.max(1, this.need - this.sent);
    const nth = await ExchangeBudgetSlotModel.findOne(
      { exchange_id: this.definition._id, index: { $lt: this.slots } },
      { free_at: 1 },
    )
      .sort({ free_at: 1 })
      .skip(needed - 1)
      .setOptions(dbOptions(this.ctx))
      .lean<Pick<ExchangeBudgetSlot, 'free_at'>>();
    // No slot at all: they were removed behind this process's back; made again on the next test.
    if (!nth) ensured.delete(this.definition._id.toHexString());
    this.refuse((nth?.free_at.getTime() ?? Date.now() + HOLD_MS) - Date.now());
  }

  private refuse(retryAfterMs: number): never {
    const after = Math.max(1_000, retryAfterMs);
    refusedUntil.set(this.refusalKey(), Date.now() + after);
    metrics.rateLimitRefusals.inc({ kind: 'exchange_budget' });
    this.refusal = new ExchangeBudgetExhausted(this.definition.slug, after, this.sent > 0);
    throw this.refusal;
  }

  private refusalKey(): string {
    return `${this.definition._id.toHexString()}:${this.use}`;
  }

  /**
   * The request goes later than its slot was held for: held from now, unless the slot was taken
   * again meanwhile (only a window later can it be), and then another one is taken.
   */
  private async holdAnew(slot: Taken, now: number): Promise<void> {
    const held = await ExchangeBudgetSlotModel.updateOne(
      { _id: slot.id, free_at: new Date(slot.heldUntil) },
      { $set: { free_at: new Date(now + HOLD_MS) } },
      dbOptions(this.ctx),
    );
    if (held.matchedCount === 1) return;
    const other = await this.claimOrRefuse();
    const wait = other.from - Date.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
  }

  /** Unless another claim came meanwhile (which only a window later can), as it was. */
  private async giveBack(slot: Taken): Promise<void> {
    await ExchangeBudgetSlotModel.updateOne(
      { _id: slot.id, free_at: new Date(slot.heldUntil) },
      { $set: { free_at: new Date(slot.from) } },
      dbOptions(this.ctx),
    );
  }
}
