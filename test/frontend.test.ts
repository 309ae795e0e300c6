import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startTestApp, type TestApp } from './helpers/app';

/**
 * What docs/frontend.md promises, run with the real client libraries in Node against the real
 * service: Apollo Client under `--conditions=development` (where it prints its cache warnings)
 * and urql.
 */
const run = promisify(execFile);
const FRONTEND = join(__dirname, 'frontend');

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp();
});
afterAll(() => t.close());

async function script(name: string, ...args: string[]): Promise<Record<string, unknown>> {
  const { stdout } = await run(
    process.execPath,
    ['--conditions=development', join(FRONTEND, name), t.url, ...args],
    { timeout: 60_000 },
  );
  return JSON.parse(stdout) as Record<string, unknown>;
}

interface Session {
  checks: Array<{ step: string; ok: boolean; detail: unknown }>;
  warnings: string[];
}

describe('a frontend on Apollo Client', () => {
  it('keeps its cached lists right through a whole session with the documented type policies, and warns of nothing', async () => {
    const session = (await script('apollo-client.mjs')) as unknown as Session;
    expect(session.checks.map((c) => c.step)).toEqual([
      'sign in',
      'create a credential',
      'create a wallet and list',
      'update limits',
      'pause',
      'delete the wallet',
      'delete the credential',
    ]);
    for (const c of session.checks)
      expect({ step: c.step, ok: c.ok, detail: c.ok ? undefined : c.detail }).toEqual({
        step: c.step,
        ok: true,
        detail: undefined,
      });
    expect(session.warnings).toEqual([]);
  });

  it('loses data and warns without them (the policies are what keeps it right)', async () => {
    const session = (await script('apollo-client.mjs', 'bare')) as unknown as Session;
    expect(session.checks.find((c) => c.step === 'update limits')!.ok).toBe(false);
    expect(
      session.warnings.some(
        (w) => /Cache data may be lost when replacing/.test(w) && /UserLimits/.test(w),
      ),
    ).toBe(true);
    expect(session.warnings.some((w) => /AiManagedState/.test(w))).toBe(true);
  });
});

describe('a frontend on urql', () => {
  it("is refused by the CSRF check with urql's default GET, and works with either documented fix", async () => {
    const results = await script('urql.mjs');
    expect(results.default).toEqual({
      querySlugs: null,
      queryStatus: 400,
      mutationCodes: ['UNAUTHENTICATED'],
    });
    for (const fix of ['post', 'preflightHeader'])
      expect(results[fix]).toEqual({
        querySlugs: ['binance', 'hyperliquid'],
        queryStatus: null,
        mutationCodes: ['UNAUTHENTICATED'],
      });
  });
});
