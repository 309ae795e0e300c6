import { GraphQLObjectType, type GraphQLFieldResolver, type GraphQLSchema } from 'graphql';
import { getMetadataStorage } from 'type-graphql';
import type { RequestContext } from '../core/context';
import { InternalError } from '../core/errors';
import { Deadline, TIMED_OUT } from './deadline';

type Resolver = GraphQLFieldResolver<unknown, RequestContext>;
type Method = (...params: unknown[]) => unknown;

/**
 * type-graphql resolves every field through a wrapper of its own: a call with a fresh
 * {root, args, context, info} object for a plain property, and for a field resolver method a copy
 * of the parent into an instance of its class plus a promise chain per middleware. A list of 1,000
 * wallets makes some 30,000 such calls per request, and their garbage. Once the schema is built,
 * this puts plain functions in the place of the wrappers whose work is known to be just that:
 *
 * - a class property without middleware or role: a read of the stored property (the property's
 *   name, which may differ from the field's: user_limits for userLimits);
 * - a field resolver method taking only @Root() and @Ctx(), with no role and no middleware but
 *   Deadline: Deadline's own check for field resolvers (none starts past the deadline), then the
 *   method, called on the resolver instance with the parent as it is (the methods read plain
 *   documents, never class instances).
 *
 * Everything else keeps type-graphql's resolver: fields with arguments (it converts and validates
 * them), roles, other middleware.
 *
 * This reads type-graphql's metadata storage, which is internal to it: package.json pins
 * type-graphql to the exact version this was written against (a newer one is taken on purpose,
 * with test/plain-resolvers.test.ts run against it).
 */
export function usePlainResolvers(
  schema: GraphQLSchema,
  instanceOf: (resolverClass: object) => object,
): void {
  const storage = getMetadataStorage();
  for (const objectType of storage.objectTypes) {
    const type = schema.getType(objectType.name);
    if (!(type instanceof GraphQLObjectType)) continue;
    const fields = type.getFields();
    for (const field of objectType.fields ?? []) {
      const target = fields[field.schemaName];
      const method = storage.fieldResolvers.find(
        (r) => r.getObjectType?.() === objectType.target && r.methodName === field.name,
      );
      if (!target) continue;
      if (!method) {
        if (field.middlewares?.length || field.roles?.length || field.params?.length) continue;
        const property = field.name;
        target.resolve = ((source: Record<string, unknown>) => source[property]) as Resolver;
        continue;
      }
      if (
        method.kind !== 'external' ||
        method.roles?.length ||
        (method.middlewares ?? []).some((m) => m !== Deadline)
      )
        continue;
      const params = [...(method.params ?? [])].sort((a, b) => a.index - b.index);
      if (
        !params.every(
          (p) => (p.kind === 'root' || p.kind === 'context') && p.propertyName === undefined,
        )
      )
        continue;
      const instance = instanceOf(method.target) as Record<string, Method>;
      const call = instance[method.methodName].bind(instance);
      const order = params.map((p) => p.kind);
      target.resolve = (root, _args, context: Pick<RequestContext, 'deadline'>) => {
        // A rejection, not a throw: see asRejection in shared/answer-budget.ts.
        if (context.deadline <= Date.now()) return Promise.reject(new InternalError(TIMED_OUT));
        return order.length === 2
          ? call(order[0] === 'root' ? root : context, order[1] === 'root' ? root : context)
          : call(order[0] === 'root' ? root : context);
      };
    }
  }
}
