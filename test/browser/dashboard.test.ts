/**
 * The dashboard in a real browser: Debian's chromium driven by playwright-core (no browser download), against a
 * running demo. The page loads from the controller alone, shows the scale sets, updates live as the workload runs,
 * is reachable by keyboard, and never requests anything beyond 127.0.0.1. Saves a screenshot in test-output/ (and
 * for the docs with `npm run docs:screenshot`).
 */
import { existsSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCli } from '../demo/helpers.js';
import type { CliProcess } from '../demo/helpers.js';
import { reportSkip } from '../support/skips.js';

const CHROMIUM = process.env.RUNNER_FLEET_CHROMIUM ?? '/usr/bin/chromium';
const available = existsSync(CHROMIUM);
// Tests never change tracked files: the docs' copy is written only by `npm run docs:screenshot`, which sets this.
const SCREENSHOTS = [
  '../../test-output/dashboard.png',
  ...(process.env.RUNNER_FLEET_DOCS_SCREENSHOT === '1' ? ['../../docs/images/dashboard.png'] : []),
].map((p) => fileURLToPath(new URL(p, import.meta.url)));

if (!available)
  reportSkip(
    'dashboard in chromium',
    `no chromium at ${CHROMIUM}`,
    'sudo apt-get install -y chromium (Debian)',
  );

/** The bits of the DOM the page functions below use (this project compiles without the DOM library). */
interface BrowserDocument {
  readonly body: unknown;
  readonly activeElement: {
    readonly id: string;
    readonly tagName: string;
    getAttribute(name: string): string | null;
    blur(): void;
  } | null;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function counter(page: Page, id: string): Promise<number> {
  const text = (await page.locator(`#${id}`).textContent()) ?? '';
  return Number(text.replace(/[^\d]/g, '') || Number.NaN);
}

/** Something that identifies the focused element: its id, its link target or its labelled region. */
async function focused(page: Page): Promise<string> {
  return page.evaluate(() => {
    const doc = (globalThis as unknown as { document: BrowserDocument }).document;
    const el = doc.activeElement;
    if (!el || el === doc.body) return 'body';
    const href = el.getAttribute('href');
    if (href) return `link:${href}`;
    const labelledby = el.getAttribute('aria-labelledby');
    if (el.getAttribute('role') === 'region' && labelledby) return `region:${labelledby}`;
    return `${el.tagName.toLowerCase()}#${el.id}`;
  });
}

describe.skipIf(!available)('dashboard in chromium', () => {
  let demo: CliProcess;
  let url = '';
  let browser: Browser;
  let page: Page;
  const requests: string[] = [];

  beforeAll(async () => {
    demo = startCli(['demo', '--jobs', '150', '--duration', '25s', '--keep']);
    url = (await demo.waitFor(/Dashboard: +(http:\/\/127\.0\.0\.1:\d+)\//))[1]!;
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
    page.on('request', (request) => requests.push(request.url()));
  }, 90_000);

  afterAll(async () => {
    await browser?.close();
    if (demo) {
      // Let the workload finish with the page open, then end --keep.
      await demo.waitFor(/Still serving the dashboard/, 90_000).catch(() => undefined);
      demo.signal('SIGINT');
      const run = await Promise.race([demo.exited, sleep(30_000).then(() => null)]);
      if (run === null) demo.signal('SIGKILL');
      // The demo under the browser still ran every job and leaked nothing (Ctrl-C only ended --keep).
      expect(run?.code, `${run?.stdout}\n${run?.stderr}`).toBe(0);
    }
  }, 150_000);

  it('loads from the controller and shows every scale set', async () => {
    const response = await page.goto(`${url}/`);
    expect(response?.status()).toBe(200);
    const rows = page.locator('#scale-sets-body th[scope="row"]');
    await expect
      .poll(() => rows.allTextContents(), { timeout: 15_000 })
      .toEqual(['linux-process', 'linux-cloud', 'linux-listener', 'app-persistent']);
    await expect.poll(() => page.locator('#connection').textContent(), { timeout: 10_000 }).toBe('live');
    // Landmarks, headed tables and a live region for the counters.
    for (const selector of ['header.banner', 'nav[aria-label="Sections"]', 'main#main', 'footer']) {
      expect(await page.locator(selector).count(), selector).toBe(1);
    }
    expect(await page.locator('th[scope="col"]').count()).toBeGreaterThan(20);
    expect(await page.locator('#counters').getAttribute('aria-live')).toBe('polite');
    expect(await page.title()).toBe('demo dashboard');
  });

  it('updates live while the workload runs (no reload)', async () => {
    const navigations: string[] = [];
    page.on('framenavigated', (frame) => navigations.push(frame.url()));
    const firstCalls = await counter(page, 'count-api-calls');
    const firstUpdated = await page.locator('#updated').textContent();
    await expect
      .poll(() => counter(page, 'count-api-calls'), { timeout: 30_000, interval: 500 })
      .toBeGreaterThan(Number.isNaN(firstCalls) ? 0 : firstCalls);
    await expect
      .poll(() => page.locator('#updated').textContent(), { timeout: 10_000 })
      .not.toBe(firstUpdated);
    // The burst and the trickle show up as runners, and the job no scale set serves as unroutable.
    await expect.poll(() => counter(page, 'count-active'), { timeout: 30_000 }).toBeGreaterThanOrEqual(5);
    await expect
      .poll(() => page.locator('#unroutable-body').textContent(), { timeout: 30_000 })
      .toContain('gpu');
    expect(navigations).toEqual([]);
  });

  it('draws the charts with a text alternative', async () => {
    await expect
      .poll(() => page.locator('#chart-runners polyline').count(), { timeout: 20_000 })
      .toBeGreaterThanOrEqual(3);
    const description = await page.locator('#chart-runners-desc').textContent();
    expect(description).toMatch(/linux-cloud: now \d+, peak \d+/);
    expect(await page.locator('#chart-runners .chart-svg').getAttribute('role')).toBe('img');
    expect(await page.locator('#events-body tr').count()).toBeGreaterThan(1);
  });

  it('saves a screenshot of the dashboard at work', async () => {
    // During the 50-job burst, so the picture shows the system busy.
    await expect.poll(() => counter(page, 'count-active'), { timeout: 30_000 }).toBeGreaterThanOrEqual(25);
    await sleep(1_500);
    for (const path of SCREENSHOTS) {
      mkdirSync(dirname(path), { recursive: true });
      await page.screenshot({ path, fullPage: true });
      expect(existsSync(path)).toBe(true);
    }
  });

  it('fits 1,400 px: the scale-set table and the page need no sideways scrolling', async () => {
    await page.setViewportSize({ width: 1400, height: 900 });
    try {
      await expect.poll(() => page.locator('#scale-sets-body tr th').count(), { timeout: 30_000 }).toBe(4);
      const widths = await page.evaluate(() => {
        interface Box {
          readonly scrollWidth: number;
          readonly clientWidth: number;
        }
        const doc = (
          globalThis as unknown as {
            document: { documentElement: Box; querySelector(selector: string): Box | null };
          }
        ).document;
        const wrap = doc.querySelector('#scale-sets .table-wrap');
        return {
          table: wrap ? [wrap.scrollWidth, wrap.clientWidth] : null,
          page: [doc.documentElement.scrollWidth, doc.documentElement.clientWidth],
        };
      });
      expect(widths.table).not.toBeNull();
      const [tableScroll, tableClient] = widths.table as [number, number];
      expect(tableScroll, `scale-set table ${tableScroll} px wide in ${tableClient} px`).toBeLessThanOrEqual(
        tableClient,
      );
      const [pageScroll, pageClient] = widths.page as [number, number];
      expect(pageScroll).toBeLessThanOrEqual(pageClient);
    } finally {
      await page.setViewportSize({ width: 1440, height: 900 });
    }
  });

  it('is keyboard navigable: Tab reaches the skip link, every section link, the controls and each table region', async () => {
    await page.evaluate(() =>
      (globalThis as unknown as { document: BrowserDocument }).document.activeElement?.blur(),
    );
    await page.locator('body').click({ position: { x: 2, y: 2 } });
    const reached = new Set<string>();
    for (let i = 0; i < 40; i++) {
      await page.keyboard.press('Tab');
      reached.add(await focused(page));
    }
    for (const target of [
      'link:#main',
      'link:#overview',
      'link:#scale-sets',
      'link:#charts',
      'link:#queued',
      'link:#runners',
      'link:#unroutable',
      'link:#events',
      'button#announce',
      'region:scale-sets-title',
      'region:queued-title',
      'region:runners-title',
      'region:unroutable-title',
      'region:events-title',
    ]) {
      expect([...reached], target).toContain(target);
    }
    // A section link moves focus to its section.
    await page.locator('nav a[href="#runners"]').focus();
    await page.keyboard.press('Enter');
    await expect
      .poll(() =>
        page.evaluate(
          () => (globalThis as unknown as { document: BrowserDocument }).document.activeElement?.id,
        ),
      )
      .toBe('runners');
    // The announcement toggle works from the keyboard.
    await page.locator('#announce').focus();
    await page.keyboard.press('Enter');
    expect(await page.locator('#counters').getAttribute('aria-live')).toBe('off');
    expect(await page.locator('#announce').getAttribute('aria-pressed')).toBe('false');
    await page.keyboard.press('Enter');
    expect(await page.locator('#counters').getAttribute('aria-live')).toBe('polite');
  });

  it('text has readable contrast: at least 4.5:1 against its background everywhere (WCAG AA)', async () => {
    if (!page.url().startsWith(url)) await page.goto(`${url}/`);
    await expect
      .poll(() => page.locator('#scale-sets-body th[scope="row"]').count(), { timeout: 15_000 })
      .toBe(4);
    // Runs in the page: every element with its own text, its colour against the first opaque background behind it.
    const failures = await page.evaluate(() => {
      type Element = {
        tagName: string;
        parentElement: Element | null;
        childNodes: ArrayLike<{ nodeType: number; textContent: string | null }>;
        closest(selector: string): Element | null;
      };
      type Window = {
        getComputedStyle(e: Element): { color: string; backgroundColor: string; visibility: string };
        document: { querySelectorAll(selector: string): ArrayLike<Element> };
      };
      const w = globalThis as unknown as Window;
      const rgba = (css: string) => {
        const m = /rgba?\(([^)]+)\)/.exec(css);
        const [r = 0, g = 0, b = 0, a = 1] = (m?.[1] ?? '0,0,0,0').split(',').map((x) => Number(x.trim()));
        return { r, g, b, a };
      };
      const lum = ({ r, g, b }: { r: number; g: number; b: number }) => {
        const f = (c: number) => {
          const v = c / 255;
          return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
        };
        return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
      };
      const out: string[] = [];
      let checked = 0;
      for (const el of Array.from(w.document.querySelectorAll('body *'))) {
        if (el.closest('svg') || el.closest('.visually-hidden') || el.closest('.skip')) continue;
        const text = Array.from(el.childNodes)
          .filter((n) => n.nodeType === 3)
          .map((n) => n.textContent ?? '')
          .join('')
          .trim();
        if (!text) continue;
        const style = w.getComputedStyle(el);
        if (style.visibility === 'hidden') continue;
        let bg = { r: 255, g: 255, b: 255, a: 1 };
        for (let e: Element | null = el; e; e = e.parentElement) {
          const c = rgba(w.getComputedStyle(e).backgroundColor);
          if (c.a > 0) {
            bg = c;
            break;
          }
        }
        const [hi, lo] = [lum(rgba(style.color)), lum(bg)].sort((a, b) => b - a);
        const ratio = (hi! + 0.05) / (lo! + 0.05);
        checked++;
        if (ratio < 4.5) out.push(`${el.tagName} "${text.slice(0, 30)}": ${ratio.toFixed(2)}`);
      }
      return { out, checked };
    });
    // The whole page was there: header, counters, tables with rows.
    expect(failures.checked).toBeGreaterThan(100);
    expect(failures.out).toEqual([]);
  });

  it('never requested anything beyond 127.0.0.1', () => {
    expect(requests.length).toBeGreaterThan(3);
    const outside = requests.filter((r) => !r.startsWith('data:') && new URL(r).hostname !== '127.0.0.1');
    expect(outside).toEqual([]);
  });
});
