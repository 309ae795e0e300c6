import type { Types } from 'mongoose';
import { dbOptions, systemCtx, type RequestContext } from '../../core/context';
import type { Logger } from '../../core/logger';
import { UserWalletModel, type AgentGrantRecord, type UserWallet } from './user-wallet.model';
import { asJob } from '../../core/tracing';

/**
 * How often each instance re-reads the grants that changed: a revocation elsewhere reaches this
 * instance's subscriptions within this (plus a query), well inside the 5 s promised.
 */
export const GRANT_REFRESH_MS = 1_000;
/**
 * Each refresh reads again what changed this long before the last one began: the instances stamp
 * grants_changed_at by their own clocks, which may differ by up to this much.
 */
export const CLOCK_OVERLAP_MS = 5_000;
/** Every this often the tracked agents' grants are read whole, whatever the clocks did. */
export const FULL_READ_MS = 60_000;
const REFRESH_JOB = 'agent grants';

type Grants = Pick<UserWallet, '_id' | 'agent_grants'>;

interface Tracked {
  /** Open subscriptions of this agent here. */
  holders: number;
  /** Wallet id (hex) -> when the grant expires (ms), null for never. */
  wallets: Map<string, number | null>;
  /** The first read of its grants. */
  ready: Promise<void>;
}

/**
 * Which wallets each GRANTED_WALLETS agent with an open subscription here holds a live grant on, in
 * memory, and the other way round (which of those agents hold one on a wallet), so an event finds
 * such subscriptions without a database read and without looking at the others. An agent's
 * grants are read whole when its first subscription here opens; from then on, every
 * GRANT_REFRESH_MS, only the wallets whose grants changed since the last read (one query, whatever
 * the number of agents), and every FULL_READ_MS the tracked agents' grants whole again (one query).
 * A grant or revocation made on this instance counts here at once, whatever a read already under
 * way says.
 */
export class GrantIndex {
  private readonly agents = new Map<string, Tracked>();
  /** Wallet id (hex) -> the tracked agents (hex) holding a grant on it, each with its expiry. */
  private readonly holders = new Map<string, Map<string, number | null>>();
  private timer: NodeJS.Timeout | undefined;
  private refreshing: Promise<void> | null = null;
  /** When the last read of changes began (ms), by this instance's clock. */
  private readFrom = 0;
  private lastFullRead = 0;
  /** Grants changed here while a read was under way: applied again over what it read. */
  private changedHere: Array<[string, string, AgentGrantRecord | null]> | null = null;

  constructor(private readonly logger: Logger) {}

  /**
   * Starts following the agent's grants (reading them once if no subscription here follows them
   * yet); returns the call that stops, once every follower has stopped.
   */
  async track(ctx: Pick<RequestContext, 'comment'>, agentId: Types.ObjectId): Promise<() => void> {
    const key = agentId.toHexString();
    let tracked = this.agents.get(key);
    if (!tracked) {
      if (this.agents.size === 0) this.readFrom = Date.now();
      const created: Tracked = { holders: 0, wallets: new Map(), ready: Promise.resolve() };
      created.ready = UserWalletModel.find(
        { grant_agents: agentId },
        { [`agent_grants.${key}`]: 1 },
      )
        .setOptions(dbOptions(ctx))
        .lean<Grants[]>()
        .then((found) => {
          for (const wallet of found) this.learn(key, created, wallet);
        });
      tracked = created;
      this.agents.set(key, created);
      this.schedule();
    }
    const held = tracked;
    held.holders++;
    try {
      await held.ready;
    } catch (error) {
      if (--held.holders === 0) this.untrack(key, held);
      throw error;
    }
    let done = false;
    return () => {
      if (done) return;
      done = true;
      if (--held.holders === 0) this.untrack(key, held);
    };
  }

  /**
   * The agents (ids, hex) followed here that hold a grant in force on the wallet, as this instance
   * knows: none of the others is looked at.
   */
  holdersOf(walletId: Types.ObjectId, now = Date.now()): string[] {
    const agents = this.holders.get(walletId.toHexString());
    if (!agents) return [];
    const found: string[] = [];
    for (const [agent, expires] of agents) if (expires === null || expires > now) found.push(agent);
    return found;
  }

  /** A grant (or, with null, a revocation) made here: in force here at once. */
  changed(walletId: Types.ObjectId, agentId: Types.ObjectId, grant: AgentGrantRecord | null): void {
    const change: [string, string, AgentGrantRecord | null] = [
      walletId.toHexString(),
      agentId.toHexString(),
      grant,
    ];
    this.changedHere?.push(change);
    this.apply(change);
  }

  async stop(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.agents.clear();
    this.holders.clear();
    await this.refreshing;
  }

  /** One refresh: what changed since the last (or everything tracked, now and then). */
  async refresh(now = Date.now()): Promise<void> {
    if (this.agents.size === 0) return;
    const ctx = systemCtx(this.logger, REFRESH_JOB);
    const full = now - this.lastFullRead >= FULL_READ_MS;
    const ids = [...this.agents.keys()];
    this.changedHere = [];
    try {
      const filter = full
        ? { grant_agents: { $in: ids } }
        : { grants_changed_at: { $gte: new Date(this.readFrom - CLOCK_OVERLAP_MS) } };
      const wallets = await UserWalletModel.find(filter, { agent_grants: 1 })
        .setOptions(dbOptions(ctx))
        .lean<Grants[]>();
      if (full) {
        // Read whole: what is not there any more is gone.
        for (const key of ids) {
          const tracked = this.agents.get(key);
          if (tracked) this.forget(key, tracked);
        }
        this.lastFullRead = now;
      }
      for (const wallet of wallets)
        for (const [key, tracked] of this.agents) this.learn(key, tracked, wallet);
      for (const change of this.changedHere) this.apply(change);
      this.readFrom = now;
    } finally {
      this.changedHere = null;
    }
  }

  private learn(agentKey: string, tracked: Tracked, wallet: Grants): void {
    this.set(agentKey, tracked, wallet._id.toHexString(), wallet.agent_grants?.[agentKey] ?? null);
  }

  private apply([walletKey, agentKey, grant]: [string, string, AgentGrantRecord | null]): void {
    const tracked = this.agents.get(agentKey);
    if (tracked) this.set(agentKey, tracked, walletKey, grant);
  }

  /**
   * The agent's grant on the wallet, in both directions. An agent no longer followed (its first
   * read came back after its last subscription ended) leaves no holder behind.
   */
  private set(
    agentKey: string,
    tracked: Tracked,
    walletKey: string,
    grant: AgentGrantRecord | null,
  ): void {
    const followed = this.agents.get(agentKey) === tracked;
    if (grant && grant.revoked_at === null) {
      const expires = grant.expires_at?.getTime() ?? null;
      tracked.wallets.set(walletKey, expires);
      if (!followed) return;
      let agents = this.holders.get(walletKey);
      if (!agents) this.holders.set(walletKey, (agents = new Map<string, number | null>()));
      agents.set(agentKey, expires);
    } else {
      tracked.wallets.delete(walletKey);
      if (followed) this.dropHolder(walletKey, agentKey);
    }
  }

  /** The agent's grants, forgotten in both directions (read whole again, or no longer followed). */
  private forget(agentKey: string, tracked: Tracked): void {
    for (const walletKey of tracked.wallets.keys()) this.dropHolder(walletKey, agentKey);
    tracked.wallets.clear();
  }

  private untrack(agentKey: string, tracked: Tracked): void {
    if (this.agents.get(agentKey) !== tracked) return;
    this.forget(agentKey, tracked);
    this.agents.delete(agentKey);
  }

  private dropHolder(walletKey: string, agentKey: string): void {
    const agents = this.holders.get(walletKey);
    if (!agents?.delete(agentKey)) return;
    if (agents.size === 0) this.holders.delete(walletKey);
  }

  private schedule(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.refreshing = asJob(
        REFRESH_JOB,
        () => this.refresh(),
        (error) =>
          this.logger.warn({ err: error }, 'agent grants could not be re-read; keeping the last'),
      ).finally(() => {
        this.refreshing = null;
        this.timer = undefined;
        if (this.agents.size > 0) this.schedule();
      });
    }, GRANT_REFRESH_MS);
    this.timer.unref();
  }
}
