import type { EventSink, PushSource } from '../../src/modules/live/push-source';

/**
 * A source that pushes (push-source.ts), fed by the test: what its sink can't take yet waits, as
 * in the feed. Its iterator's next() is never used once a sink is there.
 */
export function testPushSource<T>() {
  let sink: EventSink<T> | null = null;
  let ready = false;
  let returns = 0;
  const waiting: T[] = [];
  const handOver = () => {
    while (ready && waiting.length > 0) ready = sink!.take(waiting.shift()!);
  };
  const source: PushSource<T> = {
    next: () => Promise.reject(new Error('a source that pushes is not asked')),
    return: () => {
      if (returns++ === 0) sink?.end();
      return Promise.resolve({ done: true, value: undefined });
    },
    pushTo(to) {
      sink = to;
      ready = true;
      handOver();
      return () => {
        ready = true;
        handOver();
      };
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
  return {
    source,
    push(event: T) {
      waiting.push(event);
      handOver();
    },
    /** How many wait for the sink. */
    waiting: () => waiting.length,
    /** How many times it was ended by its consumer (return()). */
    returns: () => returns,
    fail: (error: Error) => sink!.fail(error),
    end: () => sink!.end(),
  };
}
