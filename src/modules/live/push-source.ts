/**
 * A subscription's events handed over as they come, rather than asked for one at a time. Each step
 * of an async iterator is a promise or more on the way from the feed to the socket (the feed's
 * next, the mapping to a result, the frames' loop), and with 50 agents on every event those steps
 * were about half of what the agents added to a write's CPU. A source that can push keeps its
 * iterator (graphql-ws and the tests use it); a consumer that can take events synchronously asks
 * for them with pushTo instead, and says when it must wait.
 */

export interface EventSink<T> {
  /**
   * One event, in order. Returns whether the sink can take the next one at once: after false, the
   * source keeps what comes (bounded, as for a consumer that does not ask) until `resume` is
   * called, later and not from within take. A sink may be handed an event after it has ended (a
   * result that was still being made): it drops it. Take never throws: a sink turns its own
   * failure into its consumer's (the source hands the same event to other subscriptions).
   */
  take(event: T): boolean;
  /** The source is over. Called once, or `fail` is; the source itself hands nothing after. */
  end(): void;
  /** The source failed with `error`: it is over too. */
  fail(error: unknown): void;
}

export interface PushSource<T> extends AsyncIterableIterator<T> {
  /**
   * From now on, events go to `sink` and not to next() (which must not be waiting then, nor be
   * called after). What came before and waited goes to it at once. Returns `resume`: the sink can
   * take events again, and what waited meanwhile goes to it at once, in order.
   */
  pushTo(sink: EventSink<T>): () => void;
}

export function isPushSource<T>(source: AsyncIterator<T>): source is PushSource<T> {
  return typeof (source as Partial<PushSource<T>>).pushTo === 'function';
}
