import type { ExecutionResult } from 'graphql';
import { WebSocket } from 'ws';
import { metrics } from '../../core/metrics';

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

export interface FrameOptions {
  /** The client's id of the subscription. */
  id: string;
  socket: FrameSocket;
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
  return {
    async next() {
      for (;;) {
        const step = await results.next();
        if (step.done) return { done: true, value: undefined };
        if (socket.bufferedAmount > options.maxBuffered) options.onSlow(socket);
        // Each frame waits for the one before to be written, as graphql-ws's sends do: a consumer
        // that reads slowly leaves the events waiting in the feed, which bounds them.
        await send(socket, nextFrame(id, options.payloadOf(step.value)));
      }
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

function send(socket: FrameSocket, frame: string): Promise<void> {
  return new Promise((resolve, reject) => {
    // Closing or closed: nothing more goes out (as graphql-ws's own sends do).
    if (socket.readyState !== WebSocket.OPEN) return resolve();
    metrics.liveFramesSent.inc();
    socket.send(frame, (error) => (error ? reject(error) : resolve()));
  });
}
