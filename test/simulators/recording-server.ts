import { timingSafeEqual } from 'node:crypto';
import {
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';

/** The recording HTTP server every exchange simulator is built on. */

export interface RecordedRequest {
  method: string;
  /** Path and query as sent, e.g. `/api/v3/account?timestamp=...&signature=...`. */
  path: string;
  headers: IncomingHttpHeaders;
  /** Parsed JSON when the body is JSON, else the raw text ('' when empty). */
  body: unknown;
  /** When it arrived (Date.now()). */
  at: number;
}

export interface Simulator {
  /** `http://127.0.0.1:<port>`, no trailing slash. */
  url: string;
  requests: RecordedRequest[];
  close(): Promise<void>;
}

export interface SimulatorReply {
  status: number;
  json?: unknown;
  text?: string;
}

/**
 * A node:http server on 127.0.0.1 and a free port that records every request and answers what
 * `answer` returns, `delayMs` later if given. With `hang`, it accepts connections and requests and
 * never answers.
 */
export async function startRecordingServer(
  options: { hang?: boolean; delayMs?: (request: RecordedRequest) => number },
  answer: (request: RecordedRequest, rawBody: string) => SimulatorReply,
): Promise<Simulator> {
  const requests: RecordedRequest[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const at = Date.now();
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const rawBody = Buffer.concat(chunks).toString('utf8');
      const request: RecordedRequest = {
        method: req.method ?? '',
        path: req.url ?? '',
        headers: req.headers,
        body: parseBody(rawBody),
        at,
      };
      requests.push(request);
      if (options.hang) return;
      const reply = answer(request, rawBody);
      const body = reply.json === undefined ? (reply.text ?? '') : JSON.stringify(reply.json);
      const contentType =
        reply.json === undefined ? 'text/plain; charset=utf-8' : 'application/json;charset=UTF-8';
      const send = () => {
        res.writeHead(reply.status, {
          'Content-Type': contentType,
          'Content-Length': Buffer.byteLength(body),
        });
        res.end(body);
      };
      const delay = options.delayMs?.(request) ?? 0;
      if (delay > 0) setTimeout(send, delay);
      else send();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        // Hanging requests and keep-alive sockets would otherwise hold close() open.
        server.closeAllConnections();
      }),
  };
}

function parseBody(raw: string): unknown {
  if (raw === '') return '';
  try {
    return JSON.parse(raw) as unknown;
  } catch {
    return raw;
  }
}

/** Constant-time comparison of two strings (signatures, passphrases). */
export function sameText(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}
