import type { Browser } from 'puppeteer-core';
import { startTestApp, type TestApp } from './helpers/app';
import { launchChromium, offlinePage } from './helpers/browser';
import { registerUser } from './helpers/factories';

let t: TestApp;
let browser: Browser;

beforeAll(async () => {
  t = await startTestApp();
  browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close();
  await t?.close();
});

describe('GraphiQL in a browser', () => {
  it('runs a query through the UI, offline, and shows the result', async () => {
    const { page, offHost, pageErrors } = await offlinePage(browser, t.url);
    await page.goto(`${t.url}/graphql`, { waitUntil: 'networkidle0' });
    await page.waitForSelector('.graphiql-query-editor .CodeMirror', { timeout: 20_000 });
    await page.evaluate(() => {
      const editor = document.querySelector('.graphiql-query-editor .CodeMirror') as unknown as {
        CodeMirror: { setValue(v: string): void };
      };
      editor.CodeMirror.setValue('{ walletDefinitions { slug } }');
    });
    await page.click('.graphiql-execute-button');
    await page.waitForFunction(
      () => document.querySelector('.result-window')?.textContent?.includes('binance'),
      { timeout: 20_000 },
    );
    const result = await page.$eval('.result-window', (el) => el.textContent ?? '');
    expect(result).toContain('"slug": "binance"');
    expect(result).toContain('"slug": "hyperliquid"');
    expect(offHost).toEqual([]);
    expect(pageErrors).toEqual([]);
  });
});

describe('GraphiQL and the bearer token', () => {
  it('keeps the headers in sessionStorage, never in localStorage', async () => {
    const user = await registerUser(t);
    const { page, pageErrors } = await offlinePage(browser, t.url);
    await page.goto(`${t.url}/graphiql`, { waitUntil: 'networkidle0' });
    await page.waitForSelector('.graphiql-query-editor .CodeMirror', { timeout: 20_000 });
    await page.evaluate((token: string) => {
      type Editor = { CodeMirror: { setValue(v: string): void } };
      (
        document.querySelector('.graphiql-query-editor .CodeMirror') as unknown as Editor
      ).CodeMirror.setValue('{ me { email } }');
      // The editor tools hold the variables editor, then the headers editor.
      const [, headers] = Array.from(
        document.querySelectorAll('.graphiql-editor-tool .CodeMirror'),
      ) as unknown as Editor[];
      headers.CodeMirror.setValue(JSON.stringify({ Authorization: `Bearer ${token}` }));
    }, user.token);
    await page.click('.graphiql-execute-button');
    await page.waitForFunction(
      (email: string) => document.querySelector('.result-window')?.textContent?.includes(email),
      { timeout: 20_000 },
      user.email,
    );
    const stored = await page.evaluate(() => {
      const all = (s: Storage) =>
        Array.from({ length: s.length }, (_, i) => `${s.key(i)}=${s.getItem(s.key(i)!)}`).join(
          '\n',
        );
      return { local: all(localStorage), session: all(sessionStorage) };
    });
    expect(stored.local).not.toContain(user.token);
    expect(stored.session).toContain(user.token);
    expect(pageErrors).toEqual([]);
  });
});
