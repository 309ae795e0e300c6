import type { ExecutionResult } from 'graphql';
import { WebSocket } from 'ws';
import { sentAsFrames, type FrameSocket } from '../src/modules/live/next-frames';
import { testPushSource } from './helpers/push-source';

/** A wider window than the service's (GATHER_MS), so a loaded machine's pauses do not decide the test. */
const GATHER = 400;

/**
 * What a connection's WebSocket and TCP socket were asked to do, in order: each frame sent, and
 * each cork and uncork of the TCP socket (between which frames go out in one write).
 */
function connection() {
  const calls: string[] = [];
  const socket: FrameSocket = {
    readyState: WebSocket.OPEN,
    bufferedAmount: 0,
    send: (data, callback) => {
      calls.push(`send ${(JSON.parse(data) as { payload: { n: number } }).payload.n}`);
      setImmediate(() => callback());
    },
    close: () => calls.push('close'),
  };
  const tcp = { cork: () => calls.push('cork'), uncork: () => calls.push('uncork') };
  return { calls, socket, tcp };
}

/** Results pushed by the test, read by the frames' loop. */
function results() {
  const queue: ExecutionResult[] = [];
  const asks: Array<(step: IteratorResult<ExecutionResult>) => void> = [];
  let returns = 0;
  const iterator: AsyncIterator<ExecutionResult> = {
    next: () =>
      queue.length > 0
        ? Promise.resolve({ value: queue.shift()!, done: false })
        : new Promise((resolve) => asks.push(resolve)),
    return: () => {
      returns++;
      return Promise.resolve({ value: undefined, done: true });
    },
  };
  const push = (n: number) => {
    const result = { data: { n } } as unknown as ExecutionResult;
    const ask = asks.shift();
    if (ask) ask({ value: result, done: false });
    else queue.push(result);
  };
  return { iterator, push, returns: () => returns };
}

/** A subscription's frames on the connection, its results pushed by the test. */
function framesOn({ calls, socket, tcp }: ReturnType<typeof connection>) {
  const { iterator, push } = results();
  const frames = sentAsFrames(iterator, {
    id: '1',
    socket,
    tcp,
    payloadOf: (result) => JSON.stringify(result.data),
    maxBuffered: 1_000_000,
    onSlow: () => undefined,
    gatherMs: GATHER,
  });
  return { calls, push, frames };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("a connection's frames", () => {
  it('go out at once after a quiet spell, and together when they follow closely', async () => {
    const { calls, push, frames } = framesOn(connection());
    const running = frames.next();
    push(1);
    await sleep(5);
    // The first goes out at once, on its own.
    expect(calls).toEqual(['send 1']);
    push(2);
    push(3);
    await sleep(5);
    // Within the window of the last write: gathered, in order, not written yet.
    expect(calls).toEqual(['send 1', 'cork', 'send 2', 'send 3']);
    await sleep(GATHER + 50);
    expect(calls).toEqual(['send 1', 'cork', 'send 2', 'send 3', 'uncork']);
    // A quiet spell longer than the window: the next goes out at once again.
    await sleep(GATHER + 50);
    push(4);
    await sleep(5);
    expect(calls.at(-1)).toBe('send 4');
    expect(calls.filter((c) => c === 'cork')).toHaveLength(1);
    await frames.return!();
    await Promise.race([running, sleep(10)]);
  });

  it('end their results when a write fails, as graphql-ws forgets the subscription without ending it', async () => {
    const { iterator, push, returns } = results();
    const frames = sentAsFrames(iterator, {
      id: '1',
      socket: brokenConnection(),
      payloadOf: (result) => JSON.stringify(result.data),
      maxBuffered: 1_000_000,
      onSlow: () => undefined,
    });
    const running = frames.next();
    push(1);
    await expect(running).rejects.toThrow('connection reset');
    expect(returns()).toBe(1);
  });

  it('hold none while the connection writes one now and then', async () => {
    const { calls, push, frames } = framesOn(connection());
    void frames.next();
    for (const n of [1, 2, 3]) {
      push(n);
      await sleep(GATHER + 50);
    }
    expect(calls).toEqual(['send 1', 'send 2', 'send 3']);
    await frames.return!();
  });
});

/**
 * A connection whose writes the test completes: each frame's write is over when the test says
 * (written), as a consumer reading slowly leaves them.
 */
function slowConnection() {
  const calls: string[] = [];
  const pending: Array<() => void> = [];
  const socket: FrameSocket = {
    readyState: WebSocket.OPEN,
    bufferedAmount: 0,
    send: (data, callback) => {
      calls.push(`send ${(JSON.parse(data) as { payload: { n: number } }).payload.n}`);
      pending.push(() => callback());
    },
    close: () => calls.push('close'),
  };
  return { calls, socket, written: () => pending.shift()!() };
}

/** A connection whose every write fails, as one the peer has reset. */
function brokenConnection(): FrameSocket {
  return {
    readyState: WebSocket.OPEN,
    bufferedAmount: 0,
    send: (_data, callback) => setImmediate(() => callback(new Error('connection reset'))),
    close: () => undefined,
  };
}

const result = (n: number) => ({ data: { n } }) as unknown as ExecutionResult;

describe("a connection's frames, of results that push", () => {
  const frames = (socket: FrameSocket, gather?: { tcp: { cork(): void; uncork(): void } }) => {
    const pushed = testPushSource<ExecutionResult>();
    const sent = sentAsFrames(pushed.source, {
      id: '1',
      socket,
      tcp: gather?.tcp,
      payloadOf: (r) => JSON.stringify(r.data),
      maxBuffered: 1_000_000,
      onSlow: () => undefined,
      gatherMs: GATHER,
    });
    return { pushed, sent, running: sent.next() };
  };

  it('go out as they are handed over, each after the one before is written; the rest wait at the source', async () => {
    const { calls, socket, written } = slowConnection();
    const { pushed, running } = frames(socket);
    pushed.push(result(1));
    // Handed over and sent in the same turn: nothing between the source and the socket.
    expect(calls).toEqual(['send 1']);
    pushed.push(result(2));
    pushed.push(result(3));
    expect(calls).toEqual(['send 1']);
    expect(pushed.waiting()).toBe(2);
    written();
    await sleep(5);
    expect(calls).toEqual(['send 1', 'send 2']);
    expect(pushed.waiting()).toBe(1);
    written();
    await sleep(5);
    expect(calls).toEqual(['send 1', 'send 2', 'send 3']);
    written();
    pushed.end();
    expect(await running).toEqual({ done: true, value: undefined });
  });

  it('are gathered when they follow closely, as pulled ones are', async () => {
    const { calls, socket, tcp } = connection();
    const { pushed, running } = frames(socket, { tcp });
    pushed.push(result(1));
    await sleep(5);
    pushed.push(result(2));
    pushed.push(result(3));
    // Within the window of the last write: gathered, taken at once, in order.
    expect(calls).toEqual(['send 1', 'cork', 'send 2', 'send 3']);
    expect(pushed.waiting()).toBe(0);
    await sleep(GATHER + 50);
    expect(calls.at(-1)).toBe('uncork');
    pushed.end();
    await running;
  });

  it('end when graphql-ws ends them (complete, close): the waiting next() is done, the source ended once', async () => {
    const { socket } = connection();
    const { pushed, sent, running } = frames(socket);
    pushed.push(result(1));
    await sent.return!();
    expect(await running).toEqual({ done: true, value: undefined });
    expect(pushed.returns()).toBe(1);
  });

  it('end their source when a write fails, as graphql-ws forgets the subscription without ending it', async () => {
    const { pushed, running } = frames(brokenConnection());
    pushed.push(result(1));
    await expect(running).rejects.toThrow('connection reset');
    expect(pushed.returns()).toBe(1);
  });

  it("end with the source: its failure reaches graphql-ws as the results' error", async () => {
    const { socket } = connection();
    const { pushed, running } = frames(socket);
    pushed.push(result(1));
    pushed.fail(new Error('execution failed'));
    await expect(running).rejects.toThrow('execution failed');
  });
});
