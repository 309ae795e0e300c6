import mongoose from 'mongoose';
import { IssueAgentTokenDocument } from './generated/graphql';
import { codes, startTestApp, type TestApp } from './helpers/app';
import { adminToken, registerUser } from './helpers/factories';

let t: TestApp;
let admin: string;
beforeAll(async () => {
  t = await startTestApp();
  admin = await adminToken(t);
});
afterAll(() => t.close());

/** Full-width forms (U+FF01..U+FF5E) of printable ASCII: NFKC folds them back. */
const fullWidth = (text: string) =>
  text.replace(/[!-~]/g, (c) => String.fromCharCode(c.charCodeAt(0) + 0xfee0));

const agentTokens = () => mongoose.connection.db!.collection('agent_tokens').countDocuments();

async function refused(name: string) {
  const before = await agentTokens();
  const result = await t.gql(IssueAgentTokenDocument, { name }, admin);
  expect(codes(result)).toEqual(['BAD_USER_INPUT']);
  expect(result.errors![0].extensions).toEqual({ code: 'BAD_USER_INPUT', field: 'name' });
  expect(await agentTokens()).toBe(before);
  return result.errors![0].message;
}

describe('agent names', () => {
  it('refuses a name that reads as a user id once folded: full-width, zero-width, upper case', async () => {
    const user = await registerUser(t);
    for (const name of [
      fullWidth(user.id),
      `${user.id.slice(0, 12)}\u200B${user.id.slice(12)}`,
      fullWidth(user.id.toUpperCase()),
      // Mathematical bold digit zero.
      `\u{1D7CE}${user.id.slice(1)}`,
    ])
      expect(await refused(name)).toBe(
        'name: must not look like a user id (24 hexadecimal characters)',
      );
  });

  it("refuses the service's own name, however it is written", async () => {
    for (const name of [
      'wallet-service',
      ' Wallet-Service ',
      fullWidth('wallet-service'),
      'wallet\u2010service',
      'wallet\u2212service',
      'wallet-\u00ADservice',
      'wallet-service\u200D',
    ])
      expect(await refused(name)).toBe("name: must not be the service's own name (wallet-service)");
  });

  it('stores a full-width name as given when it breaks no rule', async () => {
    const name = fullWidth('risk-agent-2');
    const issued = await t.gql(IssueAgentTokenDocument, { name }, admin);
    expect(issued.errors).toBeUndefined();
    expect(issued.data!.issueAgentToken.name).toBe(name);
    expect(
      (await t.gql(IssueAgentTokenDocument, { name: 'wallet-service-canary' }, admin)).errors,
    ).toBeUndefined();
  });
});
