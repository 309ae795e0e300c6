import type { Types } from 'mongoose';
import { dbOptions, systemCtx } from '../../core/context';
import type { Logger } from '../../core/logger';
import { backgroundComment } from '../../shared/background';
import { AgentTokenModel, type AgentTokenRecord } from './agent-token.model';
import { Role } from './roles';
import { UserModel } from './user.model';

/**
 * How often each instance re-reads which agent tokens are good: revocations reach it within this
 * (plus a query).
 */
export const AGENT_TOKEN_REFRESH_MS = 2_000;

/** The refresh, as the service's own work (core/context.ts systemCtx). */
const REFRESH_JOB = 'agent tokens';
/** The comment the refresh's queries carry (see shared/background.ts). */
export const BACKGROUND_COMMENT = backgroundComment(REFRESH_JOB);

/** What this instance did since a refresh's read began, which that read may not show. */
interface SinceRead {
  /** Issued here (-> when it expires, ms) or revoked here (null). */
  changedHere: Map<string, number | null>;
  /** Found good by a single look-up: no newer than the read, so left for the next one to say. */
  lookedUp: Set<string>;
}

/** One refresh's read of the database, applied by `apply`. */
export interface TokenList {
  honoured: Map<string, number>;
  since: SinceRead;
}

/**
 * Which agent tokens each instance honours, kept in memory so an agent's request costs no database
 * command: every AGENT_TOKEN_REFRESH_MS the set of unrevoked, unexpired tokens whose issuer is
 * still an admin is read again (two queries, whatever the traffic). A token unknown at the last
 * refresh (issued since, on another instance) is looked up once; one still unknown stays refused
 * until the next refresh. A token revoked here stays refused here, whatever a refresh that was
 * already reading says; one issued here stays honoured likewise.
 */
export class AgentTokenRegistry {
  /** Token id -> when it expires (ms). */
  private valid = new Map<string, number>();
  private refused = new Set<string>();
  private since: SinceRead = { changedHere: new Map(), lookedUp: new Set() };
  /** Grows with each refresh applied: a look-up that began before one knows less than it. */
  private generation = 0;
  private readonly listeners = new Set<() => void>();
  private timer: NodeJS.Timeout | undefined;
  private refreshing: Promise<void> | null = null;

  constructor(private readonly logger: Logger) {}

  async start(): Promise<void> {
    await this.refresh();
    this.timer = setInterval(() => {
      // One at a time: an older read applied after a newer one would bring back what it dropped.
      if (this.refreshing) return;
      this.refreshing = this.refresh()
        .catch((error: unknown) =>
          this.logger.warn(
            { err: error },
            'agent tokens could not be re-read; keeping the last list',
          ),
        )
        .finally(() => (this.refreshing = null));
    }, AGENT_TOKEN_REFRESH_MS);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.refreshing;
  }

  /**
   * Called after each refresh and each revocation here, when tokens may have stopped being good.
   * Returns the unsubscribe.
   */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** What the list says of a token, without a query: undefined when it doesn't know it. */
  status(id: string, now = Date.now()): boolean | undefined {
    if (this.refused.has(id)) return false;
    const expires = this.valid.get(id);
    return expires === undefined ? undefined : expires > now;
  }

  async isHonoured(id: string, now = Date.now()): Promise<boolean> {
    const known = this.status(id, now);
    if (known !== undefined) return known;
    const generation = this.generation;
    const honoured = await this.lookUp(id, now);
    // A refresh applied or a revocation made meanwhile knows better than this read: not kept.
    if (generation === this.generation && !this.refused.has(id)) {
      if (honoured) {
        this.valid.set(id, honoured.expires_at.getTime());
        this.since.lookedUp.add(id);
      } else this.refused.add(id);
    }
    return this.status(id, now) ?? honoured !== null;
  }

  /** Issued here: good at once on this instance. */
  issued(record: Pick<AgentTokenRecord, '_id' | 'expires_at'>): void {
    const id = record._id.toHexString();
    this.refused.delete(id);
    this.valid.set(id, record.expires_at.getTime());
    this.since.changedHere.set(id, record.expires_at.getTime());
  }

  /** Revoked here: refused at once on this instance (others follow within a refresh). */
  revoked(id: Types.ObjectId): void {
    this.valid.delete(id.toHexString());
    this.refused.add(id.toHexString());
    this.since.changedHere.set(id.toHexString(), null);
    this.notify();
  }

  /**
   * A refresh is a read then its apply; they are apart so a test can revoke between them. What is
   * done here from the read's start on is applied over what it read.
   */
  async read(now = new Date()): Promise<TokenList> {
    const ctx = systemCtx(this.logger, REFRESH_JOB);
    const since: SinceRead = { changedHere: new Map(), lookedUp: new Set() };
    this.since = since;
    const [tokens, admins] = await Promise.all([
      AgentTokenModel.find(
        { revoked_at: null, expires_at: { $gt: now } },
        { issued_by: 1, expires_at: 1 },
      )
        .setOptions(dbOptions(ctx))
        .lean<Array<Pick<AgentTokenRecord, '_id' | 'issued_by' | 'expires_at'>>>(),
      UserModel.find({ role: Role.ADMIN }, { _id: 1 })
        .setOptions(dbOptions(ctx))
        .lean<Array<{ _id: Types.ObjectId }>>(),
    ]);
    const adminIds = new Set(admins.map((a) => a._id.toHexString()));
    const honoured = new Map(
      tokens
        .filter((t) => adminIds.has(t.issued_by.toHexString()))
        .map((t) => [t._id.toHexString(), t.expires_at.getTime()]),
    );
    return { honoured, since };
  }

  apply(list: TokenList): void {
    const valid = new Map(list.honoured);
    const refused = new Set<string>();
    for (const [id, expires] of list.since.changedHere) {
      if (expires === null) {
        valid.delete(id);
        refused.add(id);
      } else valid.set(id, expires);
    }
    // Honoured before and not by this newer read: refused without a look-up until the next one.
    // One found by a look-up during the read may be newer than the read (issued elsewhere meanwhile):
    // it is left unknown, so the next request looks it up again.
    for (const id of this.valid.keys())
      if (!valid.has(id) && !list.since.lookedUp.has(id)) refused.add(id);
    this.valid = valid;
    this.refused = refused;
    this.generation++;
    this.notify();
  }

  private async refresh(): Promise<void> {
    this.apply(await this.read());
  }

  private notify(): void {
    for (const listener of this.listeners) listener();
  }

  private async lookUp(
    id: string,
    now: number,
  ): Promise<Pick<AgentTokenRecord, '_id' | 'expires_at'> | null> {
    const record = await AgentTokenModel.findOne(
      { _id: id, revoked_at: null, expires_at: { $gt: new Date(now) } },
      { issued_by: 1, expires_at: 1 },
    ).lean<Pick<AgentTokenRecord, '_id' | 'issued_by' | 'expires_at'>>();
    if (!record) return null;
    return (await UserModel.exists({ _id: record.issued_by, role: Role.ADMIN })) ? record : null;
  }
}
