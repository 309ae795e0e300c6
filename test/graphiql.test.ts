import { existsSync } from 'node:fs';
import puppeteer, { type Browser } from 'puppeteer-core';
import { startTestApp, type TestApp } from './helpers/app';

const CHROMIUM = '/usr/bin/chromium';

let t: TestApp;
let browser: Browser;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium (.ci/run does)`);
  t = await startTestApp();
  browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
});

afterAll(async () => {
  await browser?.close();
  await t?.close();
});

describe('GraphiQL in a browser', () => {
  it('runs a query through the UI, offline, and shows the result', async () => {
    const page = await browser.newPage();
    const offHost: string[] = [];
    const pageErrors: string[] = [];
    await page.setRequestInterception(true);
    page.on('request', (request) => {
      const url = new URL(request.url());
      // Everything the page needs must come from us; anything else is refused and recorded.
      if (url.origin !== new URL(t.url).origin && url.protocol !== 'data:') {
        offHost.push(request.url());
        void request.abort();
      } else {
        void request.continue();
      }
    });
    page.on('pageerror', (error) => pageErrors.push(String(error)));

    await page.goto(`${t.url}/graphql`, { waitUntil: 'networkidle0' });
    await page.waitForSelector('.graphiql-query-editor .CodeMirror', { timeout: 20_000 });
    await page.evaluate(() => {
      const editor = document.querySelector('.graphiql-query-editor .CodeMirror') as unknown as { CodeMirror: { setValue(v: string): void } };
      editor.CodeMirror.setValue('{ walletDefinitions { slug } }');
    });
    await page.click('.graphiql-execute-button');
    await page.waitForFunction(() => document.querySelector('.result-window')?.textContent?.includes('binance'), { timeout: 20_000 });
    const result = await page.$eval('.result-window', (el) => el.textContent ?? '');
    expect(result).toContain('"slug": "binance"');
    expect(result).toContain('"slug": "hyperliquid"');
    expect(offHost).toEqual([]);
    expect(pageErrors).toEqual([]);
  });
});
