import type { MiddlewareFn } from 'type-graphql';
import type { RequestContext } from '../core/context';
import { InternalError } from '../core/errors';

export const TIMED_OUT = 'the operation took too long and was cut off';

/**
 * The per-request execution time limit, on every resolver that does work (operations and field
 * resolvers; plain fields are not wrapped, so the hot path stays cheap). An operation still running
 * at the deadline is answered with an error; field resolvers past it do not start at all.
 */
/**
 * The check Deadline makes before every resolver (see shared/plain-resolvers.ts for the field
 * resolvers it guards without a middleware).
 */
export function assertInTime(context: Pick<RequestContext, 'deadline'>): number {
  const left = context.deadline - Date.now();
  if (left <= 0) throw new InternalError(TIMED_OUT);
  return left;
}

export const Deadline: MiddlewareFn<RequestContext> = async ({ context, info }, next) => {
  const left = assertInTime(context);
  if (info.parentType.name !== 'Query' && info.parentType.name !== 'Mutation')
    return next() as Promise<unknown>;
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      next() as Promise<unknown>,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new InternalError(TIMED_OUT)), left);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
};
