import WebSocket from 'ws';
import { IssueAgentTokenDocument } from './generated/graphql';
import { startTestApp, type TestApp } from './helpers/app';
import { adminToken, registerUser } from './helpers/factories';

const PER_MINUTE = 20;

let t: TestApp;
let admin: string;
beforeAll(async () => {
  t = await startTestApp({ RATE_LIMIT_USER_PER_MINUTE: String(PER_MINUTE) });
  admin = await adminToken(t);
});
afterAll(() => t.close());

const MINE = 'subscription ($w: ObjectID) { myWalletEvents(walletId: $w) { id kind } }';
const MANAGED = 'subscription ($k: [WalletEventKind!]) { managedWalletEvents(kinds: $k) { id } }';

interface Answer {
  code: string | undefined;
  message: string;
}

/** A raw graphql-ws connection that sends one subscribe at a time and reads its first answer. */
async function connection(token: string) {
  const socket = new WebSocket(`${t.url.replace(/^http/, 'ws')}/graphql`, 'graphql-transport-ws');
  const waiting = new Map<string, (errors: Answer[]) => void>();
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    socket.once('close', (code: number, reason: Buffer) =>
      resolve({ code, reason: reason.toString() }),
    ),
  );
  const acknowledged = new Promise<boolean>((resolve) => {
    socket.on('message', (data: Buffer) => {
      const message = JSON.parse(data.toString()) as {
        type: string;
        id?: string;
        payload?: unknown;
      };
      if (message.type === 'connection_ack') resolve(true);
      const errors =
        message.type === 'error'
          ? (message.payload as Array<{ message: string; extensions?: { code?: string } }>)
          : message.type === 'next'
            ? ((
                message.payload as {
                  errors?: Array<{ message: string; extensions?: { code?: string } }>;
                }
              ).errors ?? [])
            : undefined;
      if (errors && message.id !== undefined) {
        waiting.get(message.id)?.(
          errors.map((e) => ({ code: e.extensions?.code, message: e.message })),
        );
        waiting.delete(message.id);
      }
    });
    void closed.then(() => resolve(false));
  });
  await new Promise((resolve) => socket.once('open', resolve));
  socket.send(
    JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${token}` } }),
  );
  let next = 0;
  return {
    acknowledged,
    closed,
    subscribe(query: string, variables: Record<string, unknown> = {}): Promise<Answer[]> {
      const id = String(++next);
      const answered = new Promise<Answer[]>((resolve) => waiting.set(id, resolve));
      socket.send(JSON.stringify({ id, type: 'subscribe', payload: { query, variables } }));
      return answered;
    },
    close: () => socket.close(),
  };
}

describe('subscribe requests', () => {
  it('answer bad variable values with BAD_USER_INPUT, as HTTP does, without the value', async () => {
    const user = await registerUser(t);
    const secret = 'sk_live_4f9a8b7c6d5e';
    const live = await connection(user.token);
    expect(await live.acknowledged).toBe(true);
    const overWs = await live.subscribe(MINE, { w: secret });
    const overHttp = await t.raw(
      'query ($w: ObjectID!) { userWallet(id: $w) { id } }',
      { w: secret },
      user.token,
    );
    expect(overWs).toEqual([{ code: 'BAD_USER_INPUT', message: overHttp.errors![0].message }]);
    expect(overWs[0].message).not.toContain(secret);

    const { token } = (await t.gql(IssueAgentTokenDocument, { name: 'bad-kinds' }, admin)).data!
      .issueAgentToken;
    const agent = await connection(token);
    expect(await agent.acknowledged).toBe(true);
    const kinds = await agent.subscribe(MANAGED, { k: [secret] });
    expect(kinds.map((k) => k.code)).toEqual(['BAD_USER_INPUT']);
    expect(kinds[0].message).not.toContain(secret);
    expect(t.logs.join('\n')).not.toContain(secret);
    live.close();
    agent.close();
  });
});
