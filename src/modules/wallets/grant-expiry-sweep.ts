import { dbOptions, systemCtx } from '../../core/context';
import type { Logger } from '../../core/logger';
import { inForce } from './agent-grants';
import { UserWalletModel, type UserWallet } from './user-wallet.model';
import { asJob } from '../../core/tracing';

/** How often expired grants are taken out of the arrays the agents' queries match on. */
export const GRANT_EXPIRY_SWEEP_MS = 5_000;
const SWEEP_BATCH = 500;
/** The job's name, and so the comment on its database commands (shared/background.ts). */
const SWEEP_JOB = 'grant expiry sweep';

type Swept = Pick<
  UserWallet,
  '_id' | 'agent_grants' | 'grant_agents' | 'grants_changed_at' | 'grants_expire_at'
>;

/**
 * An expired grant is refused the moment it expires (its expiry is checked on every document an
 * agent's query reads), but its agent stays in the wallet's grant arrays until revoked, so it would
 * keep matching that agent's queries, taking places in its pages. This sweep takes such agents out
 * of the arrays within GRANT_EXPIRY_SWEEP_MS: each wallet keeps the earliest expiry among its
 * unrevoked grants (`grants_expire_at`, set by each grant with $min), and a run takes the wallets
 * whose time has come. The grant itself stays recorded (expired), as a revoked one does. Every
 * instance runs it; a wallet whose grants changed since the run read it is left to the next run.
 */
export class GrantExpirySweep {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> = Promise.resolve();

  constructor(private readonly logger: Logger) {}

  start(): void {
    this.timer = setInterval(() => {
      this.running = asJob(
        SWEEP_JOB,
        () => this.sweep(),
        (error) =>
          this.logger.warn({ err: error }, 'expired grants could not be swept; next try soon'),
      );
    }, GRANT_EXPIRY_SWEEP_MS).unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }

  /** One run, as of `now`. Returns how many wallets it swept. */
  async sweep(now = new Date()): Promise<number> {
    const ctx = systemCtx(this.logger, SWEEP_JOB);
    const wallets = await UserWalletModel.find(
      { grants_expire_at: { $lte: now } },
      { agent_grants: 1, grant_agents: 1, grants_changed_at: 1, grants_expire_at: 1 },
    )
      .limit(SWEEP_BATCH)
      .setOptions(dbOptions(ctx))
      .lean<Swept[]>();
    let swept = 0;
    for (const wallet of wallets) {
      const expired = (wallet.grant_agents ?? []).filter(
        (id) => !inForce(wallet.agent_grants?.[id.toHexString()], now.getTime()),
      );
      const next = (wallet.grant_agents ?? [])
        .map((id) => wallet.agent_grants?.[id.toHexString()])
        .filter((g) => g !== undefined && inForce(g, now.getTime()) && g.expires_at !== null)
        .map((g) => g!.expires_at!.getTime());
      const update: Record<string, unknown> =
        next.length > 0
          ? { $set: { grants_expire_at: new Date(Math.min(...next)) } }
          : { $unset: { grants_expire_at: 1 } };
      if (expired.length > 0)
        update.$pull = {
          grant_agents: { $in: expired },
          grant_state_agents: { $in: expired },
          grant_pause_agents: { $in: expired },
        };
      const result = await UserWalletModel.updateOne(
        // Unchanged since read: a grant or revocation meanwhile is left to the next run.
        {
          _id: wallet._id,
          grants_changed_at: wallet.grants_changed_at,
          grants_expire_at: wallet.grants_expire_at,
        },
        update,
        { timestamps: false, ...dbOptions(ctx) },
      );
      swept += result.modifiedCount;
    }
    return swept;
  }
}
