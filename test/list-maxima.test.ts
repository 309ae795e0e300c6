import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Kind, parse, type DocumentNode, type OperationDefinitionNode } from 'graphql';
import { Types } from 'mongoose';
import { nodeRequire } from '../src/exchanges/node-require';
import { AgentTokenModel } from '../src/modules/auth/agent-token.model';
import { MAX_LISTED_AGENT_TOKENS } from '../src/modules/auth/auth.service';
import { assertEveryListSized, createCostLimit, listSizes } from '../src/graphql/cost';
import { buildAppSchema } from '../src/graphql/schema';
import { WalletDefinitionModel } from '../src/modules/catalog/wallet-definition.model';
import {
  MAX_DEFINITIONS,
  MAX_EXCHANGE_TEMPLATES,
} from '../src/modules/catalog/wallet-definition.service';
import {
  AgentTokensDocument,
  CreateWalletDefinitionDocument,
  ExchangeTemplatesDocument,
  IssueAgentTokenDocument,
  WalletDefinitionsDocument,
} from './generated/graphql';
import { codes, startTestApp, type TestApp } from './helpers/app';
import { adminToken, definitionInput } from './helpers/factories';

let t: TestApp;
let admin: string;
beforeAll(async () => {
  t = await startTestApp();
  admin = await adminToken(t);
});
afterAll(() => t.close());

describe('every list has a maximum', () => {
  it(`the catalog holds at most ${MAX_DEFINITIONS} exchanges`, async () => {
    const seeded = await WalletDefinitionModel.find().lean();
    const template = seeded[0];
    await WalletDefinitionModel.insertMany(
      Array.from({ length: MAX_DEFINITIONS - seeded.length }, (_, i) => {
        const { _id: _unused, ...copy } = template;
        return { ...copy, slug: `filler-${i}`, name: `Filler ${i}`, order: 1_000 + i };
      }),
    );
    const refused = await t.gql(
      CreateWalletDefinitionDocument,
      { input: definitionInput() },
      admin,
    );
    expect(codes(refused)).toEqual(['BAD_USER_INPUT']);
    expect(refused.errors![0].message).toBe(
      `the catalog holds at most ${MAX_DEFINITIONS} exchanges`,
    );
    expect(await WalletDefinitionModel.countDocuments()).toBe(MAX_DEFINITIONS);
    const listed = await t.gql(WalletDefinitionsDocument, {});
    expect(listed.data!.walletDefinitions).toHaveLength(MAX_DEFINITIONS);
  });

  it(`agentTokens answers the newest ${MAX_LISTED_AGENT_TOKENS}`, async () => {
    const base = Date.now();
    const issuer = new Types.ObjectId();
    await AgentTokenModel.insertMany(
      Array.from({ length: MAX_LISTED_AGENT_TOKENS + 20 }, (_, i) => ({
        name: `agent-${i}`,
        issued_by: issuer,
        scope: 'all_wallets',
        issuer_role: 'admin',
        created_at: new Date(base - i * 1_000),
        expires_at: new Date(base + 86_400_000),
        changed_at: new Date(base - i * 1_000),
      })),
    );
    const listed = await t.gql(AgentTokensDocument, { includeRevoked: true }, admin);
    const names = listed.data!.agentTokens.map((token) => token.name);
    expect(names).toHaveLength(MAX_LISTED_AGENT_TOKENS);
    expect(names[0]).toBe('agent-0');
    expect(names).not.toContain(`agent-${MAX_LISTED_AGENT_TOKENS}`);
    // So that no unrevoked token goes unlisted, no more may be issued past the maximum.
    const refused = await t.gql(IssueAgentTokenDocument, { name: 'one-too-many' }, admin);
    expect(codes(refused)).toEqual(['BAD_USER_INPUT']);
    expect(refused.errors![0].message).toMatch(
      new RegExp(`^at most ${MAX_LISTED_AGENT_TOKENS} agent tokens may be unrevoked`),
    );
    expect(await AgentTokenModel.countDocuments({ name: 'one-too-many' })).toBe(0);
    // Revoking makes room again.
    await AgentTokenModel.updateMany(
      {
        name: {
          $in: Array.from({ length: 21 }, (_, i) => `agent-${MAX_LISTED_AGENT_TOKENS - 1 + i}`),
        },
      },
      { $set: { revoked_at: new Date() } },
    );
    const issued = await t.gql(IssueAgentTokenDocument, { name: 'one-more' }, admin);
    expect(issued.errors).toBeUndefined();
    await AgentTokenModel.updateMany({ issued_by: issuer }, { $set: { revoked_at: new Date() } });
  });

  it(`exchangeTemplates lists every exchange ccxt knows: at most ${MAX_EXCHANGE_TEMPLATES}`, async () => {
    // ccxt's dependencies are ES modules, which jest's registry can't require (node-require.ts).
    const ccxt = nodeRequire('ccxt') as { exchanges: string[] };
    expect(ccxt.exchanges.length).toBeLessThanOrEqual(MAX_EXCHANGE_TEMPLATES);
    const listed = await t.gql(ExchangeTemplatesDocument, {}, admin);
    expect(listed.data!.exchangeTemplates).toHaveLength(ccxt.exchanges.length);
  });
});

describe('what the clients send fits the cost limit', () => {
  const files = (dir: string) =>
    readdirSync(dir)
      .filter((name) => name.endsWith('.graphql'))
      .map((name) => readFileSync(join(dir, name), 'utf8'));

  it.each([
    ['the tests’ operations', join(__dirname, 'operations')],
    ["the Python client's operations", join(__dirname, '..', 'clients', 'python', 'queries')],
  ])('%s, at their largest pages', async (_what, dir) => {
    const schema = await buildAppSchema();
    const cost = createCostLimit(schema, {
      caps: t.config.caps,
      maxCost: t.config.maxRequestCost,
    });
    const document: DocumentNode = parse(files(dir).join('\n'));
    const operations = document.definitions.filter(
      (d): d is OperationDefinitionNode => d.kind === Kind.OPERATION_DEFINITION,
    );
    expect(operations.length).toBeGreaterThan(0);
    // Every page variable at the most it may be: the largest answer each operation can ask for.
    const largest = { first: 500, n: 500, limit: 500, updates: new Array(100).fill({}) };
    const over = operations
      .map((operation) => ({
        name: operation.name?.value,
        cost: cost.costOf(document, operation, largest),
      }))
      .filter((o) => o.cost > t.config.maxRequestCost);
    expect(over).toEqual([]);
  });

  it('refuses to start with a list field that has no size', async () => {
    const schema = await buildAppSchema();
    const sizes = listSizes(t.config);
    delete (sizes as Record<string, unknown>)['UserLimits.allowedSymbols'];
    expect(() => assertEveryListSized(schema, sizes)).toThrow(
      /no size for UserLimits.allowedSymbols/,
    );
  });
});
