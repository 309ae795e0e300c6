import type http from 'node:http';
import { CloseCode, handleProtocols, makeServer, type ServerOptions } from 'graphql-ws';
import { WebSocket, type WebSocketServer } from 'ws';
import type { Logger } from '../../core/logger';

/**
 * graphql-ws on a `ws` server: what graphql-ws's own useServer (graphql-ws/use/ws) does, which it
 * offers to be copied and adjusted, with two changes for an instance holding 10,000 sockets that
 * mostly wait. One keep-alive timer serves every socket, a share of them at each tick, where
 * useServer starts an interval for each (and a timeout and a listener at each ping). And nothing
 * of the upgrade request is kept for the connection's life: `describe` takes what the service
 * needs of it (the client's address) when the socket opens.
 */

/**
 * Between keep-alive pings, useServer's default: a socket that has not answered one by the next is
 * ended.
 */
export const KEEP_ALIVE_MS = 12_000;

/**
 * Between keep-alive ticks, each pinging its share of the sockets: 120 ticks a round at the
 * default, so 10,000 sockets make 84 pings a tick (a few milliseconds), never a burst that holds the
 * event loop while writes wait.
 */
const KEEP_ALIVE_TICK_MS = 100;

/** What graphql-ws's context carries for each socket (its `extra`). */
export interface SocketExtra {
  readonly socket: WebSocket;
}

export interface Transport {
  /** Closes every socket (1001) and the server. */
  dispose(): Promise<void>;
}

export function serveGraphqlWs<E extends SocketExtra>(
  options: ServerOptions<Record<string, unknown>, E>,
  wss: WebSocketServer,
  describe: (socket: WebSocket, request: http.IncomingMessage) => E,
  logger: Logger,
  keepAliveMs = KEEP_ALIVE_MS,
): Transport {
  const server = makeServer(options);
  wss.options.handleProtocols = handleProtocols;

  // Never an internal error's message in a close reason.
  const internalError = (socket: WebSocket) =>
    socket.close(CloseCode.InternalServerError, 'Internal server error');
  wss.once('error', (error) => {
    logger.error({ err: error }, 'the WebSocket server failed');
    for (const client of wss.clients) internalError(client);
  });

  /**
   * Pinged and not answered yet, with when: ended at a turn of its own once keepAliveMs have
   * passed since (its place among the sockets may move up between rounds as others leave).
   */
  const unanswered = new Map<WebSocket, number>();
  const keepAliveTurn = (socket: WebSocket, now: number) => {
    const pingedAt = unanswered.get(socket);
    if (pingedAt !== undefined) {
      if (now - pingedAt >= keepAliveMs) socket.terminate();
      return;
    }
    if (socket.readyState !== WebSocket.OPEN) return;
    unanswered.set(socket, now);
    socket.ping();
  };
  // Every socket's turn comes once per keepAliveMs, a share of them at each tick: all at once, a
  // ping is a write each, and 10,000 of them would hold the event loop for a tenth of a second.
  // A round begins keepAliveMs after the one before began, however quickly that one went through
  // the sockets (a few sockets take a tick or two): each has keepAliveMs to answer its ping.
  const tickMs = Math.min(KEEP_ALIVE_TICK_MS, keepAliveMs);
  const ticks = Math.max(1, Math.round(keepAliveMs / tickMs));
  let turns: Iterator<WebSocket> | null = null;
  let roundBegan = -Infinity;
  const keepAlive = setInterval(
    () => {
      const now = performance.now();
      if (!turns) {
        if (now - roundBegan < keepAliveMs) return;
        roundBegan = now;
        turns = wss.clients.values();
      }
      // At least one step, so a round with no socket is over at once (it would otherwise stay
      // open, and a socket that came later would be pinged at its end and again as the next began).
      for (let due = Math.max(1, Math.ceil(wss.clients.size / ticks)); due > 0; due--) {
        const next = turns.next();
        if (next.done) {
          // The round is over: the next one begins keepAliveMs after this one began.
          turns = null;
          return;
        }
        keepAliveTurn(next.value, now);
      }
    },
    Math.max(1, tickMs),
  );
  keepAlive.unref();

  wss.on('connection', (socket, request) => {
    socket.once('error', (error) => {
      logger.warn({ err: error }, 'a WebSocket failed');
      internalError(socket);
    });
    socket.on('pong', () => unanswered.delete(socket));
    const closed = server.opened(
      {
        protocol: socket.protocol,
        send: (data) =>
          new Promise((resolve, reject) => {
            if (socket.readyState !== WebSocket.OPEN) return resolve();
            socket.send(data, (error) => (error ? reject(error) : resolve()));
          }),
        close: (code, reason) => socket.close(code, reason),
        onMessage: (handle) =>
          socket.on('message', (data: Buffer) => {
            handle(data.toString('utf8')).catch((error: unknown) => {
              logger.error({ err: error }, 'a graphql-ws message could not be handled');
              internalError(socket);
            });
          }),
      },
      describe(socket, request),
    );
    socket.once('close', (code, reason) => {
      unanswered.delete(socket);
      closed(code, reason.toString('utf8')).catch((error: unknown) =>
        logger.error({ err: error }, 'a closed WebSocket could not be wound up'),
      );
    });
  });

  return {
    dispose: async () => {
      clearInterval(keepAlive);
      for (const client of wss.clients) client.close(1001, 'Going away');
      wss.removeAllListeners();
      await new Promise<void>((resolve, reject) =>
        wss.close((error) => (error ? reject(error) : resolve())),
      );
    },
  };
}
