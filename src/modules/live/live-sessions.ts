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
 * changes (a refresh, a revocation here); users' accounts by the check every interval of what
 * changed of them (AuthService.changedAccounts): only the connections of an account found changed,
 * and those opened since the last check, are looked at again.
 */
export class LiveSessions {
  private readonly open = new Set<LiveSession>();
  /** The agents' among them. */
  private readonly agents = new Set<LiveSession>();
  /** Closed for their token, not yet gone: not closed (nor logged) twice. */
  private readonly closing = new WeakSet<LiveSession>();
  private readonly perKey = new Map<string, number>();
  /** A user's connection -> its account's key in the watch (AuthService.watchAccount). */
  private readonly accountOf = new Map<LiveSession, string>();
  /** An account's key -> its connections here. */
  private readonly byAccount = new Map<string, Set<LiveSession>>();
  /** Opened since the last check began: looked at by the next one whatever it reads. */
  private fresh = new Set<LiveSession>();
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
    if (live.session.principal.kind === 'agent') this.agents.add(live);
    const account = this.auth.watchAccount(live.session);
    if (account !== null) {
      this.accountOf.set(live, account);
      let lives = this.byAccount.get(account);
      if (!lives) this.byAccount.set(account, (lives = new Set()));
      lives.add(live);
      this.fresh.add(live);
    }
    return true;
  }

  /** Every way a connection ends comes here: its slot is given back. Idempotent. */
  release(live: LiveSession): void {
    if (!this.open.delete(live)) return;
    this.agents.delete(live);
    this.fresh.delete(live);
    const account = this.accountOf.get(live);
    if (account !== undefined) {
      this.accountOf.delete(live);
      const lives = this.byAccount.get(account);
      lives?.delete(live);
      if (lives?.size === 0) this.byAccount.delete(account);
      this.auth.unwatchAccount(account);
    }
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
    const ctx = systemCtx(this.logger, CHECK_JOB);
    this.checking = this.checked(ctx, async () => {
      const lives = this.fresh;
      this.fresh = new Set();
      const now = Date.now();
      for (const live of this.open) if (live.session.expiresAt <= now) lives.add(live);
      let changed: ReadonlySet<string>;
      try {
        changed = await this.auth.changedAccounts(ctx);
      } catch (error) {
        // Still to be looked at, by the next check.
        for (const live of lives) if (this.open.has(live)) this.fresh.add(live);
        throw error;
      }
      for (const account of changed)
        for (const live of this.byAccount.get(account) ?? []) lives.add(live);
      return [...lives];
    }).finally(() => (this.checking = null));
  }

  private checkAgents(): void {
    if (this.agents.size === 0) return;
    const agents = [...this.agents];
    void this.checked(systemCtx(this.logger, CHECK_JOB), () => Promise.resolve(agents));
  }

  /** The database away: the connections stay, and the next check tries again. */
  private checked(ctx: SystemContext, which: () => Promise<LiveSession[]>): Promise<void> {
    return asJob(
      CHECK_JOB,
      async () => this.check(ctx, await which()),
      (error) => ctx.logger.warn({ err: error }, "open connections' tokens could not be checked"),
    );
  }

  private async check(ctx: SystemContext, lives: LiveSession[]): Promise<void> {
    const refused = await this.auth.refusedSessions(
      lives.map((live) => ({ session: live.session, account: this.accountOf.get(live) ?? null })),
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
