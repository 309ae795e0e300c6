import type { Types } from 'mongoose';
import type { Logger } from '../../core/logger';
import { metrics } from '../../core/metrics';
import { backgroundComment } from '../../shared/background';
import { UserWalletModel } from '../wallets/user-wallet.model';
import { deliverEvents } from './outbox';
import type { WalletEventRecord } from './user-wallet-event.model';

/** Pending events younger than this are left to the request that wrote them. */
const SWEEP_AFTER_MS = 5_000;
const SWEEP_BATCH = 500;
const SWEEP_INTERVAL_MS = 30_000;
const SWEEP_COMMENT = backgroundComment('audit outbox sweep');

/** Where the last sweep stopped, when it had more than one batch to do. */
let sweptUpTo: Types.ObjectId | null = null;

/**
 * The sweep: delivers events left pending for longer than a request takes, a batch of wallets at a
 * time in id order (so wallets whose events keep failing can't hold the others back). Returns how
 * many it delivered.
 */
export async function deliverPendingEvents(logger: Logger, now = new Date()): Promise<number> {
  const cutoff = new Date(now.getTime() - SWEEP_AFTER_MS);
  const wallets = await UserWalletModel.find(
    { 'pending_events.at': { $lt: cutoff }, ...(sweptUpTo ? { _id: { $gt: sweptUpTo } } : {}) },
    { pending_events: 1 },
  )
    .sort({ _id: 1 })
    .limit(SWEEP_BATCH)
    .comment(SWEEP_COMMENT)
    .lean<Array<{ _id: Types.ObjectId; pending_events: WalletEventRecord[] }>>();
  sweptUpTo = wallets.length === SWEEP_BATCH ? wallets[wallets.length - 1]._id : null;
  let delivered = 0;
  for (const wallet of wallets) {
    if (await deliverEvents(logger, wallet._id, wallet.pending_events, SWEEP_COMMENT))
      delivered += wallet.pending_events.length;
  }
  if (delivered > 0)
    logger.warn(
      { delivered },
      'audit events delivered by the sweep (a request could not deliver them)',
    );
  metrics.sweepDelivered.inc(delivered);
  return delivered;
}

/**
 * Runs the sweep now and every SWEEP_INTERVAL_MS; returns the function that stops it and waits for
 * a sweep under way.
 */
export function startEventSweep(logger: Logger): () => Promise<void> {
  let running: Promise<void> = Promise.resolve();
  const sweep = () => {
    running = deliverPendingEvents(logger).then(
      () => undefined,
      (error: unknown) =>
        logger.warn(
          { err: error },
          `audit event sweep failed; next try in ${SWEEP_INTERVAL_MS / 1000} s`,
        ),
    );
  };
  sweep();
  const timer = setInterval(sweep, SWEEP_INTERVAL_MS).unref();
  return async () => {
    clearInterval(timer);
    await running;
  };
}
