import type { Types } from 'mongoose';
import { systemCtx } from '../../core/context';
import type { Logger } from '../../core/logger';
import { metrics } from '../../core/metrics';
import { AuditOutbox, type PendingEventStore } from './outbox';
import { asJob } from '../../core/tracing';

/** Pending events younger than this are left to the request that wrote them. */
const SWEEP_AFTER_MS = 5_000;
const SWEEP_BATCH = 500;
const SWEEP_INTERVAL_MS = 30_000;
/** The job's name, and so the comment on its database commands (shared/background.ts). */
const SWEEP_JOB = 'audit outbox sweep';

/**
 * Delivers the events a request could not (see outbox.ts): those left pending for longer than a
 * request takes, a batch of wallets at a time in id order, so wallets whose events keep failing
 * can't hold the others back. Runs at start() and every SWEEP_INTERVAL_MS after.
 */
export class AuditOutboxSweep {
  /** Where the last run stopped, when it had more than one batch to do. */
  private sweptUpTo: Types.ObjectId | null = null;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> = Promise.resolve();
  private readonly outbox: AuditOutbox;

  constructor(
    private readonly logger: Logger,
    /** The wallets' outboxes (app/lifecycle.ts hands over the wallets module's store). */
    private readonly store: PendingEventStore,
  ) {
    this.outbox = new AuditOutbox(store);
  }

  start(): void {
    this.tick();
    this.timer = setInterval(() => this.tick(), SWEEP_INTERVAL_MS).unref();
  }

  /** No further runs; waits for the one under way. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }

  /** One run, as of `now`. Returns how many events it delivered. */
  async deliverPending(now = new Date()): Promise<number> {
    const ctx = systemCtx(this.logger, SWEEP_JOB);
    const cutoff = new Date(now.getTime() - SWEEP_AFTER_MS);
    const wallets = await this.store.overdue(ctx, cutoff, this.sweptUpTo, SWEEP_BATCH);
    this.sweptUpTo = wallets.length === SWEEP_BATCH ? wallets[wallets.length - 1]._id : null;
    let delivered = 0;
    for (const wallet of wallets) {
      if (await this.outbox.deliverEvents(ctx, wallet._id, wallet.pending_events))
        delivered += wallet.pending_events.length;
    }
    if (delivered > 0)
      ctx.logger.warn(
        { delivered },
        'audit events delivered by the sweep (a request could not deliver them)',
      );
    metrics.sweepDelivered.inc(delivered);
    return delivered;
  }

  private tick(): void {
    this.running = asJob(
      SWEEP_JOB,
      () => this.deliverPending(),
      (error) =>
        this.logger.warn(
          { err: error },
          `audit event sweep failed; next try in ${SWEEP_INTERVAL_MS / 1000} s`,
        ),
    );
  }
}
