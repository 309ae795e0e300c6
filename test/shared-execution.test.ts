import { Repeater } from '@repeaterjs/repeater';
import {
  GraphQLInt,
  GraphQLObjectType,
  GraphQLSchema,
  GraphQLString,
  parse,
  type ExecutionArgs,
  type ExecutionResult,
} from 'graphql';
import { payloadOf, sharedSubscribe } from '../src/modules/live/shared-execution';
import { isPushSource } from '../src/modules/live/push-source';
import { testPushSource } from './helpers/push-source';

/**
 * Subscriptions that answer alike share each event's execution: counted on a schema whose field
 * resolver counts its calls, fed by one event source shared as the wallet event feed is.
 */
describe('shared subscription execution', () => {
  let calls = 0;
  let sources = 0;
  let stopped = 0;
  const listeners = new Set<(event: { n: number }) => void>();
  const push = (event: { n: number }) => listeners.forEach((l) => l(event));
  let pushed: ReturnType<typeof testPushSource<{ n: number; delay?: number }>> | undefined;

  const Event = new GraphQLObjectType({
    name: 'Event',
    fields: {
      n: { type: GraphQLInt },
      // Resolved after the event's `delay` ms: its result is a promise.
      late: {
        type: GraphQLInt,
        resolve: async (event: { n: number; delay?: number }) => {
          await new Promise((resolve) => setTimeout(resolve, event.delay ?? 0));
          return event.n;
        },
      },
      label: {
        type: GraphQLString,
        args: { prefix: { type: GraphQLString } },
        resolve: (event: { n: number }, args: { prefix?: string | null }) => {
          calls++;
          return `${args.prefix ?? ''}${event.n}`;
        },
      },
    },
  });
  const schema = new GraphQLSchema({
    query: new GraphQLObjectType({
      name: 'Query',
      fields: { ok: { type: GraphQLInt, resolve: () => 1 } },
    }),
    subscription: new GraphQLObjectType({
      name: 'Subscription',
      fields: {
        events: {
          type: Event,
          subscribe: () =>
            new Repeater<{ n: number }>(async (next, stop) => {
              sources++;
              const listener = (event: { n: number }) => void next(event);
              listeners.add(listener);
              await stop;
              listeners.delete(listener);
              stopped++;
            }),
          resolve: (event: { n: number }) => event,
        },
        // From a source that pushes, as the feed's subscriptions are: the test's latest.
        pushed: {
          type: Event,
          subscribe: () => (pushed = testPushSource<{ n: number; delay?: number }>()).source,
          resolve: (event: { n: number }) => event,
        },
      },
    }),
  });
  const subscribe = sharedSubscribe((args) => (args.contextValue as { key: string | null }).key);
  const open = async (
    query: string,
    key: string | null,
    variableValues?: Record<string, unknown>,
  ) => {
    const args: ExecutionArgs = {
      schema,
      document: parse(query),
      contextValue: { key },
      variableValues,
    };
    const result = await subscribe(args);
    if (!(Symbol.asyncIterator in result)) throw new Error(JSON.stringify(result));
    return result;
  };
  const end = async (s: AsyncIterableIterator<ExecutionResult>) => {
    if (s.return) await s.return();
  };
  const settle = () => new Promise((resolve) => setTimeout(resolve, 20));

  beforeEach(() => {
    calls = 0;
  });

  it('runs the selection once per event for subscriptions with one key, and each answers the same', async () => {
    const query = 'subscription { events { n label } }';
    const subscriptions = await Promise.all([
      open(query, 'agent:1'),
      open(query, 'agent:1'),
      open(query, 'agent:1'),
    ]);
    const nexts = subscriptions.map((s) => s.next());
    await settle();
    push({ n: 7 });
    const results = (await Promise.all(nexts)).map((r) => r.value as ExecutionResult);
    expect(results.map((r) => r.data)).toEqual(
      [1, 2, 3].map(() => ({ events: { n: 7, label: '7' } })),
    );
    expect(calls).toBe(1);
    // A second event is executed anew.
    const again = subscriptions.map((s) => s.next());
    push({ n: 8 });
    expect((await Promise.all(again)).map((r) => (r.value as ExecutionResult).data)).toEqual(
      [1, 2, 3].map(() => ({ events: { n: 8, label: '8' } })),
    );
    expect(calls).toBe(2);
    await Promise.all(subscriptions.map(end));
  });

  it('serialises a shared result once, whatever the number of subscriptions sending it', async () => {
    const query = 'subscription { events { n label } }';
    const subscriptions = await Promise.all([open(query, 'agent:3'), open(query, 'agent:3')]);
    const nexts = subscriptions.map((s) => s.next());
    await settle();
    push({ n: 9 });
    const results = (await Promise.all(nexts)).map((r) => r.value as ExecutionResult);
    let serialised = 0;
    const serialise = (result: ExecutionResult) => {
      serialised++;
      return JSON.stringify(result);
    };
    const payloads = results.map((result) => payloadOf(result, serialise));
    expect(payloads).toEqual(['{"data":{"events":{"n":9,"label":"9"}}}', payloads[0]]);
    expect(serialised).toBe(1);
    // Another result (another event) is serialised anew.
    expect(payloadOf({ data: { events: { n: 9, label: '9' } } }, serialise)).toBe(payloads[0]);
    expect(serialised).toBe(2);
    await Promise.all(subscriptions.map(end));
  });

  it('executes apart for another key, other variables in the key, and no key', async () => {
    const query = 'subscription ($p: String) { events { label(prefix: $p) } }';
    const a = await open(query, 'agent:1|a', { p: 'a' });
    const b = await open(query, 'agent:1|b', { p: 'b' });
    const c = await open(query, null, { p: 'c' });
    const d = await open(query, null, { p: 'c' });
    const nexts = [a, b, c, d].map((s) => s.next());
    await settle();
    push({ n: 1 });
    expect((await Promise.all(nexts)).map((r) => (r.value as ExecutionResult).data)).toEqual([
      { events: { label: 'a1' } },
      { events: { label: 'b1' } },
      { events: { label: 'c1' } },
      { events: { label: 'c1' } },
    ]);
    expect(calls).toBe(4);
    await Promise.all([a, b, c, d].map(end));
  });

  it('ends the source at once when a subscription ends while no event comes', async () => {
    const before = { sources, stopped };
    const subscription = await open('subscription { events { n } }', 'agent:2');
    const waiting = subscription.next();
    await settle();
    expect(sources).toBe(before.sources + 1);
    await end(subscription);
    expect(stopped).toBe(before.stopped + 1);
    expect(await waiting).toEqual({ done: true, value: undefined });
  });

  it('pushes results as their events are pushed: at once when execution is synchronous, in order when it is not', async () => {
    const taken: unknown[] = [];
    let ends = 0;
    const sink = {
      take: (result: ExecutionResult) => taken.push(result.data) > 0,
      end: () => ends++,
      fail: () => undefined,
    };
    const sync = await open('subscription { pushed { n } }', 'agent:4');
    if (!isPushSource(sync)) throw new Error('the results of a source that pushes push too');
    sync.pushTo(sink);
    pushed!.push({ n: 1 });
    // Taken in the same turn as the event came: no promise between.
    expect(taken).toEqual([{ pushed: { n: 1 } }]);
    await end(sync);
    expect(ends).toBe(1);

    taken.length = 0;
    const async = await open('subscription { pushed { n late } }', 'agent:4');
    if (!isPushSource(async)) throw new Error('the results of a source that pushes push too');
    async.pushTo(sink);
    // The first's result comes after the second's would: the second waits at the source.
    pushed!.push({ n: 1, delay: 60 });
    pushed!.push({ n: 2 });
    expect(pushed!.waiting()).toBe(1);
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect(taken).toEqual([{ pushed: { n: 1, late: 1 } }, { pushed: { n: 2, late: 2 } }]);
    await end(async);
    expect(ends).toBe(2);
  });

  it('answers errors of the subscription itself as graphql-js does (no stream)', async () => {
    const result = await subscribe({
      schema,
      document: parse('subscription { nope }'),
      contextValue: { key: 'k' },
    });
    expect(Symbol.asyncIterator in result).toBe(false);
    expect((result as ExecutionResult).errors?.[0].message).toMatch(/nope/);
  });
});
