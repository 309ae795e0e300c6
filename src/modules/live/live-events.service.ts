import type { Types } from 'mongoose';
import type {
  AgentContext,
  LiveChannel,
  LiveConnection,
  RequestContext,
  UserContext,
} from '../../core/context';
import { ForbiddenError, InternalError, NotFoundError } from '../../core/errors';
import type { WalletEventKind } from '../audit/user-wallet-event.model';
import { AgentScope } from '../auth/roles';
import { ownerOf } from '../wallets/user-wallet.service';
import { toObjectId } from '../../shared/scalars';
import type { GrantIndex } from '../wallets/grant-index';
import type { Audience, FeedSubscription, WalletEventFeed } from './wallet-event-feed';

declare module '../../core/context' {
  /** ws-server.ts puts the live events service in every subscription's context. */
  interface LiveChannel {
    service: LiveEventsService;
  }
}

export const SLOW_CONSUMER_CLOSE = 4008;

/** A subscription's context comes from the WebSocket server, which puts the live service in it. */
export function liveOf(ctx: RequestContext): LiveChannel {
  if (!ctx.live)
    throw new InternalError('subscriptions run over WebSocket at /graphql (graphql-ws)');
  return ctx.live;
}

/** The subscriptions' rules: who may follow which wallets' events. */
export class LiveEventsService {
  constructor(
    private readonly feed: WalletEventFeed,
    private readonly grants: GrantIndex,
  ) {}

  /** USER/ADMIN: their own wallets' events, or one wallet's (FORBIDDEN for another's). */
  async mine(
    ctx: UserContext,
    walletId: string | Types.ObjectId | null | undefined,
  ): Promise<FeedSubscription> {
    const { connection } = liveOf(ctx);
    const user = ctx.actor;
    if (walletId != null) {
      const wallet = await ownerOf(ctx, toObjectId(walletId));
      if (!wallet) throw new NotFoundError('no wallet with that id');
      if (!wallet.user_id.equals(user.userId))
        throw new ForbiddenError('this wallet belongs to another user');
      return this.follow(connection, { wallet: wallet._id });
    }
    return this.follow(connection, { owner: user.userId });
  }

  /**
   * AGENT: the events of every wallet it may read, of the given kinds only when given. For a
   * GRANTED_WALLETS agent, the feed asks this instance's grant index who holds a grant on each
   * event's wallet (no read per event): a revocation anywhere stops that wallet's events within
   * the index's refresh.
   */
  async managed(
    ctx: AgentContext,
    kinds: WalletEventKind[] | null | undefined,
  ): Promise<FeedSubscription> {
    const { connection } = liveOf(ctx);
    const agent = ctx.actor;
    if (agent.scope === AgentScope.ALL_WALLETS)
      return this.follow(connection, { everyWallet: true, kinds: kinds ?? null });
    const untrack = await this.grants.track(ctx, agent.agentId);
    return this.follow(connection, { grantsOf: agent.agentId, kinds: kinds ?? null }, untrack);
  }

  private follow(
    connection: LiveConnection,
    audience: Audience,
    onEnd?: () => void,
  ): FeedSubscription {
    return this.feed.subscribe(
      audience,
      connection.maxWaiting,
      () =>
        connection.close(
          SLOW_CONSUMER_CLOSE,
          `consumer too slow: more than ${connection.maxWaiting} events waiting`,
        ),
      onEnd,
    );
  }
}
