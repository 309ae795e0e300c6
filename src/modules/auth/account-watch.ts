import type { Types } from 'mongoose';
import { dbOptions, type SystemContext } from '../../core/context';
import type { Role } from './roles';
import { UserModel, type User } from './user.model';

/**
 * How far back of the last read each read of changed accounts starts: `updated_at` is stamped by
 * the instance that wrote the account, whose clock (and a write still on its way) may be behind
 * this one's by up to this (as the agent-token registry allows for).
 */
export const ACCOUNT_CHANGE_OVERLAP_MS = 5_000;

/**
 * How many of the watched accounts each check also reads again by id, in turn: an account removed
 * from the database, or changed there by hand without `updated_at`, is seen within one turn
 * through them (one check while this many or fewer are watched). An engine answers a list of ids
 * at a cost that grows with its length (the embedded one: about 0.08 ms an id).
 */
export const ACCOUNTS_REREAD_PER_CHECK = 250;

/** A watched account: what it was last known to be, as of when (ms, this instance's clock). */
interface Watched {
  userId: Types.ObjectId;
  /** Null: no longer in the database. */
  facts: AccountFacts | null;
  asOf: number;
  /** Its sessions open here. */
  sessions: number;
}

/** What the sessions' re-check compares with what a session's token says. */
export interface AccountFacts {
  role: Role;
  tokenVersion: number;
}

/** A connected user, as its session knows the account (`checkedAt`: when it read it, ms). */
export interface WatchedUser {
  userId: Types.ObjectId;
  role: Role;
  tokenVersion: number;
  checkedAt: number;
}

type Stored = Pick<User, '_id' | 'role' | 'token_version'>;
const STORED = { role: 1, token_version: 1 };

const sameFacts = (a: AccountFacts | null, b: AccountFacts | null) =>
  a === b || (!!a && !!b && a.role === b.role && a.tokenVersion === b.tokenVersion);

/**
 * The accounts of the users with a connection open, as the sessions' re-check needs them (their
 * role and token version, or gone), at a cost that does not grow with how many there are. An
 * account is watched from its first session's opening to its last one's end, first known from that
 * session: what authenticating it read. Then each check reads the accounts changed since the last
 * one (by `updated_at`, on its index: usually none) and a turn of ids (ACCOUNTS_REREAD_PER_CHECK),
 * and says which accounts it found changed; no check reads every account, nor goes through every
 * watched one.
 *
 * A read applies to an account only if it began after what was known of it: a session
 * authenticated while a read was on its way knows better than that read.
 */
export class AccountWatch {
  /** By user id (hex). */
  private readonly watched = new Map<string, Watched>();
  /** Changes from this moment on have not been read yet (undefined: nothing is watched). */
  private unreadSince: number | undefined;
  /** The ids of this turn of re-reads, and how far it has gone. */
  private turn: string[] = [];
  private turnAt = 0;
  /** One check at a time: an older read applied after a newer one would bring back the past. */
  private checking: Promise<unknown> = Promise.resolve();
  /** Known differently since the last check by a newer session's authentication. */
  private changedByWatch = new Set<string>();

  /** A session of this user opened: returns the account's key, for `facts` and `unwatch`. */
  watch(user: WatchedUser): string {
    const key = user.userId.toHexString();
    const facts = { role: user.role, tokenVersion: user.tokenVersion };
    const known = this.watched.get(key);
    if (!known)
      this.watched.set(key, { userId: user.userId, facts, asOf: user.checkedAt, sessions: 1 });
    else {
      known.sessions++;
      if (known.asOf >= user.checkedAt) return key;
      // Its older sessions may hold what this one's authentication found changed.
      if (!sameFacts(known.facts, facts)) this.changedByWatch.add(key);
      known.facts = facts;
      known.asOf = user.checkedAt;
    }
    // What changed since its authentication is still to be read.
    this.unreadSince = Math.min(this.unreadSince ?? user.checkedAt, user.checkedAt);
    return key;
  }

  /** One of the account's sessions ended: forgotten with its last one. */
  unwatch(key: string): void {
    const known = this.watched.get(key);
    if (known && --known.sessions <= 0) this.watched.delete(key);
  }

  /** What is known of a watched account now: null when gone; undefined when not watched. */
  facts(key: string): AccountFacts | null | undefined {
    return this.watched.get(key)?.facts;
  }

  /**
   * Reads what changed of the watched accounts, give or take the last changes' way in, and returns
   * the keys of those found changed (or gone) since they were last known.
   */
  check(ctx: SystemContext): Promise<ReadonlySet<string>> {
    const run = this.checking.then(() => this.read(ctx));
    this.checking = run.catch(() => undefined);
    return run;
  }

  private async read(ctx: SystemContext): Promise<ReadonlySet<string>> {
    const changedKeys = this.changedByWatch;
    this.changedByWatch = new Set();
    if (this.watched.size === 0) {
      this.unreadSince = undefined;
      return changedKeys;
    }
    const again = this.nextTurn();
    const startedAt = Date.now();
    const options = dbOptions(ctx);
    let changed: Stored[];
    let reread: Stored[];
    try {
      [changed, reread] = await Promise.all([
        UserModel.find(
          { updated_at: { $gte: new Date(this.unreadSince! - ACCOUNT_CHANGE_OVERLAP_MS) } },
          STORED,
        )
          .setOptions(options)
          .lean<Stored[]>(),
        again.length === 0
          ? Promise.resolve([])
          : UserModel.find({ _id: { $in: again.map((known) => known.userId) } }, STORED)
              .setOptions(options)
              .lean<Stored[]>(),
      ]);
    } catch (error) {
      // What the sessions' authentication changed is still to be looked at, by the next check.
      for (const key of changedKeys) this.changedByWatch.add(key);
      throw error;
    }
    const learn = (key: string, facts: AccountFacts | null) => {
      const known = this.watched.get(key);
      if (!known || startedAt <= known.asOf) return;
      if (!sameFacts(known.facts, facts)) changedKeys.add(key);
      known.facts = facts;
      known.asOf = startedAt;
    };
    const found = new Set<string>();
    for (const account of [...changed, ...reread]) {
      const key = account._id.toHexString();
      found.add(key);
      learn(key, { role: account.role, tokenVersion: account.token_version ?? 0 });
    }
    for (const known of again) {
      const key = known.userId.toHexString();
      if (!found.has(key)) learn(key, null);
    }
    this.unreadSince = startedAt;
    return changedKeys;
  }

  /** The next accounts to read again, in turn through the watched ones. */
  private nextTurn(): Watched[] {
    const again = new Map<string, Watched>();
    const wanted = Math.min(ACCOUNTS_REREAD_PER_CHECK, this.watched.size);
    let fresh = false;
    while (again.size < wanted) {
      if (this.turnAt >= this.turn.length) {
        // A turn begun in this call has gone through every watched id.
        if (fresh) break;
        this.turn = [...this.watched.keys()];
        this.turnAt = 0;
        fresh = true;
      }
      const key = this.turn[this.turnAt++];
      const known = this.watched.get(key);
      // No longer watched since this turn began: its place goes to the next.
      if (known) again.set(key, known);
    }
    return [...again.values()];
  }
}
