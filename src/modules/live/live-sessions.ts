import { CloseCode } from 'graphql-ws';
import type { AuthService, Session } from '../auth/auth.service';
import { logSecurityEvent } from '../auth/security-log';
import { systemCtx, type LiveConnection, type SystemContext } from '../../core/context';
import type { Logger } from '../../core/logger';
import { metrics } from '../../core/metrics';
import { backgroundComment } from '../../shared/background';
import { asJob } from '../../core/tracing';

/** How often open connections' user tokens and expiries are checked again, at most. */
export const SESSION_CHECK_MS = 2_000;

/** The re-check, as the service's own work (core/context.ts systemCtx). */
const CHECK_JOB = 'subscription sessions';
/** The comment of the re-check's query (see shared/background.ts). */
export const SESSIONS_COMMENT = backgroundComment(CHECK_JOB);

/** One open, acknowledged WebSocket connection. */
export interface LiveSession {
  session: Session;
  /** Whose token it is, as the connection limit and the request budget count: user:<id>, agent:<id>. */
  key: string;
  clientAddress: string;
  close(code: number, reason: string): void;
  /** What its subscriptions know of it (shared by all of them). */
  connection: LiveConnection;
}

/**
 * The open connections of this instance: at most `perToken` for each token, and each closed with
 * 4403 within seconds of its token stopping being good, at a cost per instance rather than per
 * connection. Expiry is read off the clock; agent tokens off the registry's list, whenever it
 * changes (a refresh, a revocation here); users' accounts by one query every interval, for every
 * account with a connection open.
 */
export class LiveSessions {
  private readonly open = new Set<LiveSession>();
  /** Closed for their token, not yet gone: not closed (nor logged) twice. */
  private readonly closing = new WeakSet<LiveSession>();
  private readonly perKey = new Map<string, number>();
  private readonly timer: NodeJS.Timeout;
  private readonly unsubscribe: () => void;
  private checking: Promise<void> | null = null;

  constructor(
    private readonly auth: AuthService,
    private readonly logger: Logger,
    private readonly perToken: number,
    intervalMs: number,
  ) {
    this.timer = setInterval(() => this.checkAll(), intervalMs);
    this.timer.unref();
    this.unsubscribe = auth.onAgentTokensChanged(() => this.checkAgents());
  }

  /** Takes one of the token's slots; false when it has none left. */
  admit(live: LiveSession): boolean {
    const count = this.perKey.get(live.key) ?? 0;
    if (count >= this.perToken) return false;
    this.perKey.set(live.key, count + 1);
    this.open.add(live);
    return true;
  }

  /** Every way a connection ends comes here: its slot is given back. Idempotent. */
  release(live: LiveSession): void {
    if (!this.open.delete(live)) return;
    const left = (this.perKey.get(live.key) ?? 1) - 1;
    if (left > 0) this.perKey.set(live.key, left);
    else this.perKey.delete(live.key);
  }

  stop(): void {
    clearInterval(this.timer);
    this.unsubscribe();
  }

  private checkAll(): void {
    if (this.checking || this.open.size === 0) return;
    this.checking = this.checked([...this.open]).finally(() => (this.checking = null));
  }

  private checkAgents(): void {
    const agents = [...this.open].filter((live) => live.session.principal.kind === 'agent');
    if (agents.length > 0) void this.checked(agents);
  }

  /** The database away: the connections stay, and the next check tries again. */
  private checked(lives: LiveSession[]): Promise<void> {
    const ctx = systemCtx(this.logger, CHECK_JOB);
    return asJob(
      CHECK_JOB,
      () => this.check(ctx, lives),
      (error) => ctx.logger.warn({ err: error }, "open connections' tokens could not be checked"),
    );
  }

  private async check(ctx: SystemContext, lives: LiveSession[]): Promise<void> {
    const refused = await this.auth.refusedSessions(
      ctx,
      lives.map((live) => live.session),
    );
    for (const live of lives) {
      const reason = refused.get(live.session);
      if (reason === undefined || !this.open.has(live) || this.closing.has(live)) continue;
      this.closing.add(live);
      logSecurityEvent(
        {
          logger: ctx.logger,
          clientAddress: live.clientAddress,
          actor: live.session.principal,
        },
        'token refused',
        { reason, transport: 'websocket' },
      );
      metrics.graphqlErrors.inc({ code: 'UNAUTHENTICATED' });
      live.close(CloseCode.Forbidden, `Forbidden: ${reason}`);
    }
  }
}
