import type { Config } from '../config';
import { ConflictError, ForbiddenError, isDuplicateKeyError, NotFoundError, UnauthenticatedError } from '../errors';
import type { Logger } from '../logger';
import { assertUnder, consume, record } from '../shared/rate-limit';
import { agentIdOf, signAgentToken, signUserToken, verifyToken } from './jwt';
import { burnPasswordCheck, hashPassword, verifyPassword } from './password';
import { Role, type Principal } from './roles';
import type { AgentToken, AuthPayload } from './auth.types';
import type { RegisterInput } from './auth.inputs';
import { UserModel, type User } from './user.model';

const DEFAULT_AGENT_TOKEN_DAYS = 30;
const LOGIN_WINDOW_MS = 15 * 60_000;
const HOUR_MS = 60 * 60_000;
const DAY_SECONDS = 86_400;

export function normalizeEmail(email: string): string {
  return email.trim().toLowerCase();
}

export class AuthService {
  constructor(
    private readonly config: Config,
    private readonly logger: Logger,
  ) {}

  async register(input: RegisterInput, clientAddress: string): Promise<AuthPayload> {
    await consume(`register:address:${clientAddress}`, this.config.rateLimits.registrationsPerHour, HOUR_MS, 'registrations from this address');
    const passwordHash = await hashPassword(input.password);
    try {
      const user = await UserModel.create({
        email: normalizeEmail(input.email),
        name: input.name?.trim() || null,
        role: Role.USER,
        password_hash: passwordHash,
      });
      return this.payloadFor(user.toObject());
    } catch (error) {
      if (isDuplicateKeyError(error)) throw new ConflictError('an account with this email already exists');
      throw error;
    }
  }

  /**
   * One answer for an unknown email and a wrong password, in the same time. Failures are counted
   * per email and per client address in the database (shared by every instance); past the limit,
   * no password is even checked.
   */
  async login(email: string, password: string, clientAddress: string): Promise<AuthPayload> {
    const normalized = normalizeEmail(email);
    const keys = [`login-failures:email:${normalized}`, `login-failures:address:${clientAddress}`];
    await assertUnder(keys, this.config.rateLimits.loginFailures, LOGIN_WINDOW_MS, 'failed logins');
    const user = await UserModel.findOne({ email: normalized }).lean<User>();
    const ok = user ? await verifyPassword(user.password_hash, password) : await burnPasswordCheck(password);
    if (!user || !ok) {
      await Promise.all(keys.map((key) => record(key, LOGIN_WINDOW_MS)));
      throw new UnauthenticatedError('invalid email or password');
    }
    return this.payloadFor(user);
  }

  /** Agents have no account: `me` describes the token (its id, name and issue time). */
  async me(principal: Principal): Promise<User> {
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

  issueAgentToken(principal: Principal, name: string, expiresInDays: number | null | undefined): AgentToken {
    if (principal.role !== Role.ADMIN) throw new ForbiddenError('issueAgentToken is for ADMIN only');
    const agentName = name.trim();
    const signed = signAgentToken(this.config.jwt, agentName, (expiresInDays ?? DEFAULT_AGENT_TOKEN_DAYS) * DAY_SECONDS);
    this.logger.info({ agent: agentName, by: principal.userId.toHexString() }, 'agent token issued');
    return { token: signed.token, name: agentName, expiresAt: signed.expiresAt };
  }

  /**
   * The principal behind an Authorization header; null without one. A user token is honoured
   * only while its user exists, with the role the user has now.
   */
  async authenticate(header: string | undefined): Promise<Principal | null> {
    if (header === undefined || header === '') return null;
    const match = /^Bearer ([A-Za-z0-9_.~+/=-]+)$/.exec(header);
    if (!match) throw new UnauthenticatedError('malformed Authorization header: expected "Bearer <token>"');
    const claims = verifyToken(this.config.jwt, match[1]);
    if (claims.typ === 'agent') {
      return {
        kind: 'agent',
        agentId: agentIdOf(claims.sub),
        role: Role.AGENT,
        name: claims.name,
        issuedAt: new Date(claims.iat * 1000),
      };
    }
    const user = await UserModel.findById(claims.sub, { role: 1, email: 1 }).lean<Pick<User, '_id' | 'role' | 'email'>>();
    if (!user || (user.role !== Role.USER && user.role !== Role.ADMIN)) throw new UnauthenticatedError('invalid token');
    return { kind: 'user', userId: user._id, role: user.role, email: user.email };
  }

  /** ADMIN_EMAIL/ADMIN_PASSWORD: that user exists and is an admin (created, or promoted). */
  async ensureAdmin(): Promise<void> {
    const admin = this.config.admin;
    if (!admin) return;
    const email = normalizeEmail(admin.email);
    const promoted = await UserModel.updateOne({ email, role: { $ne: Role.ADMIN } }, { $set: { role: Role.ADMIN } });
    if (promoted.modifiedCount > 0) {
      this.logger.info({ email }, 'admin account promoted');
      return;
    }
    if (await UserModel.exists({ email })) return;
    try {
      await UserModel.create({ email, name: 'Administrator', role: Role.ADMIN, password_hash: await hashPassword(admin.password) });
      this.logger.info({ email }, 'admin account created');
    } catch (error) {
      // Another instance created it at the same moment: it exists, which is all we need.
      if (!isDuplicateKeyError(error)) throw error;
    }
  }

  private payloadFor(user: User): AuthPayload {
    const signed = signUserToken(this.config.jwt, user._id, user.role === Role.ADMIN ? Role.ADMIN : Role.USER);
    return { token: signed.token, expiresAt: signed.expiresAt, user };
  }
}
