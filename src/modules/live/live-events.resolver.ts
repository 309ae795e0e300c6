import { Arg, Authorized, Resolver, Root, Subscription } from 'type-graphql';
import type { Types } from 'mongoose';
import { Role } from '../auth/roles';
import type { RequestContext } from '../../core/context';
import { InternalError } from '../../core/errors';
import { UserWalletEvent, WalletEventKind } from '../audit/user-wallet-event.model';
import { ObjectIdScalar } from '../../shared/scalars';

/** A subscription's context comes from the WebSocket server, which puts the live service in it. */
function liveOf(context: RequestContext): NonNullable<RequestContext['live']> {
  if (!context.live)
    throw new InternalError('subscriptions run over WebSocket at /graphql (graphql-ws)');
  return context.live;
}

@Resolver()
export class LiveEventsResolver {
  @Authorized(Role.USER)
  @Subscription(() => UserWalletEvent, {
    description:
      "USER/ADMIN: events of the caller's own wallets (one wallet's only, when walletId is given), as they happen.",
    subscribe: ({ args, context }) => {
      const live = liveOf(context as RequestContext);
      return live.service.mine(
        (context as RequestContext).actor,
        (args as { walletId?: string | null }).walletId,
        live.connection,
      );
    },
  })
  myWalletEvents(
    @Root() event: UserWalletEvent,
    @Arg('walletId', () => ObjectIdScalar, { nullable: true })
    _walletId?: Types.ObjectId | string | null,
  ): UserWalletEvent {
    return event;
  }

  @Authorized(Role.AGENT)
  @Subscription(() => UserWalletEvent, {
    description: 'AGENT: events of every wallet, of the given kinds only when kinds is given.',
    subscribe: ({ args, context }) => {
      const live = liveOf(context as RequestContext);
      return live.service.managed(
        (args as { kinds?: WalletEventKind[] | null }).kinds,
        live.connection,
      );
    },
  })
  managedWalletEvents(
    @Root() event: UserWalletEvent,
    @Arg('kinds', () => [WalletEventKind], { nullable: true }) _kinds?: WalletEventKind[] | null,
  ): UserWalletEvent {
    return event;
  }
}
