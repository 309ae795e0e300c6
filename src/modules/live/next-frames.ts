import type { ExecutionResult } from 'graphql';
import { WebSocket } from 'ws';
import { metrics } from '../../core/metrics';
import { isPushSource, type PushSource } from './push-source';

/**
 * A subscription's results, sent by the service as graphql-ws `next` frames. graphql-ws would
 * stringify each message whole, once per socket: with 50 sockets on one event that is 50
 * serialisations of the same result. Here each result's payload is serialised once for every
 * subscription that shares it (shared-execution.ts), and each socket adds only the envelope that
 * carries its client's id.
 *
 * graphql-ws still keeps the protocol: the iterator it gets never yields (its frames are sent
 * here), ends when the results do (graphql-ws then sends `complete`), and its `return` (the
 * client's `complete`, the socket's close) ends the results. An error the results throw reaches
 * graphql-ws, which answers it with an `error` message, as before.
 */

export interface FrameSocket {
  readonly readyState: number;
  readonly bufferedAmount: number;
  send(data: string, callback: (error?: Error) => void): void;
  close(code: number, reason: string): void;
}

/** The connection's TCP socket, under the WebSocket: what gathers frames into one write. */
export interface Corkable {
  cork(): void;
  uncork(): void;
}

export interface FrameOptions {
  /** The client's id of the subscription. */
  id: string;
  socket: FrameSocket;
  /** Its TCP socket: frames that follow one another closely go out in one write (see send). */
  tcp?: Corkable;
  /** How close (ms) frames gather: GATHER_MS unless a test says. */
  gatherMs?: number;
  /** The payload of a result, as JSON: made once per result (shared-execution.ts's payloadOf). */
  payloadOf(result: ExecutionResult): string;
  /** Bytes the socket may hold unsent: past them, `onSlow` (the socket is closed). */
  maxBuffered: number;
  onSlow(socket: FrameSocket): void;
}

/** graphql-ws's `next` message, `{"id":…,"type":"next","payload":…}`, around a payload. */
export function nextFrame(id: string, payload: string): string {
  return '{"id":' + JSON.stringify(id) + ',"type":"next","payload":' + payload + '}';
}

export function sentAsFrames(
  results: AsyncIterator<ExecutionResult>,
  options: FrameOptions,
): AsyncIterableIterator<ExecutionResult> {
  const { id, socket } = options;
  /**
   * Sends the result's frame: a promise when the frame after it must wait for it to be written,
   * nothing when the next may go at once.
   */
  const sendOne = (result: ExecutionResult): Promise<void> | undefined => {
    if (socket.bufferedAmount > options.maxBuffered) options.onSlow(socket);
    // Each frame waits for the one before to be written, as graphql-ws's sends do: a consumer
    // that reads slowly leaves the events waiting in the feed, which bounds them.
    return send(
      socket,
      options.tcp,
      options.gatherMs ?? GATHER_MS,
      nextFrame(id, options.payloadOf(result)),
    );
  };
  /**
   * Waits for the next result and sends it; false once the results are over. A call of its own
   * for each result: a subscription mostly waits, and a loop waiting in one frame would keep its
   * last result (and frame) until the next one came, long enough to reach the old generation and
   * be garbage there, for every delivery.
   */
  const sendNext = async (): Promise<boolean> => {
    const step = await results.next();
    if (step.done) return false;
    await sendOne(step.value);
    return true;
  };
  /**
   * Results that push (the feed's, push-source.ts) are sent as they are handed over, the source
   * holding the next ones only while a frame waits to be written.
   */
  const pushed = (source: PushSource<ExecutionResult>) =>
    new Promise<void>((resolve, reject) => {
      let over = false;
      const end = () => {
        if (over) return;
        over = true;
        resolve();
      };
      const fail = (error: unknown) => {
        if (over) return;
        over = true;
        endResults();
        reject(error instanceof Error ? error : new Error('the subscription failed'));
      };
      const resume = source.pushTo({
        take: (result) => {
          if (over) return false;
          let written: Promise<void> | undefined;
          try {
            written = sendOne(result);
          } catch (error) {
            fail(error);
            return false;
          }
          if (!written) return true;
          written.then(() => resume(), fail);
          return false;
        },
        end,
        fail,
      });
    });
  /**
   * graphql-ws answers a failure of next() with an `error` message and forgets the subscription,
   * without ending what it iterates: the results are ended here, so the feed lets the subscription
   * go rather than keep its events until the connection closes or overflows.
   */
  const endResults = () => void results.return?.()?.catch(() => undefined);
  return {
    async next() {
      if (isPushSource(results)) await pushed(results);
      else {
        try {
          while (await sendNext());
        } catch (error) {
          endResults();
          throw error;
        }
      }
      return { done: true, value: undefined };
    },
    async return() {
      await results.return?.();
      return { done: true, value: undefined };
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
}

/**
 * Frames that follow the connection's last write within this are held until it is over and go out
 * together, in one write: a connection with a frame per event of a busy feed (an agent following
 * every wallet) makes one system call for several, and one that gets a frame now and then is not
 * held at all.
 */
export const GATHER_MS = 20;

/** Per connection (its WebSocket): when it last wrote, and whether frames are being gathered. */
const gathering = new WeakMap<FrameSocket, { lastWriteAt: number; corked: boolean }>();

/**
 * Sends the frame: at once, with a promise resolved once written, when the connection has not
 * written for GATHER_MS; otherwise gathered (its TCP socket corked), with nothing to wait for, the
 * frames going out together when the GATHER_MS since its last write are over. Gathered frames
 * count in the socket's bufferedAmount, so a slow consumer is still closed at the limit.
 */
function send(
  socket: FrameSocket,
  tcp: Corkable | undefined,
  gatherMs: number,
  frame: string,
): Promise<void> | undefined {
  // Closing or closed: nothing more goes out (as graphql-ws's own sends do).
  if (socket.readyState !== WebSocket.OPEN) return undefined;
  metrics.liveFramesSent.inc();
  let state = gathering.get(socket);
  if (!state) gathering.set(socket, (state = { lastWriteAt: -Infinity, corked: false }));
  const now = performance.now();
  if (tcp && (state.corked || now - state.lastWriteAt < gatherMs)) {
    if (!state.corked) {
      const gathered = state;
      gathered.corked = true;
      tcp.cork();
      setTimeout(
        () => {
          gathered.corked = false;
          gathered.lastWriteAt = performance.now();
          tcp.uncork();
        },
        gatherMs - (now - state.lastWriteAt),
      ).unref();
    }
    socket.send(frame, () => undefined);
    return undefined;
  }
  state.lastWriteAt = now;
  return new Promise((resolve, reject) => {
    socket.send(frame, (error) => (error ? reject(error) : resolve()));
  });
}
