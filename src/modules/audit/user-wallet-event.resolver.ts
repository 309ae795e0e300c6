import type { Types } from 'mongoose';
import { FieldResolver, Resolver, Root, UseMiddleware } from 'type-graphql';
import { Role } from '../auth/roles';
import { Deadline } from '../../shared/deadline';
import { ObjectIdScalar } from '../../shared/scalars';
import { UserWalletEvent } from './user-wallet-event.model';

/** Only @Root() and Deadline: the field keeps the plain path (shared/plain-resolvers.ts). */
@Resolver(() => UserWalletEvent)
@UseMiddleware(Deadline)
export class UserWalletEventResolver {
  @FieldResolver(() => ObjectIdScalar, {
    nullable: true,
    description: "The acting user's or agent token's id; null for the service itself.",
  })
  actorId(@Root() event: Pick<UserWalletEvent, 'actor_id' | 'actor_role'>): Types.ObjectId | null {
    // The service's own events store a fixed id that names nobody.
    return event.actor_role === Role.SYSTEM ? null : event.actor_id;
  }
}
