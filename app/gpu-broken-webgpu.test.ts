// A browser whose WebGPU finds an adapter but cannot present (Chromium with --enable-unsafe-webgpu
// alone, ../shared/notes/webgpu-in-chromium.md): three picks WebGPU, the device is lost, and the
// renderer recovers onto WebGL2 — the page keeps drawing and says which backend it uses.
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { describeWithTools } from '../scripts/testkit.ts';
import { launchChromium, type Launched } from './testing/chromium.ts';
import { servePage } from './testing/page-host.ts';
import type { WebHost } from './web/server.ts';
import { expectGolden } from './testing/golden.ts';

describeWithTools(['chromium'], 'GPU renderer when WebGPU cannot present', () => {
  let host: WebHost, b: Launched, page: Page;
  beforeAll(async () => {
    host = await servePage('renderer/testing/gpu-page.ts');
    b = await launchChromium({ webgpu: 'adapter-only', width: 800, height: 520 });
    page = b.browser.pages()[0] ?? await b.browser.newPage();
    await page.goto(host.url);
    await page.waitForFunction(() => document.title === 'gpu-page ready');
  });
  afterAll(async () => { await b?.close(); await host?.close(); });

  it('loses the WebGPU device, recovers on WebGL2 and draws the golden frame', async () => {
    const init = await page.evaluate(() => (window as any).__gpu.init());
    expect(init.adapter).toBe(true);
    await page.evaluate(() => (window as any).__gpu.drawGolden());
    let st: any;
    // The loss and the fallback take a while on a loaded machine (a clean-clone CI run beside
    // other tests once needed more than 10 s): wait up to 40 s, a deadline, not a timing assertion.
    for (let i = 0; i < 800; i++) {
      st = await page.evaluate(() => (window as any).__gpu.state());
      if (st.backend === 'webgl2' && st.recoveries > 0) break;
      await page.waitForTimeout(50);
    }
    expect(st.backend).toBe('webgl2');
    expect(st.lastLoss).toContain('lost');
    await page.evaluate(() => (window as any).__gpu.drawGolden());
    await expectGolden(page, 'after-fallback');
  });
});
