import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';

/** A graphql-ws subscriber, as a frontend or an agent runs one, with everything it received. */
export interface Subscriber {
  events: Array<Record<string, unknown>>;
  /** When each event arrived (ms since the epoch), in the order of `events`. */
  arrivals: number[];
  errors: unknown[];
  /** Resolves once the server acknowledged the connection (rejects if it closed first). */
  connected: Promise<void>;
  /** How the connection ended, once it did. */
  closed: Promise<{ code: number; reason: string }>;
  completed: Promise<void>;
  dispose(): Promise<void>;
}

export function subscribe(
  url: string,
  token: string | undefined,
  query: string,
  variables: Record<string, unknown> = {},
): Subscriber {
  const events: Array<Record<string, unknown>> = [];
  const arrivals: number[] = [];
  const errors: unknown[] = [];
  let onConnected!: () => void;
  let onClosed!: (value: { code: number; reason: string }) => void;
  let onCompleted!: () => void;
  const closed = new Promise<{ code: number; reason: string }>((resolve) => (onClosed = resolve));
  const connected = new Promise<void>((resolve, reject) => {
    onConnected = resolve;
    void closed.then((c) =>
      reject(new Error(`closed before it was acknowledged: ${c.code} ${c.reason}`)),
    );
  });
  connected.catch(() => undefined);
  const completed = new Promise<void>((resolve) => (onCompleted = resolve));
  const client: Client = createClient({
    url: url.replace(/^http/, 'ws') + '/graphql',
    webSocketImpl: WebSocket,
    connectionParams: token ? { authorization: `Bearer ${token}` } : {},
    lazy: false,
    retryAttempts: 0,
    shouldRetry: () => false,
    on: {
      connected: () => onConnected(),
      closed: (event) => {
        const e = event as { code?: number; reason?: string };
        onClosed({ code: e.code ?? 0, reason: String(e.reason ?? '') });
      },
    },
  });
  client.subscribe(
    { query, variables },
    {
      next: (value) => {
        if (value.errors) errors.push(...value.errors);
        const data = value.data as Record<string, Record<string, unknown>> | null | undefined;
        if (data) {
          events.push(...Object.values(data));
          arrivals.push(...Object.values(data).map(() => Date.now()));
        }
      },
      error: (error) => {
        errors.push(...(Array.isArray(error) ? (error as unknown[]) : [error]));
        onCompleted();
      },
      complete: () => onCompleted(),
    },
  );
  return {
    events,
    arrivals,
    errors,
    connected,
    closed,
    completed,
    dispose: () => client.dispose() as Promise<void>,
  };
}

export async function until(what: string, check: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
