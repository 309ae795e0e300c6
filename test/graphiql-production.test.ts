import type { Browser } from 'puppeteer-core';
import { startTestApp, type TestApp } from './helpers/app';
import { launchChromium, offlinePage } from './helpers/browser';

// One service at a time: mongoose's connection is per process (per test file here).
describe('GraphiQL in production', () => {
  it('is not served unless GRAPHIQL=true', async () => {
    const prod = await startTestApp({ NODE_ENV: 'production' });
    try {
      expect((await fetch(`${prod.url}/graphiql`)).status).toBe(404);
      expect(
        (await fetch(`${prod.url}/graphql`, { headers: { accept: 'text/html' } })).status,
      ).toBe(404);
      expect((await fetch(`${prod.url}/graphiql/assets/graphiql.js`)).status).toBe(404);
      expect((await fetch(`${prod.url}/graphiql/schema.json`)).status).toBe(404);
    } finally {
      await prod.close();
    }
  });

  describe('with GRAPHIQL=true', () => {
    let prod: TestApp;
    let browser: Browser;
    beforeAll(async () => {
      prod = await startTestApp({ NODE_ENV: 'production', GRAPHIQL: 'true' });
      browser = await launchChromium();
    });
    afterAll(async () => {
      await browser?.close();
      await prod?.close();
    });

    it('shows the docs from the committed schema file, served beside it, while introspection stays off', async () => {
      expect((await prod.raw('{ __schema { queryType { name } } }')).errors).toBeDefined();
      const served = (await (await fetch(`${prod.url}/graphiql/schema.json`)).json()) as {
        data: { __schema: { types: Array<{ name: string }> } };
      };
      expect(served.data.__schema.types.map((type) => type.name)).toContain('WalletDefinition');
      const { page, offHost, pageErrors, paths } = await offlinePage(browser, prod.url);
      await page.goto(`${prod.url}/graphiql`, { waitUntil: 'networkidle0' });
      await page.waitForSelector('.graphiql-query-editor .CodeMirror', { timeout: 20_000 });
      await page.click('button[aria-label="Show Documentation Explorer"]');
      // The explorer's root lists the schema's root types, which only a schema can tell it.
      await page.waitForFunction(
        () =>
          /query:\s*Query[\s\S]*mutation:\s*Mutation/.test(
            document.querySelector('.graphiql-doc-explorer')?.textContent ?? '',
          ),
        { timeout: 20_000 },
      );
      expect(paths).toContain('/graphiql/schema.json');
      expect(offHost).toEqual([]);
      expect(pageErrors).toEqual([]);
    });
  });
});
