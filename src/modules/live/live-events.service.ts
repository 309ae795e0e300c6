import type { Types } from 'mongoose';
import { requireUser, type Principal } from '../auth/roles';
import { ForbiddenError, NotFoundError } from '../../core/errors';
import type { WalletEventKind } from '../audit/user-wallet-event.model';
import { UserWalletModel } from '../wallets/user-wallet.model';
import { toObjectId } from '../../shared/scalars';
import type { FeedSubscription, WalletEventFeed } from './wallet-event-feed';

/** What a subscription knows of the connection it runs on (see ws-server.ts). */
export interface LiveConnection {
  /** Events that may wait for this connection's consumer before it counts as too slow. */
  maxWaiting: number;
  /** Closes the connection, saying why. */
  close(code: number, reason: string): void;
}

export const SLOW_CONSUMER_CLOSE = 4008;

/** The subscriptions' rules: who may follow which wallets' events. */
export class LiveEventsService {
  constructor(private readonly feed: WalletEventFeed) {}

  /** USER/ADMIN: their own wallets' events, or one wallet's (FORBIDDEN for another's). */
  async mine(
    principal: Principal | null,
    walletId: string | Types.ObjectId | null | undefined,
    connection: LiveConnection,
  ): Promise<FeedSubscription> {
    const user = requireUser(principal);
    if (walletId != null) {
      const wallet = await UserWalletModel.findById(toObjectId(walletId), { user_id: 1 }).lean<{
        _id: Types.ObjectId;
        user_id: Types.ObjectId;
      }>();
      if (!wallet) throw new NotFoundError('no wallet with that id');
      if (!wallet.user_id.equals(user.userId))
        throw new ForbiddenError('this wallet belongs to another user');
      return this.follow(connection, (event) => event.wallet_id.equals(wallet._id));
    }
    return this.follow(connection, (_event, owner) => owner !== null && owner.equals(user.userId));
  }

  /** AGENT: every wallet's events, of the given kinds only when given. */
  managed(
    kinds: WalletEventKind[] | null | undefined,
    connection: LiveConnection,
  ): FeedSubscription {
    const wanted = kinds?.length ? new Set(kinds) : null;
    return this.follow(connection, (event) => wanted === null || wanted.has(event.kind));
  }

  private follow(
    connection: LiveConnection,
    filter: Parameters<WalletEventFeed['subscribe']>[0],
  ): FeedSubscription {
    return this.feed.subscribe(filter, connection.maxWaiting, () =>
      connection.close(
        SLOW_CONSUMER_CLOSE,
        `consumer too slow: more than ${connection.maxWaiting} events waiting`,
      ),
    );
  }
}
