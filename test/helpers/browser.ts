/**
 * A real browser for the web UI tests: Debian's chromium driven by
 * playwright-core (no downloaded browser builds), headless, in a fresh
 * profile that is deleted afterwards.
 *
 *   const skip = browserSkip();                 // a reason outside CI, or throws in CI
 *   const b = await launchBrowser();
 *   const page = await b.context.newPage();
 *   b.watch(page);                              // collects console errors, CSP violations, page errors
 *   …
 *   await b.close();
 *
 * Without /usr/bin/chromium the browser tests are skipped with a hint on a
 * developer machine, and FAIL in CI (CI=true): a UI that was never rendered
 * must not pass as tested.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type BrowserContext, type Page } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';
export const INSTALL_HINT = 'install chromium: apt-get install -y chromium';

/** Where screenshots go (git-ignored). */
export const ARTIFACTS = fileURLToPath(new URL('../../test-artifacts/', import.meta.url));

/**
 * Undefined when the browser tests can run; otherwise the reason to skip.
 * Throws in CI, where skipping is not allowed.
 */
export function browserSkip(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (existsSync(CHROMIUM)) return undefined;
  if (env.CI === 'true') throw new Error(`${CHROMIUM} is missing in CI; ${INSTALL_HINT}`);
  return INSTALL_HINT;
}

/** What the page reported that a test must look at. */
export interface PageReports {
  /** Console messages of type error (including CSP and Trusted Types violations). */
  readonly consoleErrors: string[];
  /** CSP / Trusted Types violations (a subset of consoleErrors). */
  readonly cspViolations: string[];
  /** Uncaught exceptions in the page. */
  readonly pageErrors: string[];
}

export interface TestBrowser {
  readonly context: BrowserContext;
  /** Starts collecting the page's console errors, CSP violations and uncaught errors. */
  watch(page: Page): PageReports;
  /** Saves a full-page screenshot as test-artifacts/NAME.png; returns the path. */
  screenshot(page: Page, name: string): Promise<string>;
  close(): Promise<void>;
}

const CSP_RE = /Content Security Policy|Content-Security-Policy|Trusted Type|TrustedHTML|TrustedScript/i;

/** Launches headless chromium with a fresh --user-data-dir. */
export async function launchBrowser(): Promise<TestBrowser> {
  const profile = mkdtempSync(join(tmpdir(), 'meshgate-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1360, height: 900 },
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
  });
  context.setDefaultTimeout(15_000);
  mkdirSync(ARTIFACTS, { recursive: true });
  return {
    context,
    watch(page) {
      const r: PageReports = { consoleErrors: [], cspViolations: [], pageErrors: [] };
      page.on('console', (m) => {
        if (m.type() !== 'error' && !CSP_RE.test(m.text())) return;
        r.consoleErrors.push(m.text());
        if (CSP_RE.test(m.text())) r.cspViolations.push(m.text());
      });
      page.on('pageerror', (e) => r.pageErrors.push(String(e)));
      return r;
    },
    async screenshot(page, name) {
      const file = join(ARTIFACTS, `${name}.png`);
      await page.screenshot({ path: file, fullPage: true });
      return file;
    },
    async close() {
      await context.close().catch(() => {});
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
