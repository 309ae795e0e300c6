import type { Types } from 'mongoose';
import type { Logger } from '../logger';
import { backgroundComment } from '../shared/background';
import { AgentTokenModel, type AgentTokenRecord } from './agent-token.model';
import { Role } from './roles';
import { UserModel } from './user.model';

/**
 * How often each instance re-reads which agent tokens are good: revocations reach it within this
 * (plus a query).
 */
export const AGENT_TOKEN_REFRESH_MS = 2_000;

/** The comment the refresh's queries carry (see shared/background.ts). */
export const BACKGROUND_COMMENT = backgroundComment('agent tokens');

/**
 * Which agent tokens each instance honours, kept in memory so an agent's request costs no database
 * command: every AGENT_TOKEN_REFRESH_MS the set of unrevoked, unexpired tokens whose issuer is
 * still an admin is read again (two queries, whatever the traffic). A token unknown at the last
 * refresh (issued since, on another instance) is looked up once; one still unknown stays refused
 * until the next refresh.
 */
export class AgentTokenRegistry {
  /** Token id -> when it expires (ms). */
  private valid = new Map<string, number>();
  private refused = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private refreshing: Promise<void> = Promise.resolve();

  constructor(private readonly logger: Logger) {}

  async start(): Promise<void> {
    await this.refresh();
    this.timer = setInterval(() => {
      this.refreshing = this.refresh().catch((error: unknown) =>
        this.logger.warn(
          { err: error },
          'agent tokens could not be re-read; keeping the last list',
        ),
      );
    }, AGENT_TOKEN_REFRESH_MS);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.refreshing;
  }

  async isHonoured(id: string, now = Date.now()): Promise<boolean> {
    const expires = this.valid.get(id);
    if (expires !== undefined) return expires > now;
    if (this.refused.has(id)) return false;
    const honoured = await this.lookUp(id, now);
    if (honoured) this.valid.set(honoured._id.toHexString(), honoured.expires_at.getTime());
    else this.refused.add(id);
    return honoured !== null;
  }

  /** Issued here: good at once on this instance. */
  issued(record: Pick<AgentTokenRecord, '_id' | 'expires_at'>): void {
    this.refused.delete(record._id.toHexString());
    this.valid.set(record._id.toHexString(), record.expires_at.getTime());
  }

  /** Revoked here: refused at once on this instance (others follow within a refresh). */
  revoked(id: Types.ObjectId): void {
    this.valid.delete(id.toHexString());
    this.refused.add(id.toHexString());
  }

  private async refresh(now = new Date()): Promise<void> {
    const [tokens, admins] = await Promise.all([
      AgentTokenModel.find(
        { revoked_at: null, expires_at: { $gt: now } },
        { issued_by: 1, expires_at: 1 },
      )
        .comment(BACKGROUND_COMMENT)
        .lean<Array<Pick<AgentTokenRecord, '_id' | 'issued_by' | 'expires_at'>>>(),
      UserModel.find({ role: Role.ADMIN }, { _id: 1 })
        .comment(BACKGROUND_COMMENT)
        .lean<Array<{ _id: Types.ObjectId }>>(),
    ]);
    const adminIds = new Set(admins.map((a) => a._id.toHexString()));
    this.valid = new Map(
      tokens
        .filter((t) => adminIds.has(t.issued_by.toHexString()))
        .map((t) => [t._id.toHexString(), t.expires_at.getTime()]),
    );
    this.refused = new Set();
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
