import WebSocket from 'ws';
import { startTestApp, type TestApp } from './helpers/app';
import { registerUser } from './helpers/factories';

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp();
});
afterAll(() => t.close());

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A raw graphql-ws socket: its acknowledgement, or how it closed. */
function connect(token: string): {
  socket: WebSocket;
  opened: Promise<void>;
  outcome: Promise<'acknowledged' | number>;
} {
  const socket = new WebSocket(`${t.url.replace(/^http/, 'ws')}/graphql`, 'graphql-transport-ws');
  const opened = new Promise<void>((resolve, reject) => {
    socket.once('open', () => {
      socket.send(
        JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${token}` } }),
      );
      resolve();
    });
    socket.once('error', reject);
  });
  const outcome = new Promise<'acknowledged' | number>((resolve) => {
    socket.on('message', (data: Buffer) => {
      if ((JSON.parse(data.toString()) as { type: string }).type === 'connection_ack')
        resolve('acknowledged');
    });
    socket.once('close', (code: number) => resolve(code));
  });
  return { socket, opened, outcome };
}

describe('connection slots', () => {
  it('gives back the slot of a socket that went away while its token was checked', async () => {
    const user = await registerUser(t);
    // The repro: connection_init with a good token, gone a millisecond later, 110 times.
    for (let i = 0; i < 110; i++) {
      const { socket, opened } = connect(user.token);
      await opened;
      await sleep(1);
      socket.terminate();
    }
    // Every one of the token's 100 slots is free again: the 101st connection is the one refused.
    const sockets = Array.from({ length: 100 }, () => connect(user.token));
    expect(new Set(await Promise.all(sockets.map((s) => s.outcome)))).toEqual(
      new Set(['acknowledged']),
    );
    const over = connect(user.token);
    expect(await over.outcome).toBe(4429);
    for (const { socket } of sockets) socket.close();
    await Promise.all(
      sockets.map((s) => new Promise((resolve) => s.socket.once('close', resolve))),
    );
    await sleep(100);
    expect(await connect(user.token).outcome).toBe('acknowledged');
  });
});
