import {
  defaultFieldResolver,
  getNamedType,
  getNullableType,
  isListType,
  isObjectType,
  type GraphQLFieldResolver,
  type GraphQLSchema,
} from 'graphql';
import type { RequestContext } from '../core/context';
import { UserInputError } from '../core/errors';
import { assertInTime } from './deadline';

/**
 * Every list field of the schema, plain properties included (shared/plain-resolvers.ts leaves
 * those unwrapped): none starts past the request's deadline, and the items each returns (and the
 * values of each JSON object) are counted against the request's budget (RequestContext.itemsLeft). The cost limit refuses what could be
 * too large before anything runs; this holds what the documents really hold (a cap lowered after
 * the fact, a list stored before its limit existed) while the answer is built, not once it is
 * sent.
 */
export function guardLists(schema: GraphQLSchema): void {
  const subscription = schema.getSubscriptionType();
  for (const type of Object.values(schema.getTypeMap())) {
    if (type.name.startsWith('__') || !isObjectType(type) || type === subscription) continue;
    for (const field of Object.values(type.getFields())) {
      if (getNamedType(field.type).name === 'JSONObject') {
        const resolve: GraphQLFieldResolver<unknown, RequestContext> =
          field.resolve ?? defaultFieldResolver;
        field.resolve = (source, args, context: RequestContext, info) =>
          asRejection(() => {
            const result = resolve(source, args, context, info);
            return result instanceof Promise
              ? result.then((value: unknown) => countedValues(context, value))
              : countedValues(context, result);
          });
        continue;
      }
      if (!isListType(getNullableType(field.type))) continue;
      const resolve: GraphQLFieldResolver<unknown, RequestContext> =
        field.resolve ?? defaultFieldResolver;
      field.resolve = (source, args, context: RequestContext, info) =>
        asRejection(() => {
          assertInTime(context);
          const result = resolve(source, args, context, info);
          return result instanceof Promise
            ? result.then((items: unknown) => counted(context, items))
            : counted(context, result);
        });
    }
  }
}

/**
 * A refusal (the deadline, the budget) as a rejected promise, never a throw: graphql-js completes
 * a list's items in one loop, and an item that throws ends it while an earlier item's promise (a
 * paced list, say) is still pending; nobody would handle that promise's rejection, and an
 * unhandled rejection ends the process. A rejection is collected with the others.
 */
function asRejection(run: () => unknown): unknown {
  try {
    return run();
  } catch (error) {
    return Promise.reject(error instanceof Error ? error : new Error(String(error)));
  }
}

/** A JSON object's values, arrays' items included: what it adds to the answer. */
function countedValues(context: Pick<RequestContext, 'itemsLeft'>, value: unknown): unknown {
  if (value === null || typeof value !== 'object') return value;
  let values = 0;
  const stack: unknown[] = [value];
  while (stack.length > 0) {
    const next = stack.pop();
    if (next === null || typeof next !== 'object') continue;
    const children: unknown[] = Array.isArray(next) ? (next as unknown[]) : Object.values(next);
    values += children.length;
    stack.push(...children);
  }
  return spend(context, values, value);
}

function counted(context: Pick<RequestContext, 'itemsLeft'>, items: unknown): unknown {
  return Array.isArray(items) ? spend(context, items.length, items) : items;
}

function spend<T>(
  context: Pick<RequestContext, 'itemsLeft'>,
  items: number,
  value: T,
): T | Promise<T> {
  context.itemsLeft -= items;
  if (context.itemsLeft < 0)
    throw new UserInputError(
      'the answer holds more items than a request may: ask for smaller pages or fewer fields',
    );
  return paced(context, items, value);
}

/**
 * graphql-js completes whatever it has in one go: the 50,000 balances of one large answer would
 * hold the event loop for half a second, and every other request with it. Past SLICE_ITEMS in one
 * go, the lists of a request wait in line and are let through SLICE_ITEMS at a time, one turn of
 * the event loop each, so other requests' I/O runs in between. Small answers never wait.
 */
const SLICE_ITEMS = 2_000;

interface Pacing {
  /** Items let through since the line last ran empty. */
  through: number;
  line: Array<{ items: number; release: () => void }>;
}
const pacings = new WeakMap<object, Pacing>();

function paced<T>(context: object, items: number, value: T): T | Promise<T> {
  let pacing = pacings.get(context);
  if (!pacing) pacings.set(context, (pacing = { through: 0, line: [] }));
  if (pacing.line.length === 0 && pacing.through + items <= SLICE_ITEMS) {
    pacing.through += items;
    return value;
  }
  const waiting = pacing;
  return new Promise<T>((resolve) => {
    waiting.line.push({ items, release: () => resolve(value) });
    if (waiting.line.length === 1) setImmediate(letThrough, waiting);
  });
}

/** One slice of the line; the rest waits for the next turn (setImmediate from here runs then). */
function letThrough(pacing: Pacing): void {
  let released = 0;
  while (pacing.line.length > 0 && released < SLICE_ITEMS) {
    const next = pacing.line.shift()!;
    released += next.items;
    next.release();
  }
  if (pacing.line.length > 0) setImmediate(letThrough, pacing);
  // What this slice completes (its promises settle once this returns) starts a slice of its own.
  else pacing.through = 0;
}
