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

/** What a watched account was last known to be, and as of when (ms, this instance's clock). */
interface Known {
  /** Null: no longer in the database. */
  facts: { role: Role; tokenVersion: number } | null;
  asOf: number;
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

/**
 * The accounts of the users with a connection open, as the sessions' re-check needs them (their
 * role and token version, or gone), at a cost that does not grow with how many there are. An
 * account is first known from its session: what authenticating it read. Then each check reads the
 * accounts changed since the last one (by `updated_at`, on its index: usually none) and a turn of
 * ids (ACCOUNTS_REREAD_PER_CHECK); no check reads every account.
 *
 * A read applies to an account only if it began after what was known of it: a session
 * authenticated while a read was on its way knows better than that read.
 */
export class AccountWatch {
  private readonly known = new Map<string, Known>();
  /** Changes from this moment on have not been read yet (undefined: nothing is watched). */
  private unreadSince: number | undefined;
  /** The ids of this turn of re-reads, and how far it has gone. */
  private turn: string[] = [];
  private turnAt = 0;
  /** One check at a time: an older read applied after a newer one would bring back the past. */
  private checking: Promise<unknown> = Promise.resolve();

  /**
   * The accounts of these users as the database has them now, give or take the last changes' way
   * in: `checkedAt` is when each session's authentication had read its account. Accounts no longer
   * asked for are forgotten.
   */
  check(
    ctx: SystemContext,
    users: readonly WatchedUser[],
  ): Promise<ReadonlyMap<string, Known['facts']>> {
    const run = this.checking.then(() => this.read(ctx, users));
    this.checking = run.catch(() => undefined);
    return run;
  }

  private async read(
    ctx: SystemContext,
    users: readonly WatchedUser[],
  ): Promise<ReadonlyMap<string, Known['facts']>> {
    const watched = new Map<string, Types.ObjectId>();
    for (const user of users) {
      const id = user.userId.toHexString();
      watched.set(id, user.userId);
      const known = this.known.get(id);
      if (known && known.asOf >= user.checkedAt) continue;
      this.known.set(id, {
        facts: { role: user.role, tokenVersion: user.tokenVersion },
        asOf: user.checkedAt,
      });
      // What changed since its authentication is still to be read.
      this.unreadSince = Math.min(this.unreadSince ?? user.checkedAt, user.checkedAt);
    }
    for (const id of this.known.keys()) if (!watched.has(id)) this.known.delete(id);
    if (watched.size === 0) {
      this.unreadSince = undefined;
      return new Map();
    }

    const again = this.nextTurn(watched);
    const startedAt = Date.now();
    const options = dbOptions(ctx);
    const [changed, reread] = await Promise.all([
      UserModel.find(
        { updated_at: { $gte: new Date(this.unreadSince! - ACCOUNT_CHANGE_OVERLAP_MS) } },
        STORED,
      )
        .setOptions(options)
        .lean<Stored[]>(),
      again.length === 0
        ? Promise.resolve([])
        : UserModel.find({ _id: { $in: again } }, STORED)
            .setOptions(options)
            .lean<Stored[]>(),
    ]);
    const learn = (id: string, facts: Known['facts']) => {
      const known = this.known.get(id);
      if (known && startedAt > known.asOf) this.known.set(id, { facts, asOf: startedAt });
    };
    const found = new Set<string>();
    for (const account of [...changed, ...reread]) {
      const id = account._id.toHexString();
      found.add(id);
      learn(id, { role: account.role, tokenVersion: account.token_version ?? 0 });
    }
    for (const id of again) if (!found.has(id.toHexString())) learn(id.toHexString(), null);
    this.unreadSince = startedAt;

    const facts = new Map<string, Known['facts']>();
    for (const id of watched.keys()) facts.set(id, this.known.get(id)!.facts);
    return facts;
  }

  /** The next ids to read again, in turn through the watched ones. */
  private nextTurn(watched: ReadonlyMap<string, Types.ObjectId>): Types.ObjectId[] {
    const again = new Map<string, Types.ObjectId>();
    const wanted = Math.min(ACCOUNTS_REREAD_PER_CHECK, watched.size);
    let fresh = false;
    while (again.size < wanted) {
      if (this.turnAt >= this.turn.length) {
        // A turn begun in this call has gone through every watched id.
        if (fresh) break;
        this.turn = [...watched.keys()];
        this.turnAt = 0;
        fresh = true;
      }
      const id = this.turn[this.turnAt++];
      const objectId = watched.get(id);
      // Gone from the watch since this turn began: its place goes to the next.
      if (objectId) again.set(id, objectId);
    }
    return [...again.values()];
  }
}
