import WebSocket from 'ws';
import { IssueAgentTokenDocument, RevokeAgentTokenDocument } from './generated/graphql';
import { codes, startTestApp, type TestApp } from './helpers/app';
import {
  adminToken,
  binanceCredential,
  registerUser,
  userWallet,
  type TestUser,
} from './helpers/factories';
import { subscribe } from './helpers/live';

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

async function metric(name: string): Promise<number> {
  const text = await (await fetch(`${t.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line ? Number(line.split(' ')[1]) : 0;
}
const errorsOf = (code: string) => metric(`graphql_errors_total{code="${code}"}`);

async function walletOf(user: TestUser): Promise<string> {
  return (await userWallet(t, user, await binanceCredential(t, user))).id;
}

/** Log lines of one security event over WebSocket. */
const securityLines = (event: string) =>
  t.logs.filter(
    (l) => l.includes(`"security":"${event}"`) && l.includes('"transport":"websocket"'),
  );

describe('subscribe requests', () => {
  it("cost from the token's request budget, as HTTP requests do; refusals are logged and counted", async () => {
    const stranger = await registerUser(t);
    const theirs = await walletOf(stranger);
    const user = await registerUser(t);
    const [forbiddenBefore, limitedBefore] = [
      await errorsOf('FORBIDDEN'),
      await errorsOf('RATE_LIMITED'),
    ];
    const [forbiddenLogged, limitedLogged] = [
      securityLines('forbidden').length,
      securityLines('rate limited').length,
    ];
    const live = await connection(user.token);
    expect(await live.acknowledged).toBe(true);
    const answers: string[] = [];
    for (let i = 0; i < PER_MINUTE + 5; i++) {
      const errors = await live.subscribe(MINE, { w: theirs });
      expect(errors).toHaveLength(1);
      answers.push(errors[0].code!);
    }
    const forbidden = answers.filter((c) => c === 'FORBIDDEN').length;
    const limited = answers.filter((c) => c === 'RATE_LIMITED').length;
    expect(forbidden + limited).toBe(answers.length);
    // The connection took one of the budget's requests, each subscribe another.
    expect(forbidden).toBeLessThanOrEqual(PER_MINUTE - 1);
    expect(limited).toBeGreaterThanOrEqual(5);
    // One budget: HTTP is refused too.
    expect(codes(await t.raw('{ me { id } }', {}, user.token))).toEqual(['RATE_LIMITED']);

    expect((await errorsOf('FORBIDDEN')) - forbiddenBefore).toBe(forbidden);
    // The HTTP request's refusal counts as well.
    expect((await errorsOf('RATE_LIMITED')) - limitedBefore).toBe(limited + 1);
    expect(securityLines('forbidden').length - forbiddenLogged).toBe(forbidden);
    expect(securityLines('rate limited').length - limitedLogged).toBe(limited);
    expect(securityLines('forbidden').at(-1)).toContain(`"actor":"${user.id}"`);
    live.close();
  });

  it('refuse a connection once the budget is spent, with 4429', async () => {
    const user = await registerUser(t);
    for (let i = 0; i < PER_MINUTE; i++) await t.raw('{ me { id } }', {}, user.token);
    expect(codes(await t.raw('{ me { id } }', {}, user.token))).toEqual(['RATE_LIMITED']);
    const before = await errorsOf('RATE_LIMITED');
    const live = await connection(user.token);
    expect(await live.acknowledged).toBe(false);
    const closed = await live.closed;
    expect(closed.code).toBe(4429);
    expect(closed.reason).toMatch(/^too many requests for this token: at most 20 per minute/);
    expect((await errorsOf('RATE_LIMITED')) - before).toBe(1);
  });

  it('count a connection refused or closed for its token as UNAUTHENTICATED', async () => {
    const before = await errorsOf('UNAUTHENTICATED');
    const forged = await connection('not.a.token');
    expect((await forged.closed).code).toBe(4403);
    const { id, token } = (await t.gql(IssueAgentTokenDocument, { name: 'counted' }, admin)).data!
      .issueAgentToken;
    const agent = subscribe(t.url, token, MANAGED);
    await agent.connected;
    await t.gql(RevokeAgentTokenDocument, { id }, admin);
    expect((await agent.closed).code).toBe(4403);
    expect((await errorsOf('UNAUTHENTICATED')) - before).toBe(2);
  });

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
