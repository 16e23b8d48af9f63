// The same web-mode session in a Chromium launched without the WebGPU flags (the realistic
// "no WebGPU" machine): three falls back to WebGL2, the page says so, and the session works.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { describeWithTools } from '../scripts/testkit.ts';
import { launchChromium, type Launched } from './testing/chromium.ts';
import { startHost, type RunningHost } from './host/start-host.ts';
import { cachedAssets } from './web/bundle.ts';
import { decodePng } from './testing/png.ts';

describeWithTools(['chromium'], 'session in web mode on the WebGL2 fallback', () => {
  let host: RunningHost, b: Launched, page: Page, dataDir: string;
  const snap = (): Promise<any> => page.evaluate(() => (window as any).__orbital.snapshot());
  async function until(what: string, ok: (s: any) => boolean): Promise<any> {
    let v = await snap();
    for (let i = 0; i < 300 && !ok(v); i++) { await page.waitForTimeout(50); v = await snap(); }
    if (!ok(v)) throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(v).slice(0, 400)}`);
    return v;
  }
  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'orbital-webgl2-'));
    host = await startHost({ socket: true, assets: cachedAssets(), dataDir, fsync: 'never', log: () => {} });
    b = await launchChromium({ webgpu: false, width: 1280, height: 800 });
    page = b.browser.pages()[0] ?? await b.browser.newPage();
    await page.goto(host.web.url);
    await page.waitForFunction(() => (window as any).__orbital || (window as any).__orbitalError, null, { timeout: 60_000 });
  });
  afterAll(async () => { await b?.close(); await host?.close(); rmSync(dataDir, { recursive: true, force: true }); });

  it('has no WebGPU adapter, renders with WebGL2 and reports it', async () => {
    expect(await page.evaluate(async () => !!(await (navigator as any).gpu?.requestAdapter()))).toBe(false);
    const s = await until('a first frame', (x) => x.frames > 0);
    expect(s.backend).toBe('webgl2');
    expect(await page.title()).toBe('Orbital — webgl2');
    const png = decodePng(await page.screenshot());
    const at = (x: number, y: number) => Array.from(png.rgba.subarray((y * png.w + x) * 4, (y * png.w + x) * 4 + 3));
    expect(at(1270, 700)).toEqual([0x1d, 0x2b, 0x3a]);
  });

  it('runs a command from the Console', async () => {
    await page.keyboard.press('Alt+1');
    await until('the console', (s) => s.windows.some((w: any) => w.app === 'console' && s.focused === w.id));
    await page.keyboard.type('set fallback yes');
    await page.keyboard.press('Enter');
    await until('the result', (s) => s.consoleText.includes('fallback=yes'));
    // Pasted text is typed into the console's line like keystrokes.
    await page.evaluate(() => { const dt = new DataTransfer(); dt.setData('text/plain', 'get fallback'); window.dispatchEvent(new ClipboardEvent('paste', { clipboardData: dt, bubbles: true })); });
    await until('the pasted line', (s) => s.windows.some((w: any) => w.app === 'console' && w.text === 'get fallback'));
    await page.keyboard.press('Enter');
    await until('its result', (s) => /\$ get fallback\nyes\n/.test(s.consoleText));
  });
});
