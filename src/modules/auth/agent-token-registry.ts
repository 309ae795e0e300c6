import type { Types } from 'mongoose';
import { dbOptions, systemCtx } from '../../core/context';
import type { Logger } from '../../core/logger';
import { backgroundComment } from '../../shared/background';
import { AgentTokenModel, withScopeDefaults, type AgentTokenRecord } from './agent-token.model';
import { Role, type AgentScope } from './roles';
import { UserModel } from './user.model';
import { asJob } from '../../core/tracing';

/**
 * How often each instance reads what changed in agent tokens: revocations reach it within this
 * (plus a query).
 */
export const AGENT_TOKEN_REFRESH_MS = 2_000;
/**
 * How often (and at start) a refresh reads every live token instead, and whether the issuers of
 * personal tokens still exist: an account removed from the database stops its tokens within this.
 */
export const AGENT_TOKEN_FULL_READ_MS = 60_000;
/**
 * A refresh reads the tokens changed since this long before the last read began. changed_at is
 * stamped by the instance that issues or revokes, whose clock (and a write still on its way) may
 * be behind this one's by up to this.
 */
export const AGENT_TOKEN_CHANGE_OVERLAP_MS = 5_000;

/** The refresh, as the service's own work (core/context.ts systemCtx). */
const REFRESH_JOB = 'agent tokens';
/** The comment the refresh's queries carry (see shared/background.ts). */
export const BACKGROUND_COMMENT = backgroundComment(REFRESH_JOB);

/** What the registry keeps of a token: what makes it good, and what it may do. */
export interface TokenFacts {
  /** When it expires (ms). */
  expires: number;
  scope: AgentScope;
  /** Who issued it (a user id). */
  issuer: string;
  /**
   * ADMIN: good while its issuer is an admin. USER (a personal agent): good while its issuer's
   * account exists.
   */
  issuerRole: Role.ADMIN | Role.USER;
}

/** A record as the registry reads it (see withScopeDefaults). */
export type StoredToken = Pick<
  AgentTokenRecord,
  '_id' | 'issued_by' | 'expires_at' | 'revoked_at'
> &
  Partial<Pick<AgentTokenRecord, 'scope' | 'issuer_role'>>;

const STORED_FIELDS = { issued_by: 1, expires_at: 1, revoked_at: 1, scope: 1, issuer_role: 1 };

function factsOf(stored: StoredToken): TokenFacts {
  const record = withScopeDefaults(stored);
  return {
    expires: record.expires_at.getTime(),
    scope: record.scope,
    issuer: record.issued_by.toHexString(),
    issuerRole: record.issuer_role,
  };
}

/** What this instance did since a refresh's read began, which that read may not show. */
interface SinceRead {
  /** Issued here (-> its facts) or revoked here (null). */
  changedHere: Map<string, TokenFacts | null>;
  /** Found good by a single look-up: no newer than the read, so left for the next one to say. */
  lookedUp: Set<string>;
}

/** One refresh's read of the database, applied by `apply`. */
export interface TokenList {
  /** Every live token (a full read), or only those changed since the last read (incremental). */
  full: boolean;
  /** When the read began, by this instance's clock: where the next incremental read starts from. */
  startedAt: number;
  /** The tokens read unrevoked and unexpired: every one there is, when full. */
  live: Map<string, TokenFacts>;
  /** Incremental: the tokens read revoked or expired. */
  ended: Set<string>;
  /** The admins' ids. */
  admins: Set<string>;
  /** Full: the issuers of personal tokens whose accounts are gone. */
  goneIssuers: Set<string> | null;
  since: SinceRead;
}

/**
 * Which agent tokens each instance honours, kept in memory so an agent's request costs no database
 * command. Every AGENT_TOKEN_REFRESH_MS it reads the tokens changed since its last read, and who
 * the admins are (two queries, whatever the traffic); at start and every AGENT_TOKEN_FULL_READ_MS
 * it reads every unrevoked, unexpired token instead, and whether personal tokens' issuers still
 * exist (three). An admin's token is honoured while its issuer is an admin; a personal token while
 * its issuer's account exists.
 *
 * A token unknown at the last refresh (issued since, on another instance) is looked up once; one
 * still unknown stays refused until the next refresh. A token revoked here stays refused here,
 * whatever a refresh that was already reading says; one issued here stays honoured likewise.
 */
export class AgentTokenRegistry {
  /** Unrevoked, unexpired tokens as the reads applied (and look-ups) found them. */
  private known = new Map<string, TokenFacts>();
  private admins = new Set<string>();
  private goneIssuers = new Set<string>();
  /** The tokens honoured, from `known` and what was done here. */
  private valid = new Map<string, TokenFacts>();
  private refused = new Set<string>();
  private since: SinceRead = { changedHere: new Map(), lookedUp: new Set() };
  /** When the last read applied began (ms): the next incremental read starts from there. */
  private watermark: number | undefined;
  /** When the last full read applied began (ms). */
  private lastFullRead = -Infinity;
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
      this.refreshing = asJob(
        REFRESH_JOB,
        () => this.refresh(),
        (error) =>
          this.logger.warn(
            { err: error },
            'agent tokens could not be re-read; keeping the last list',
          ),
      ).finally(() => (this.refreshing = null));
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
    const facts = this.valid.get(id);
    return facts === undefined ? undefined : facts.expires > now;
  }

  async isHonoured(id: string, now = Date.now()): Promise<boolean> {
    return (await this.honouredScope(id, now)) !== null;
  }

  /** The token's scope while it is honoured; null when it is not. */
  async honouredScope(id: string, now = Date.now()): Promise<AgentScope | null> {
    const known = this.status(id, now);
    if (known !== undefined) return known ? this.valid.get(id)!.scope : null;
    const generation = this.generation;
    const found = await this.lookUp(id, now);
    // A refresh applied or a revocation made meanwhile knows better than this read: not kept.
    if (generation === this.generation && !this.refused.has(id)) {
      if (found) {
        this.known.set(id, found);
        this.valid.set(id, found);
        this.since.lookedUp.add(id);
      } else this.refused.add(id);
    }
    const status = this.status(id, now);
    if (status === undefined) return found?.scope ?? null;
    return status ? this.valid.get(id)!.scope : null;
  }

  /**
   * What the list says of a token whose record was just read, without a query: refused when
   * revoked or revoked here, expired, or its issuer no longer keeps it good (as of the last refresh).
   */
  honours(record: StoredToken, now = Date.now()): boolean {
    const id = record._id.toHexString();
    if (record.revoked_at || record.expires_at.getTime() <= now) return false;
    const status = this.status(id, now);
    return status ?? this.issuerKeeps(factsOf(record));
  }

  /** Issued here: good at once on this instance. */
  issued(
    record: Pick<AgentTokenRecord, '_id' | 'expires_at' | 'issued_by' | 'scope' | 'issuer_role'>,
  ): void {
    const id = record._id.toHexString();
    const facts = factsOf({ ...record, revoked_at: null });
    this.refused.delete(id);
    this.known.set(id, facts);
    this.valid.set(id, facts);
    this.since.changedHere.set(id, facts);
  }

  /** Revoked here: refused at once on this instance (others follow within a refresh). */
  revoked(id: Types.ObjectId): void {
    const hex = id.toHexString();
    this.known.delete(hex);
    this.valid.delete(hex);
    this.refused.add(hex);
    this.since.changedHere.set(hex, null);
    this.notify();
  }

  /**
   * A refresh is a read then its apply; they are apart so a test can revoke between them. What is
   * done here from the read's start on is applied over what it read. A read is full at first and
   * once the last full one is AGENT_TOKEN_FULL_READ_MS old, unless `full` says.
   */
  async read(options: { now?: Date; full?: boolean } = {}): Promise<TokenList> {
    const now = options.now ?? new Date();
    const ctx = systemCtx(this.logger, REFRESH_JOB);
    const since: SinceRead = { changedHere: new Map(), lookedUp: new Set() };
    this.since = since;
    const startedAt = now.getTime();
    const full =
      options.full ??
      (this.watermark === undefined || startedAt - this.lastFullRead >= AGENT_TOKEN_FULL_READ_MS);
    const filter = full
      ? { revoked_at: null, expires_at: { $gt: now } }
      : { changed_at: { $gte: new Date(this.watermark! - AGENT_TOKEN_CHANGE_OVERLAP_MS) } };
    const [tokens, admins] = await Promise.all([
      AgentTokenModel.find(filter, STORED_FIELDS).setOptions(dbOptions(ctx)).lean<StoredToken[]>(),
      UserModel.find({ role: Role.ADMIN }, { _id: 1 })
        .setOptions(dbOptions(ctx))
        .lean<Array<{ _id: Types.ObjectId }>>(),
    ]);
    const live = new Map<string, TokenFacts>();
    const ended = new Set<string>();
    for (const token of tokens) {
      const id = token._id.toHexString();
      if (!token.revoked_at && token.expires_at > now) live.set(id, factsOf(token));
      else ended.add(id);
    }
    let goneIssuers: Set<string> | null = null;
    if (full) {
      const issuers = new Set(
        [...live.values()].filter((t) => t.issuerRole === Role.USER).map((t) => t.issuer),
      );
      const existing =
        issuers.size === 0
          ? []
          : await UserModel.find({ _id: { $in: [...issuers] } }, { _id: 1 })
              .setOptions(dbOptions(ctx))
              .lean<Array<{ _id: Types.ObjectId }>>();
      for (const user of existing) issuers.delete(user._id.toHexString());
      goneIssuers = issuers;
    }
    return {
      full,
      startedAt,
      live,
      ended,
      admins: new Set(admins.map((a) => a._id.toHexString())),
      goneIssuers,
      since,
    };
  }

  apply(list: TokenList): void {
    if (list.full) {
      this.known = new Map(list.live);
      this.goneIssuers = list.goneIssuers ?? new Set();
      this.lastFullRead = list.startedAt;
    } else {
      for (const [id, facts] of list.live) this.known.set(id, facts);
      for (const id of list.ended) this.known.delete(id);
    }
    this.admins = list.admins;
    this.watermark = list.startedAt;
    const valid = new Map<string, TokenFacts>();
    for (const [id, facts] of this.known) if (this.issuerKeeps(facts)) valid.set(id, facts);
    const refused = new Set<string>();
    for (const [id, facts] of list.since.changedHere) {
      if (facts === null) {
        this.known.delete(id);
        valid.delete(id);
        refused.add(id);
      } else {
        this.known.set(id, facts);
        valid.set(id, facts);
      }
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

  /** Whether the token's issuer still keeps it good, as the last refresh found the accounts. */
  private issuerKeeps(facts: TokenFacts): boolean {
    return facts.issuerRole === Role.ADMIN
      ? this.admins.has(facts.issuer)
      : !this.goneIssuers.has(facts.issuer);
  }

  private async lookUp(id: string, now: number): Promise<TokenFacts | null> {
    const record = await AgentTokenModel.findOne(
      { _id: id, revoked_at: null, expires_at: { $gt: new Date(now) } },
      STORED_FIELDS,
    ).lean<StoredToken>();
    if (!record) return null;
    const facts = factsOf(record);
    const issuer =
      facts.issuerRole === Role.ADMIN
        ? { _id: record.issued_by, role: Role.ADMIN }
        : { _id: record.issued_by };
    return (await UserModel.exists(issuer)) ? facts : null;
  }
}
