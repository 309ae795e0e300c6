import { createServer, type ServerResponse } from 'node:http';
import { createServer as createNetServer, type AddressInfo, type Socket } from 'node:net';
import type { RecordedRequest, Simulator } from './recording-server';

/**
 * An exchange that answers every request with what the test set: a JSON body of its choosing (an
 * error code holding text meant for a log or a page), or a body of `bytes` bytes generated as it
 * is sent, never held whole, so a test can tell how much of it the client read.
 */
export type HostileAnswer =
  | { status: number; json: unknown }
  | { status: number; stream: { bytes: number; declareLength: boolean } };

export interface StreamedAnswer {
  /** Bytes handed to the socket before it closed (at most the socket's buffers beyond the read). */
  sent: number;
  total: number;
  /** The client closed the connection before the whole body was sent. */
  closedEarly: boolean;
  /** Resolves when the response is over, either way. */
  over: Promise<void>;
}

export interface HostileSimulator extends Simulator {
  /** What the next requests get; the test may change it between them. */
  answer: HostileAnswer;
  streams: StreamedAnswer[];
}

const CHUNK = Buffer.alloc(64 * 1024, 'x');

export async function startHostileSimulator(answer: HostileAnswer): Promise<HostileSimulator> {
  const requests: RecordedRequest[] = [];
  const streams: StreamedAnswer[] = [];
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      requests.push({
        method: req.method ?? '',
        path: req.url ?? '',
        headers: req.headers,
        body: '',
        at: Date.now(),
      });
      const current = simulator.answer;
      if ('json' in current) {
        const body = JSON.stringify(current.json);
        res.writeHead(current.status, {
          'Content-Type': 'application/json;charset=UTF-8',
          'Content-Length': Buffer.byteLength(body),
        });
        res.end(body);
      } else {
        streams.push(stream(res, current.status, current.stream));
      }
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const simulator: HostileSimulator = {
    url: `http://127.0.0.1:${port}`,
    requests,
    answer,
    streams,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      }),
  };
  return simulator;
}

/** Writes `bytes` bytes as the socket takes them (waiting for 'drain'), until done or closed. */
function stream(
  res: ServerResponse,
  status: number,
  { bytes, declareLength }: { bytes: number; declareLength: boolean },
): StreamedAnswer {
  res.writeHead(status, {
    'Content-Type': 'application/json;charset=UTF-8',
    ...(declareLength ? { 'Content-Length': bytes } : {}),
  });
  const record: StreamedAnswer = {
    sent: 0,
    total: bytes,
    closedEarly: false,
    over: new Promise<void>((resolve) =>
      res.once('close', () => {
        record.closedEarly = !res.writableFinished;
        resolve();
      }),
    ),
  };
  const pump = () => {
    while (record.sent < bytes && !res.destroyed) {
      const size = Math.min(CHUNK.length, bytes - record.sent);
      record.sent += size;
      if (!res.write(size === CHUNK.length ? CHUNK : CHUNK.subarray(0, size))) {
        res.once('drain', pump);
        return;
      }
    }
    if (!res.destroyed) res.end();
  };
  pump();
  return record;
}

export interface RawSimulator {
  url: string;
  /** Connections it answered. */
  answered: number;
  close(): Promise<void>;
}

/**
 * A TCP server that answers the first bytes of each connection with `raw`, which need not be HTTP
 * at all, and closes it.
 */
export async function startRawSimulator(raw: string): Promise<RawSimulator> {
  const sockets = new Set<Socket>();
  const server = createNetServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    // The client drops a connection it can't read: a reset is the expected end here.
    socket.on('error', () => socket.destroy());
    socket.once('data', () => {
      simulator.answered += 1;
      socket.end(raw);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const simulator: RawSimulator = {
    url: `http://127.0.0.1:${port}`,
    answered: 0,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        for (const socket of sockets) socket.destroy();
      }),
  };
  return simulator;
}
