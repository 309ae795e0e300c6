import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildAppSchema, printAppSchema } from '../src/graphql/schema';

const ROOT = join(__dirname, '..');
const COMMITTED = join(ROOT, 'schema', 'schema.graphql');
/** The public contract as the project keeps it (`npm run contract:refresh` copies it from shared/). */
const CONTRACT = join(ROOT, 'schema', 'contract');

describe('the emitted schema', () => {
  it('is what the code emits (run `npm run schema` after changing a GraphQL class)', async () => {
    expect(readFileSync(COMMITTED, 'utf8')).toBe(printAppSchema(await buildAppSchema()));
  });

  // The contract, and each addition of the issues taken (a file that uses another's types comes
  // with it).
  it.each([
    [[]],
    [['security.graphql']],
    [['exchanges.graphql']],
    [['exchanges.graphql', 'health.graphql']],
    [['exchanges.graphql', 'exchange-rules.graphql']],
    [['exchanges.graphql', 'health.graphql', 'paper.graphql']],
    [['agents.graphql']],
    [['agents.graphql', 'live.graphql']],
    [['security.graphql', 'agents.graphql', 'delegation.graphql']],
  ])('keeps the whole public contract, with additions %j', (additions: string[]) => {
    const files = additions.map((name) => join(CONTRACT, 'api', 'additions', name));
    const run = spawnSync(
      'node',
      [join(CONTRACT, 'tools', 'check-contract.mjs'), COMMITTED, ...files],
      { cwd: ROOT, encoding: 'utf8' },
    );
    expect(run.stdout.trim()).toBe('contract: 0 breaking difference(s) against ' + COMMITTED);
    expect(run.status).toBe(0);
  });

  it('keeps the contract shared/ has, when shared/ is beside the checkout (npm run contract:refresh)', () => {
    const shared = join(ROOT, '..', 'shared');
    const pairs = [
      ['api/contract.graphql', 'api/contract.graphql'],
      ['tools/check-contract.mjs', 'tools/check-contract.mjs'],
      ...(existsSync(join(shared, 'api', 'additions'))
        ? readdirSync(join(shared, 'api', 'additions')).map((n) => [
            `api/additions/${n}`,
            `api/additions/${n}`,
          ])
        : []),
    ];
    for (const [copy, source] of pairs) {
      const copied = readFileSync(join(CONTRACT, copy), 'utf8');
      expect(copied.length).toBeGreaterThan(0);
      if (existsSync(join(shared, source)))
        expect([copy, copied]).toEqual([copy, readFileSync(join(shared, source), 'utf8')]);
    }
  });

  it('is the file codegen types the test operations from', () => {
    const codegen = readFileSync(join(ROOT, 'codegen.yml'), 'utf8');
    expect(codegen).toMatch(/^schema: schema\/schema\.graphql$/m);
    expect(
      execFileSync('git', ['ls-files', 'test/generated/graphql.ts'], {
        cwd: ROOT,
        encoding: 'utf8',
      }).trim(),
    ).toBe('test/generated/graphql.ts');
  });
});
