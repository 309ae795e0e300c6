import { createHmac } from 'node:crypto';
import { Types } from 'mongoose';
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
import type { AgentTokenRegistry } from './agent-token-registry';
import { AgentTokenModel, type AgentTokenRecord } from './agent-token.model';
import { agentIdOf, signAgentToken, signUserToken, verifyToken } from './jwt';
import { burnPasswordCheck, hashPassword, verifyPassword } from './password';
import { AgentScope, Role, type Principal, type UserPrincipal } from './roles';
import { logSecurityEvent, type RequestMeta } from './security-log';
import type { AgentToken, AuthPayload } from './auth.types';
import type { RegisterInput } from './auth.inputs';
import { UserModel, type User } from './user.model';

const DEFAULT_AGENT_TOKEN_DAYS = 30;
const LOGIN_WINDOW_MS = 15 * 60_000;
const HOUR_MS = 60 * 60_000;
const DAY_MS = 86_400_000;
/**
 * agentTokens answers the newest this many; and no more than this many unrevoked ones (expired or
 * not) may exist, so every token an admin may still revoke is listed.
 */
export const MAX_LISTED_AGENT_TOKENS = 500;

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

  async issueAgentToken(
    ctx: UserContext,
    name: string,
    expiresInDays: number | null | undefined,
  ): Promise<AgentToken> {
    const admin = ctx.actor;
    if (admin.role !== Role.ADMIN) throw new ForbiddenError('issueAgentToken is for ADMIN only');
    if ((await AgentTokenModel.countDocuments({ revoked_at: null })) >= MAX_LISTED_AGENT_TOKENS)
      throw new UserInputError(
        `at most ${MAX_LISTED_AGENT_TOKENS} agent tokens may be unrevoked (expired ones count until revoked): revoke one first`,
      );
    const now = new Date();
    const record = {
      _id: new Types.ObjectId(),
      name: cleanName(name),
      issued_by: admin.userId,
      scope: AgentScope.ALL_WALLETS,
      issuer_role: Role.ADMIN as const,
      expires_at: new Date(now.getTime() + (expiresInDays ?? DEFAULT_AGENT_TOKEN_DAYS) * DAY_MS),
      revoked_at: null,
      changed_at: now,
    };
    // The record first: a token without one is refused.
    await AgentTokenModel.create(record);
    const signed = signAgentToken(this.config.jwt, record._id, record.name, record.expires_at);
    this.agentTokens.issued(record);
    logSecurityEvent(ctx, 'agent token issued', {
      agentTokenId: record._id.toHexString(),
      agent: record.name,
    });
    return { id: record._id, token: signed.token, name: record.name, expiresAt: signed.expiresAt };
  }

  /** Newest first, at most MAX_LISTED_AGENT_TOKENS; revoked ones only when asked for. */
  listAgentTokens(
    _ctx: UserContext,
    includeRevoked: boolean | null | undefined,
  ): Promise<AgentTokenRecord[]> {
    return AgentTokenModel.find(includeRevoked ? {} : { revoked_at: null })
      .sort({ created_at: -1, _id: -1 })
      .limit(MAX_LISTED_AGENT_TOKENS)
      .lean<AgentTokenRecord[]>()
      .exec();
  }

  /** Idempotent: revoking a revoked token answers it as it is. */
  async revokeAgentToken(ctx: UserContext, id: Types.ObjectId): Promise<AgentTokenRecord> {
    const now = new Date();
    const revoked = await AgentTokenModel.findOneAndUpdate(
      { _id: id, revoked_at: null },
      { $set: { revoked_at: now, changed_at: now } },
      { returnDocument: 'after' },
    ).lean<AgentTokenRecord>();
    if (revoked) {
      this.agentTokens.revoked(id);
      logSecurityEvent(ctx, 'agent token revoked', {
        agentTokenId: id.toHexString(),
        agent: revoked.name,
      });
      return revoked;
    }
    const existing = await AgentTokenModel.findById(id).lean<AgentTokenRecord>();
    if (!existing) throw new NotFoundError('no agent token with that id');
    return existing;
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
    if (claims.typ === 'agent') {
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
    };
  }

  /**
   * The sessions whose token stopped being good, each with the reason, in authenticate's words:
   * expired, an agent token the registry no longer honours (its list: no query), a user account
   * gone, its password or its role changed since the session began (one query for all of them).
   * The service's own check (live/live-sessions.ts): its query carries the job's comment.
   */
  async refusedSessions(
    ctx: SystemContext,
    sessions: readonly Session[],
    now = Date.now(),
  ): Promise<Map<Session, string>> {
    const refused = new Map<Session, string>();
    const users: Array<[Session, UserPrincipal]> = [];
    for (const session of sessions) {
      const { principal } = session;
      if (session.expiresAt <= now) refused.set(session, 'token expired');
      else if (principal.kind === 'user') users.push([session, principal]);
      else if (!(await this.agentTokens.isHonoured(principal.agentId.toHexString(), now)))
        refused.set(session, 'this agent token was revoked or is unknown');
    }
    if (users.length === 0) return refused;
    const ids = new Set(users.map(([, principal]) => principal.userId.toHexString()));
    const accounts = await UserModel.find({ _id: { $in: [...ids] } }, { role: 1, token_version: 1 })
      .setOptions(dbOptions(ctx))
      .lean<Array<Pick<User, '_id' | 'role' | 'token_version'>>>();
    const byId = new Map(accounts.map((a) => [a._id.toHexString(), a]));
    for (const [session, principal] of users) {
      const account = byId.get(principal.userId.toHexString());
      if (!account) refused.set(session, 'invalid token');
      else if ((account.token_version ?? 0) !== session.tokenVersion)
        refused.set(session, 'this token was issued before a password change: sign in again');
      else if (account.role !== principal.role)
        refused.set(session, "the account's role changed: connect again");
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
