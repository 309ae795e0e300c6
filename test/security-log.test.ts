import { Writable } from 'node:stream';
import { AgentTokenRegistry } from '../src/modules/auth/agent-token-registry';
import { AuthService } from '../src/modules/auth/auth.service';
import { systemCtx } from '../src/core/context';
import { createLogger } from '../src/core/logger';
import { IssueAgentTokenDocument, LoginDocument, MeDocument } from './generated/graphql';
import { codes, startTestApp, type TestApp } from './helpers/app';
import { adminToken, binanceCredential, registerUser, uniqueEmail } from './helpers/factories';

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({ RATE_LIMIT_LOGIN_FAILURES: '2', TRUST_PROXY: 'true' });
});
afterAll(() => t.close());

interface Line {
  level: number;
  security?: string;
  requestId?: string;
  actor?: string;
  clientAddress?: string;
  [key: string]: unknown;
}

const securityLines = (from: number): Line[] =>
  t.logs
    .slice(from)
    .map((l) => JSON.parse(l) as Line)
    .filter((l) => l.security !== undefined);

describe('security events', () => {
  it('logs failed logins and rate-limit refusals at warn, with request id, actor and address, never the password or the typed email', async () => {
    const from = t.logs.length;
    const typed = `${uniqueEmail('typo')}`;
    const login = (password: string) =>
      t.raw(
        'mutation ($e: String!, $p: String!) { login(email: $e, password: $p) { token } }',
        { e: typed, p: password },
        undefined,
        { 'x-forwarded-for': '198.51.100.77', 'x-request-id': 'req-sec-1' },
      );
    await login('first secret guess');
    await login('second secret guess');
    expect(codes(await login('third secret guess'))).toEqual(['RATE_LIMITED']);
    const lines = securityLines(from);
    expect(lines.filter((l) => l.security === 'login failed')).toHaveLength(2);
    expect(lines.filter((l) => l.security === 'rate limited')).toHaveLength(1);
    for (const line of lines)
      expect(line).toMatchObject({
        level: 40,
        requestId: 'req-sec-1',
        actor: 'anonymous',
        clientAddress: '198.51.100.77',
      });
    const text = t.logs.slice(from).join('');
    expect(text).not.toMatch(/secret guess/);
    expect(text).not.toContain(typed);
  });

  it('logs FORBIDDEN answers and refused tokens, and agent token issue', async () => {
    const user = await registerUser(t);
    const from = t.logs.length;
    const otherUser = await registerUser(t);
    const credentialId = await binanceCredential(t, otherUser);
    expect(
      codes(
        await t.raw(
          'query ($id: ObjectID!) { credential(id: $id) { id } }',
          { id: credentialId },
          user.token,
        ),
      ),
    ).toEqual(['FORBIDDEN']);
    expect(codes(await t.gql(MeDocument, {}, 'not.a.token'))).toEqual(['UNAUTHENTICATED']);
    const issued = await t.gql(
      IssueAgentTokenDocument,
      { name: 'audited-agent' },
      await adminToken(t),
    );
    const lines = securityLines(from);
    expect(lines.find((l) => l.security === 'forbidden')).toMatchObject({
      level: 40,
      actor: user.id,
      actorRole: 'user',
    });
    expect(lines.find((l) => l.security === 'token refused')).toMatchObject({
      level: 40,
      actor: 'anonymous',
      reason: 'invalid token',
    });
    expect(lines.find((l) => l.security === 'agent token issued')).toMatchObject({
      level: 40,
      actorRole: 'admin',
      agent: 'audited-agent',
    });
    const text = t.logs.slice(from).join('');
    expect(text).not.toContain(issued.data!.issueAgentToken.token);
    expect(text).not.toContain(user.token);
  });

  it('logs an admin promotion', async () => {
    const email = uniqueEmail('promote-me');
    await registerUser(t, { email, password: 'the admin password here' });
    const lines: string[] = [];
    const logger = createLogger(
      { logLevel: 'info' },
      new Writable({ write: (c: Buffer, _e, done) => (lines.push(c.toString()), done()) }),
    );
    await new AuthService(
      { ...t.config, admin: { email, password: 'the admin password here' } },
      new AgentTokenRegistry(logger),
    ).ensureAdmin(systemCtx(logger, 'admin account'));
    const promoted = lines
      .map((l) => JSON.parse(l) as Line)
      .find((l) => l.security === 'admin promoted');
    expect(promoted).toMatchObject({ level: 40, email });
    expect(lines.join('')).not.toContain('the admin password here');
    expect(
      (await t.gql(LoginDocument, { email, password: 'the admin password here' })).data!.login.user
        .role,
    ).toBe('ADMIN');
  });
});
