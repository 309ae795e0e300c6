import type { ExecutionResult } from 'graphql';
import { WebSocket } from 'ws';
import { sentAsFrames, type FrameSocket } from '../src/modules/live/next-frames';

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
  const iterator: AsyncIterator<ExecutionResult> = {
    next: () =>
      queue.length > 0
        ? Promise.resolve({ value: queue.shift()!, done: false })
        : new Promise((resolve) => asks.push(resolve)),
    return: () => Promise.resolve({ value: undefined, done: true }),
  };
  const push = (n: number) => {
    const result = { data: { n } } as unknown as ExecutionResult;
    const ask = asks.shift();
    if (ask) ask({ value: result, done: false });
    else queue.push(result);
  };
  return { iterator, push };
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
