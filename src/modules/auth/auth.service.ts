import { createHmac } from 'node:crypto';
import { Types, type QueryFilter } from 'mongoose';
import type { Config } from '../../core/config';
import {
  dbOptions,
  type CallerContext,
  type RequestContext,
  type SystemContext,
  type UserContext,
} from '../../core/context';
import {
  ConflictError,
  ForbiddenError,
  isDuplicateKeyError,
  NotFoundError,
  UnauthenticatedError,
  UserInputError,
} from '../../core/errors';
import { counterKey, take, takeAll, type Hit, type Limit } from '../../shared/rate-limit';
import { cleanName } from '../../shared/validators';
import { AccountWatch } from './account-watch';
import type { AgentTokenRegistry, StoredToken } from './agent-token-registry';
import { AgentTokenModel, withScopeDefaults, type AgentTokenRecord } from './agent-token.model';
import { agentIdOf, signAgentToken, signUserToken, verifyToken } from './jwt';
import { burnPasswordCheck, hashPassword, verifyPassword } from './password';
import { AgentScope, Role, type Principal } from './roles';
import { logSecurityEvent, type RequestMeta } from './security-log';
import type { AgentToken, AuthPayload } from './auth.types';
import type { RegisterInput } from './auth.inputs';
import { UserModel, type User } from './user.model';

const DEFAULT_AGENT_TOKEN_DAYS = 30;
const LOGIN_WINDOW_MS = 15 * 60_000;
const HOUR_MS = 60 * 60_000;
const DAY_MS = 86_400_000;
/**
 * agentTokens answers the newest this many; and no more than this many admin-issued ones may be
 * unrevoked (expired or not). Users' own tokens are capped apart (caps.agentsPerUser) and listed to
 * an admin too, so an admin's list may leave out older tokens.
 */
export const MAX_LISTED_AGENT_TOKENS = 500;

/**
 * The most grantableAgents answers: every admin-issued token may be one (MAX_LISTED_AGENT_TOKENS
 * unrevoked at most), and the caller's own (agentsPerUser).
 */
export function maxGrantableAgents(agentsPerUser: number): number {
  return MAX_LISTED_AGENT_TOKENS + agentsPerUser;
}

/**
 * The agents `ctx`'s user may grant, as a filter: GRANTED_WALLETS, unrevoked, unexpired, issued by
 * an admin or by the caller. Whether the issuer still keeps the token good is the registry's.
 */
function grantableBy(ctx: UserContext, now: Date): QueryFilter<AgentTokenRecord> {
  return {
    scope: AgentScope.GRANTED_WALLETS,
    revoked_at: null,
    expires_at: { $gt: now },
    $or: [{ issuer_role: Role.ADMIN }, { issued_by: ctx.actor.userId }],
  };
}

/**
 * A token as an open connection holds it (subscriptions): checked when the connection began, and
 * again by refusedSessions while it lasts.
 */
export interface Session {
  principal: Principal;
  /** The token's exp, in ms. */
  expiresAt: number;
  /** A user token's tv (0 for an agent's). */
  tokenVersion: number;
  /** When authenticating it had read the account (ms): what the re-check knows it from. */
  checkedAt: number;
}

export function normalizeEmail(email: string): string {
  return email.trim().toLowerCase();
}

/** Raised at start-up when ADMIN_EMAIL names an account that is not the configured admin's. */
export class AdminAccountError extends Error {
  constructor(email: string) {
    super(
      `ADMIN_EMAIL ${email} belongs to an existing account whose password is not ADMIN_PASSWORD: it was not made an admin`,
    );
    this.name = 'AdminAccountError';
  }
}

export class AuthService {
  /**
   * Keys the rate-limit counters' HMACs: derived from the JWT secret, so every instance shares it.
   */
  private readonly counterSecret: string;
  /** The accounts of the users with a connection open here (refusedSessions). */
  private readonly accounts = new AccountWatch();

  constructor(
    private readonly config: Config,
    private readonly agentTokens: AgentTokenRegistry,
  ) {
    this.counterSecret = createHmac('sha256', config.jwt.secret)
      .update('rate-limit counters')
      .digest('base64url');
  }

  async register(ctx: RequestContext, input: RegisterInput): Promise<AuthPayload> {
    await take({
      key: counterKey(this.counterSecret, 'register:address', ctx.clientAddress),
      limit: this.config.rateLimits.registrationsPerHour,
      windowMs: HOUR_MS,
      what: 'registrations from this address',
    });
    const passwordHash = await hashPassword(input.password);
    try {
      const user = await UserModel.create({
        email: normalizeEmail(input.email),
        name: input.name ? cleanName(input.name) || null : null,
        role: Role.USER,
        password_hash: passwordHash,
      });
      return this.payloadFor(user.toObject());
    } catch (error) {
      if (isDuplicateKeyError(error))
        throw new ConflictError('an account with this email already exists');
      throw error;
    }
  }

  /**
   * One answer for an unknown email and a wrong password, in the same time. Every attempt is
   * counted before its password is checked (per email and address, per address, per email), so at
   * most the limit's number of passwords is ever checked in a window, however many guesses arrive
   * at once; a success gives its count back.
   */
  async login(ctx: RequestContext, email: string, password: string): Promise<AuthPayload> {
    const normalized = normalizeEmail(email);
    const hit = await this.takeLoginAttempt(ctx, normalized);
    let user: User | null;
    let ok: boolean;
    try {
      user = await UserModel.findOne({ email: normalized }).lean<User>();
      ok = user
        ? await verifyPassword(user.password_hash, password)
        : await burnPasswordCheck(password);
    } catch (error) {
      // No password was checked (too many checks in flight, the database away): the attempt is
      // given back.
      await hit.release().catch(() => undefined);
      throw error;
    }
    if (!user || !ok) {
      logSecurityEvent(ctx, 'login failed', { email: this.emailDigest(normalized) });
      throw new UnauthenticatedError('invalid email or password');
    }
    await hit.release();
    return this.payloadFor(user);
  }

  /**
   * The current password is checked under the login limits; every token issued before the change
   * stops working.
   */
  async changePassword(
    ctx: UserContext,
    currentPassword: string,
    newPassword: string,
  ): Promise<AuthPayload> {
    const user = await UserModel.findById(ctx.actor.userId).lean<User>();
    if (!user) throw new UnauthenticatedError('invalid token');
    const hit = await this.takeLoginAttempt(ctx, user.email);
    let ok: boolean;
    try {
      ok = await verifyPassword(user.password_hash, currentPassword);
    } catch (error) {
      await hit.release().catch(() => undefined);
      throw error;
    }
    if (!ok) {
      logSecurityEvent(ctx, 'password change refused');
      throw new UnauthenticatedError('the current password is wrong');
    }
    await hit.release();
    const passwordHash = await hashPassword(newPassword);
    // On the hash checked: two changes at once can't both win.
    const updated = await UserModel.findOneAndUpdate(
      { _id: user._id, password_hash: user.password_hash },
      { $set: { password_hash: passwordHash }, $inc: { token_version: 1 } },
      { returnDocument: 'after' },
    ).lean<User>();
    if (!updated) throw new ConflictError('the password was changed meanwhile: sign in again');
    logSecurityEvent(ctx, 'password changed');
    return this.payloadFor(updated);
  }

  /** Agents have no account: `me` describes the token (its id, name and issue time). */
  async me(ctx: CallerContext): Promise<User> {
    const principal = ctx.actor;
    if (principal.kind === 'agent') {
      return {
        _id: principal.agentId,
        email: '',
        name: principal.name,
        role: Role.AGENT,
        password_hash: '',
        created_at: principal.issuedAt,
        updated_at: principal.issuedAt,
      };
    }
    const user = await UserModel.findById(principal.userId).lean<User>();
    if (!user) throw new NotFoundError('user not found');
    return user;
  }

  /**
   * An admin issues either scope; a user issues GRANTED_WALLETS tokens only, as personal agents that
   * only they can grant, at most caps.agentsPerUser of them unrevoked and unexpired.
   */
  async issueAgentToken(
    ctx: UserContext,
    name: string,
    expiresInDays: number | null | undefined,
    scope: AgentScope,
  ): Promise<AgentToken> {
    const issuer = ctx.actor;
    const admin = issuer.role === Role.ADMIN;
    if (!admin && scope === AgentScope.ALL_WALLETS)
      throw new ForbiddenError(
        'only an admin issues ALL_WALLETS agent tokens: ask for scope GRANTED_WALLETS, an agent of your own that acts only on the wallets you grant it',
      );
    const now = new Date();
    const record = {
      _id: new Types.ObjectId(),
      name: cleanName(name),
      issued_by: issuer.userId,
      scope,
      issuer_role: admin ? (Role.ADMIN as const) : (Role.USER as const),
      expires_at: new Date(now.getTime() + (expiresInDays ?? DEFAULT_AGENT_TOKEN_DAYS) * DAY_MS),
      revoked_at: null,
      changed_at: now,
    };
    // The record first: a token without one is refused.
    if (admin)
      await this.insertWithinCap(
        record,
        // Records from before issuer_role are admins' (see withScopeDefaults).
        { issuer_role: { $ne: Role.USER }, revoked_at: null },
        MAX_LISTED_AGENT_TOKENS,
        `at most ${MAX_LISTED_AGENT_TOKENS} agent tokens may be unrevoked (expired ones count until revoked): revoke one first`,
      );
    else {
      const cap = this.config.caps.agentsPerUser;
      await this.insertWithinCap(
        record,
        {
          issued_by: issuer.userId,
          issuer_role: Role.USER,
          revoked_at: null,
          expires_at: { $gt: now },
        },
        cap,
        `at most ${cap} agent tokens of your own may be unrevoked and unexpired: revoke one first`,
      );
    }
    const signed = signAgentToken(
      this.config.jwt,
      record._id,
      record.name,
      record.expires_at,
      record.scope === AgentScope.GRANTED_WALLETS,
    );
    this.agentTokens.issued(record);
    logSecurityEvent(ctx, 'agent token issued', {
      agentTokenId: record._id.toHexString(),
      agent: record.name,
      scope: record.scope,
    });
    return {
      id: record._id,
      token: signed.token,
      name: record.name,
      expiresAt: signed.expiresAt,
      scope: record.scope,
    };
  }

  /**
   * Newest first, at most MAX_LISTED_AGENT_TOKENS; revoked ones only when asked for. An admin's
   * list has every token, users' own included; a user's, the tokens they issued.
   */
  async listAgentTokens(
    ctx: UserContext,
    includeRevoked: boolean | null | undefined,
  ): Promise<AgentTokenRecord[]> {
    const records = await AgentTokenModel.find({
      ...this.visibleTo(ctx),
      ...(includeRevoked ? {} : { revoked_at: null }),
    })
      .sort({ created_at: -1, _id: -1 })
      .limit(MAX_LISTED_AGENT_TOKENS)
      .lean<AgentTokenRecord[]>();
    return records.map(withScopeDefaults);
  }

  /**
   * Idempotent: revoking a revoked token answers it as it is. To a user, another's token answers
   * as an unknown id does, so the answer tells nothing of it.
   */
  async revokeAgentToken(ctx: UserContext, id: Types.ObjectId): Promise<AgentTokenRecord> {
    const now = new Date();
    const revoked = await AgentTokenModel.findOneAndUpdate(
      { _id: id, ...this.visibleTo(ctx), revoked_at: null },
      { $set: { revoked_at: now, changed_at: now } },
      { returnDocument: 'after' },
    ).lean<AgentTokenRecord>();
    if (revoked) {
      this.agentTokens.revoked(id);
      logSecurityEvent(ctx, 'agent token revoked', {
        agentTokenId: id.toHexString(),
        agent: revoked.name,
      });
      return withScopeDefaults(revoked);
    }
    const existing = await AgentTokenModel.findOne({
      _id: id,
      ...this.visibleTo(ctx),
    }).lean<AgentTokenRecord>();
    if (!existing) throw new NotFoundError('no agent token with that id');
    return withScopeDefaults(existing);
  }

  /**
   * The agents the caller may grant a wallet to, newest first: GRANTED_WALLETS tokens an admin
   * issued, and the caller's own; unrevoked, unexpired and still honoured.
   */
  async grantableAgents(ctx: UserContext): Promise<AgentTokenRecord[]> {
    const now = new Date();
    const records = await AgentTokenModel.find(grantableBy(ctx, now))
      .sort({ created_at: -1, _id: -1 })
      .limit(maxGrantableAgents(this.config.caps.agentsPerUser))
      .lean<AgentTokenRecord[]>();
    return records.filter((r) => this.agentTokens.honours(r, now.getTime()));
  }

  /**
   * One agent as grantableAgents would list it to the caller (one database command); null when
   * the caller may not grant it.
   */
  async grantableAgent(
    ctx: UserContext,
    agentId: Types.ObjectId,
  ): Promise<Pick<AgentTokenRecord, '_id' | 'name' | 'expires_at'> | null> {
    const now = new Date();
    const record = await AgentTokenModel.findOne(
      { _id: agentId, ...grantableBy(ctx, now) },
      { name: 1, issued_by: 1, expires_at: 1, revoked_at: 1, scope: 1, issuer_role: 1 },
    ).lean<StoredToken & Pick<AgentTokenRecord, 'name'>>();
    if (!record || !this.agentTokens.honours(record, now.getTime())) return null;
    return { _id: record._id, name: record.name, expires_at: record.expires_at };
  }

  /**
   * The principal behind an Authorization header; null without one. A user token is honoured only
   * while its user exists and its password has not changed since, with the role the user has now;
   * an agent token only while its record is unrevoked and unexpired and its issuer an admin.
   */
  async authenticate(header: string | undefined): Promise<Principal | null> {
    if (header === undefined || header === '') return null;
    const match = /^Bearer ([A-Za-z0-9_.~+/=-]+)$/.exec(header);
    if (!match)
      throw new UnauthenticatedError('malformed Authorization header: expected "Bearer <token>"');
    const claims = verifyToken(this.config.jwt, match[1]);
    if (claims.typ !== 'user') {
      // Tokens from before agent_tokens existed carry no jti: they have no record, so they are
      // refused.
      const scope =
        claims.jti === undefined ? null : await this.agentTokens.honouredScope(claims.jti);
      if (scope === null)
        throw new UnauthenticatedError('this agent token was revoked or is unknown');
      return {
        kind: 'agent',
        agentId: agentIdOf(claims.sub),
        role: Role.AGENT,
        name: claims.name,
        issuedAt: new Date(claims.iat * 1000),
        scope,
      };
    }
    const user = await UserModel.findById(claims.sub, { role: 1, email: 1, token_version: 1 }).lean<
      Pick<User, '_id' | 'role' | 'email' | 'token_version'>
    >();
    if (!user || (user.role !== Role.USER && user.role !== Role.ADMIN))
      throw new UnauthenticatedError('invalid token');
    if ((claims.tv ?? 0) !== (user.token_version ?? 0))
      throw new UnauthenticatedError(
        'this token was issued before a password change: sign in again',
      );
    return { kind: 'user', userId: user._id, role: user.role, email: user.email };
  }

  /** As authenticate, with what an open connection's later checks need of the token. */
  async authenticateSession(header: string | undefined): Promise<Session | null> {
    const principal = await this.authenticate(header);
    if (!principal) return null;
    // Verified just above: read again for its expiry and token version.
    const claims = verifyToken(this.config.jwt, header!.slice('Bearer '.length));
    return {
      principal,
      expiresAt: claims.exp * 1000,
      tokenVersion: claims.typ === 'user' ? (claims.tv ?? 0) : 0,
      checkedAt: Date.now(),
    };
  }

  /**
   * A session opened here: its account is watched (see AccountWatch) until `unwatchAccount` with
   * the key this returns; null for an agent's, which the registry's list answers for.
   */
  watchAccount(session: Session): string | null {
    const { principal } = session;
    if (principal.kind !== 'user') return null;
    return this.accounts.watch({
      userId: principal.userId,
      role: principal.role,
      tokenVersion: session.tokenVersion,
      checkedAt: session.checkedAt,
    });
  }

  unwatchAccount(key: string): void {
    this.accounts.unwatch(key);
  }

  /**
   * Reads what changed of the watched accounts (what changed since the last check, and a turn of
   * accounts by id: see AccountWatch) and returns the keys of those found changed or gone: their
   * sessions are the ones to look at again. The service's own check (live/live-sessions.ts): its
   * queries carry the job's comment.
   */
  changedAccounts(ctx: SystemContext): Promise<ReadonlySet<string>> {
    return this.accounts.check(ctx);
  }

  /**
   * The sessions whose token stopped being good, each with the reason, in authenticate's words:
   * expired, an agent token the registry no longer honours (its list: no query), a user account
   * gone, its password or its role changed since the session began (as the watch of its account,
   * `account`, knows it: no query).
   */
  async refusedSessions(
    sessions: ReadonlyArray<{ session: Session; account: string | null }>,
    now = Date.now(),
  ): Promise<Map<Session, string>> {
    const refused = new Map<Session, string>();
    for (const { session, account: key } of sessions) {
      const { principal } = session;
      if (session.expiresAt <= now) refused.set(session, 'token expired');
      else if (principal.kind === 'agent') {
        if (!(await this.agentTokens.isHonoured(principal.agentId.toHexString(), now)))
          refused.set(session, 'this agent token was revoked or is unknown');
      } else {
        const account = key === null ? null : this.accounts.facts(key);
        if (!account) refused.set(session, 'invalid token');
        else if (account.tokenVersion !== session.tokenVersion)
          refused.set(session, 'this token was issued before a password change: sign in again');
        else if (account.role !== principal.role)
          refused.set(session, "the account's role changed: connect again");
      }
    }
    return refused;
  }

  /** Called whenever agent tokens may have stopped being good here; returns the unsubscribe. */
  onAgentTokensChanged(listener: () => void): () => void {
    return this.agentTokens.onChange(listener);
  }

  /**
   * ADMIN_EMAIL/ADMIN_PASSWORD: that user exists and is an admin. An account created here is one;
   * an existing account is promoted only when its password is ADMIN_PASSWORD, so registering the
   * address first gains nothing. Otherwise it is left as it is, an error names the email, and in
   * production the start stops.
   */
  async ensureAdmin(ctx: SystemContext): Promise<void> {
    const admin = this.config.admin;
    if (!admin) return;
    const email = normalizeEmail(admin.email);
    const startUp: RequestMeta = {
      logger: ctx.logger,
      clientAddress: 'start-up',
      actor: null,
    };
    const existing = await UserModel.findOne({ email }, { role: 1, password_hash: 1 })
      .setOptions(dbOptions(ctx))
      .lean<Pick<User, '_id' | 'role' | 'password_hash'>>();
    if (existing?.role === Role.ADMIN) return;
    if (existing) {
      if (!(await verifyPassword(existing.password_hash, admin.password))) {
        const error = new AdminAccountError(email);
        ctx.logger.error({ security: 'admin not promoted', email }, error.message);
        if (this.config.nodeEnv === 'production') throw error;
        return;
      }
      // On the hash checked: a password changed meanwhile is not promoted.
      const promoted = await UserModel.updateOne(
        { _id: existing._id, password_hash: existing.password_hash },
        { $set: { role: Role.ADMIN } },
        dbOptions(ctx),
      );
      if (promoted.modifiedCount > 0) logSecurityEvent(startUp, 'admin promoted', { email });
      return;
    }
    try {
      await UserModel.create({
        email,
        name: 'Administrator',
        role: Role.ADMIN,
        password_hash: await hashPassword(admin.password),
      });
      ctx.logger.info({ email }, 'admin account created');
    } catch (error) {
      // Another instance created it at the same moment: it exists, which is all we need.
      if (!isDuplicateKeyError(error)) throw error;
    }
  }

  /**
   * Inserts a token's record unless `counted` (a filter its record matches) already has `cap`
   * records. Counted again with it in: of several issued at once, each that finds the count over
   * the cap takes its own back, so however they interleave no more than the cap are kept (all of
   * them may be refused).
   */
  private async insertWithinCap(
    record: Partial<AgentTokenRecord> & Pick<AgentTokenRecord, '_id'>,
    counted: QueryFilter<AgentTokenRecord>,
    cap: number,
    message: string,
  ): Promise<void> {
    if ((await AgentTokenModel.countDocuments(counted)) >= cap) throw new UserInputError(message);
    await AgentTokenModel.create(record);
    if ((await AgentTokenModel.countDocuments(counted)) > cap) {
      await AgentTokenModel.deleteOne({ _id: record._id });
      throw new UserInputError(message);
    }
  }

  /** The tokens the caller may see and revoke: every one for an admin, a user's own for a user. */
  private visibleTo(ctx: UserContext): { issued_by?: Types.ObjectId } {
    return ctx.actor.role === Role.ADMIN ? {} : { issued_by: ctx.actor.userId };
  }

  /**
   * One hit on each login counter: per email and address (`loginFailures` in 15 minutes), per
   * address (the same), per email from anywhere (`loginFailuresPerEmail` an hour, much higher, so a
   * stranger can't lock out a user who signs in from elsewhere).
   */
  private takeLoginAttempt(ctx: RequestContext, email: string): Promise<Hit> {
    const { loginFailures, loginFailuresPerEmail } = this.config.rateLimits;
    const limits: Limit[] = [
      {
        key: counterKey(this.counterSecret, 'login:pair', email, ctx.clientAddress),
        limit: loginFailures,
        windowMs: LOGIN_WINDOW_MS,
        what: 'failed logins',
      },
      {
        key: counterKey(this.counterSecret, 'login:address', ctx.clientAddress),
        limit: loginFailures,
        windowMs: LOGIN_WINDOW_MS,
        what: 'failed logins',
      },
      {
        key: counterKey(this.counterSecret, 'login:email', email),
        limit: loginFailuresPerEmail,
        windowMs: HOUR_MS,
        what: 'failed logins',
      },
    ];
    return takeAll(limits);
  }

  /**
   * How logs name an email someone typed: a digest, since a password typed there must not be
   * logged.
   */
  private emailDigest(email: string): string {
    return counterKey(this.counterSecret, 'email', email).slice(
      'email:'.length,
      'email:'.length + 12,
    );
  }

  private payloadFor(user: User): AuthPayload {
    const signed = signUserToken(
      this.config.jwt,
      user._id,
      user.role === Role.ADMIN ? Role.ADMIN : Role.USER,
      user.token_version ?? 0,
    );
    return { token: signed.token, expiresAt: signed.expiresAt, user };
  }
}
