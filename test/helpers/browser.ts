/**
 * Headless Chromium from Debian's package, driven by playwright-core (no browser download; .ci/run
 * installs `chromium`). Screenshots go to test-artifacts/.
 */
import { mkdirSync } from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';
import { onTestFinished } from 'vitest';
import { REPO_ROOT } from './gateway-process.js';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const ARTIFACTS = `${REPO_ROOT}test-artifacts/`;

/** Console errors that report a Content-Security-Policy violation ("Refused to … because it violates …"). */
export const cspViolations = (consoleErrors: readonly string[]) => consoleErrors.filter((m) => /Content Security Policy/i.test(m));

/** A fresh headless Chromium, closed when the test ends. */
export async function launchChromium(): Promise<Browser> {
  const browser = await chromium
    .launch({
      executablePath: CHROMIUM,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    })
    .catch((err: Error) => {
      throw new Error(`cannot start ${CHROMIUM} (apt-get install chromium; .ci/run does): ${err.message}`);
    });
  onTestFinished(() => browser.close());
  return browser;
}

/** Opens `url` in a fresh headless Chromium; `consoleErrors` collects the page's console errors from the start. */
export async function openPage(url: string): Promise<{ browser: Browser; page: Page; consoleErrors: string[] }> {
  const browser = await launchChromium();
  const page = await browser.newPage({ viewport: { width: 1200, height: 800 } });
  const consoleErrors: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') consoleErrors.push(m.text());
  });
  await page.goto(url);
  return { browser, page, consoleErrors };
}

export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(ARTIFACTS, { recursive: true });
  const path = `${ARTIFACTS}${name}.png`;
  await page.screenshot({ path });
  return path;
}
