import { existsSync } from 'node:fs';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';

const CHROMIUM = '/usr/bin/chromium';

export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM))
    throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium (.ci/run does)`);
  return puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
}

/**
 * A page that may load only from `origin`: anything else is refused and recorded, as are the paths
 * it asked for.
 */
export async function offlinePage(
  browser: Browser,
  origin: string,
): Promise<{ page: Page; offHost: string[]; pageErrors: string[]; paths: string[] }> {
  const page = await browser.newPage();
  const offHost: string[] = [];
  const pageErrors: string[] = [];
  const paths: string[] = [];
  await page.setRequestInterception(true);
  page.on('request', (request) => {
    const url = new URL(request.url());
    if (url.origin !== new URL(origin).origin && url.protocol !== 'data:') {
      offHost.push(request.url());
      void request.abort();
    } else {
      paths.push(url.pathname);
      void request.continue();
    }
  });
  page.on('pageerror', (error) => pageErrors.push(String(error)));
  return { page, offHost, pageErrors, paths };
}
