import { Arg, Authorized, Resolver, Root, Subscription } from 'type-graphql';
import type { Types } from 'mongoose';
import { agentCtxOf, userCtxOf } from '../auth/ctx-decorators';
import { Role } from '../auth/roles';
import type { RequestContext } from '../../core/context';
import { UserWalletEvent, WalletEventKind } from '../audit/user-wallet-event.model';
import { ObjectIdScalar } from '../../shared/scalars';
import { liveOf } from './live-events.service';

/*
 * `subscribe` takes no parameter decorators: the typed context comes from userCtxOf and agentCtxOf
 * (as @UserCtx() and @AgentCtx() give it), after @Authorized(...) has run.
 */

@Resolver()
export class LiveEventsResolver {
  @Authorized(Role.USER)
  @Subscription(() => UserWalletEvent, {
    description:
      "USER/ADMIN: events of the caller's own wallets (one wallet's only, when walletId is given), as they happen.",
    subscribe: ({ args, context }) => {
      const ctx = userCtxOf(context as RequestContext);
      return liveOf(ctx).service.mine(ctx, (args as { walletId?: string | null }).walletId);
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
      const ctx = agentCtxOf(context as RequestContext);
      return liveOf(ctx).service.managed(ctx, (args as { kinds?: WalletEventKind[] | null }).kinds);
    },
  })
  managedWalletEvents(
    @Root() event: UserWalletEvent,
    @Arg('kinds', () => [WalletEventKind], { nullable: true }) _kinds?: WalletEventKind[] | null,
  ): UserWalletEvent {
    return event;
  }
}
