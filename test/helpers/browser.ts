import { existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';

/** CHROME_PATH, else the first Chromium on the PATH (npm test installs one when it can). */
function chromiumPath(): string {
  if (process.env.CHROME_PATH) return process.env.CHROME_PATH;
  for (const dir of (process.env.PATH ?? '').split(delimiter))
    for (const name of ['chromium', 'chromium-browser', 'google-chrome'])
      if (dir && existsSync(join(dir, name))) return join(dir, name);
  throw new Error('no Chromium: run `sudo apt-get install -y chromium` (or set CHROME_PATH)');
}

export async function launchChromium(): Promise<Browser> {
  return puppeteer.launch({
    executablePath: chromiumPath(),
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
