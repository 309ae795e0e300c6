import { Types } from 'mongoose';
import { dbOptions, systemCtx, type SystemContext } from '../../core/context';
import type { Logger } from '../../core/logger';
import { ExchangeBudgetExhausted } from '../../exchanges/budget';
import type { WalletDefinition } from '../catalog/wallet-definition.model';
import { definitionsByIds } from '../catalog/wallet-definition.service';
import type { ConnectionTester } from './connection-tests';
import { unscheduleChecks, type CredentialWallets } from './credential-link';
import { CredentialModel, type Credential } from './credential.model';
import { asJob } from '../../core/tracing';

/** The scheduler's work, as the service's own (core/context.ts systemCtx) and in its comments. */
const CHECKS_JOB = 'credential checks';
/** One re-test, a trace of its own. */
const RETEST_JOB = 'credential re-test';

const MINUTE_MS = 60_000;
/**
 * Due credentials read per free slot, so a few of an exchange out of budget don't leave slots idle.
 */
const CANDIDATES_PER_SLOT = 4;

export interface SchedulerSettings {
  /** CREDENTIAL_CHECK_INTERVAL */
  intervalMs: number;
  /** CREDENTIAL_CHECK_CONCURRENCY: tests in flight at once in this instance. */
  concurrency: number;
  /** EXCHANGE_TIMEOUT_MS: a test takes at most about this; its lease lasts well beyond. */
  timeoutMs: number;
  /** How long stop() waits for tests in flight (SHUTDOWN_GRACE_MS). */
  stopGraceMs: number;
}

type Due = Pick<Credential, '_id' | 'wallet_id' | 'next_check_at'>;

/**
 * The service's own connection tests of the credentials live wallets use. Each instance looks for
 * due ones (next_check_at passed) every tenth of the interval (between 250 ms and a minute) and
 * claims each with one conditional update on the next_check_at it read, which moves it a lease
 * ahead: of any number of instances exactly one wins, and a claim whose instance died expires by
 * itself. The test then records its outcome like a user's (ConnectionTester), which moves
 * next_check_at to the next due time. At most `concurrency` tests in flight here.
 *
 * A test's requests draw on the exchange's rate limit, shared by all instances, of which re-tests
 * may use half (catalog/exchange-budget.ts). A test that finds no room for them within 2 s sends
 * nothing, records nothing and gives its claim back, due again when the exchange has room: it is
 * never dropped, and holds no slot here meanwhile. Until then this instance claims no other test of
 * that exchange.
 */
export class CredentialCheckScheduler {
  private readonly pollMs: number;
  private readonly leaseMs: number;
  private readonly running = new Set<Promise<void>>();
  /** Exchanges (definition ids) whose budget had no room for a re-test, until when. */
  private readonly heldBack = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private polling: Promise<void> | null = null;
  /** The last poll left due credentials for want of a free slot. */
  private backlog = false;
  private stopped = false;

  constructor(
    private readonly tester: ConnectionTester,
    private readonly settings: SchedulerSettings,
    private readonly logger: Logger,
    private readonly wallets: CredentialWallets,
  ) {
    this.pollMs = Math.min(MINUTE_MS, Math.max(250, Math.round(settings.intervalMs / 10)));
    this.leaseMs = 2 * settings.timeoutMs + 30_000;
  }

  start(): void {
    // A random first delay, so instances started together don't poll in step.
    this.next(Math.round(this.pollMs * (0.5 + Math.random() / 2)));
  }

  /**
   * No new claims; waits for the tests in flight (at most stopGraceMs: a late one's lease expires
   * by itself).
   */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.polling;
    let timer: NodeJS.Timeout | undefined;
    const grace = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, this.settings.stopGraceMs).unref();
    });
    await Promise.race([Promise.allSettled([...this.running]), grace]);
    clearTimeout(timer);
  }

  private next(delayMs: number): void {
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.tick(), delayMs).unref();
  }

  private tick(): void {
    // One context per poll, for its queries and the tests it launches.
    const ctx = systemCtx(this.logger, CHECKS_JOB);
    this.polling = asJob(
      CHECKS_JOB,
      () => this.poll(ctx),
      (error) =>
        ctx.logger.warn(
          { err: error },
          `looking for credentials to test failed; next try in ${this.pollMs} ms`,
        ),
    ).finally(() => {
      this.polling = null;
      this.next(this.pollMs);
    });
  }

  private async poll(ctx: SystemContext, now = new Date()): Promise<void> {
    const free = this.settings.concurrency - this.running.size;
    if (this.stopped || free <= 0) return;
    const spent = this.spent(now.getTime());
    const due = await CredentialModel.find(
      { next_check_at: { $lte: now }, ...(spent.length > 0 ? { wallet_id: { $nin: spent } } : {}) },
      { _id: 1, wallet_id: 1, next_check_at: 1 },
    )
      .sort({ next_check_at: 1, _id: 1 })
      .limit(free * CANDIDATES_PER_SLOT)
      .setOptions(dbOptions(ctx))
      .lean<Due[]>();
    this.backlog = false;
    if (due.length === 0) return;
    const definitionIds = [...new Set(due.map((d) => d.wallet_id.toHexString()))];
    const definitions = new Map(
      (await definitionsByIds(ctx, definitionIds)).map((d) => [d._id.toHexString(), d]),
    );
    for (const candidate of due) {
      if (this.stopped) return;
      if (this.running.size >= this.settings.concurrency) {
        this.backlog = true;
        return;
      }
      const definition = definitions.get(candidate.wallet_id.toHexString());
      if (this.heldBack.has(candidate.wallet_id.toHexString())) continue;
      const claimed = await CredentialModel.findOneAndUpdate(
        { _id: candidate._id, next_check_at: candidate.next_check_at },
        { $set: { next_check_at: new Date(now.getTime() + this.leaseMs) } },
        { returnDocument: 'after', timestamps: false, ...dbOptions(ctx) },
      ).lean<Credential>();
      if (!claimed) continue; // Another instance took it, or it changed meanwhile.
      if (!definition) {
        // Definitions are only ever soft-deleted: a broken reference, tried again when the lease
        // ends.
        ctx.logger.error(
          { credentialId: claimed._id.toHexString() },
          'a credential refers to a missing wallet definition; it is not tested',
        );
        continue;
      }
      this.launch(ctx, claimed, definition);
    }
  }

  private launch(ctx: SystemContext, credential: Credential, definition: WalletDefinition): void {
    // Each re-test its own trace, apart from the poll that found it.
    const task: Promise<void> = asJob(
      RETEST_JOB,
      () => this.check(ctx, credential, definition),
      (error) =>
        ctx.logger.error(
          { err: error, credentialId: credential._id.toHexString() },
          "the service's connection test failed; it is tried again when its claim expires",
        ),
    ).finally(() => {
      this.running.delete(task);
      if (this.backlog && !this.polling) this.next(0);
    });
    this.running.add(task);
  }

  private async check(
    ctx: SystemContext,
    credential: Credential,
    definition: WalletDefinition,
  ): Promise<void> {
    // The queue follows liveness (credential-link.ts); this catches what slipped past it.
    if (!(await this.wallets.hasLive(ctx, credential._id))) {
      await unscheduleChecks(ctx, this.wallets, credential._id);
      return;
    }
    try {
      await this.tester.test(ctx, credential, definition);
    } catch (error) {
      if (!(error instanceof ExchangeBudgetExhausted)) throw error;
      const until = Date.now() + error.retryAfterMs;
      this.heldBack.set(definition._id.toHexString(), until);
      // Still ours (the claim it was taken with): due again when the exchange has room.
      await CredentialModel.updateOne(
        { _id: credential._id, next_check_at: credential.next_check_at },
        { $set: { next_check_at: new Date(until) } },
        { timestamps: false, ...dbOptions(ctx) },
      );
      ctx.logger.info(
        {
          credentialId: credential._id.toHexString(),
          exchange: definition.slug,
          retryAfterMs: error.retryAfterMs,
        },
        "the exchange's rate limit has no room for a re-test now; it is due again when it has",
      );
    }
  }

  /** The exchanges held back now (see heldBack). */
  private spent(now: number): Types.ObjectId[] {
    for (const [id, until] of this.heldBack) if (until <= now) this.heldBack.delete(id);
    return [...this.heldBack.keys()].map((id) => new Types.ObjectId(id));
  }
}
