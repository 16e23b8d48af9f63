// The GPU renderer in a Chromium launched without the WebGPU flags (three picks WebGL2): backend, golden image against the
// reference rasterizer, an idle frame draws nothing, and a lost device is recovered.
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { describeWithTools } from '../scripts/testkit.ts';
import { launchChromium, type Launched } from './testing/chromium.ts';
import { servePage } from './testing/page-host.ts';
import type { WebHost } from './web/server.ts';
import { expectGolden } from './testing/golden.ts';

describeWithTools(['chromium'], 'GPU renderer on the WebGL2 fallback (browser without WebGPU flags)', () => {
  let host: WebHost, b: Launched, page: Page;
  const errors: string[] = [];
  beforeAll(async () => {
    host = await servePage('renderer/testing/gpu-page.ts');
    b = await launchChromium({ webgpu: false, width: 800, height: 520 });
    page = b.browser.pages()[0] ?? await b.browser.newPage();
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(host.url);
    await page.waitForFunction(() => document.title === 'gpu-page ready');
  });
  afterAll(async () => { await b?.close(); await host?.close(); });

  it('falls back to WebGL2 by itself and matches the reference rasterizer', async () => {
    const init = await page.evaluate(() => (window as any).__gpu.init());
    expect(init).toEqual({ adapter: false, backend: 'webgl2', isWebGPUBackend: false });
    const s = await page.evaluate(() => (window as any).__gpu.drawGolden());
    expect(s.rendered).toBe(true);
    expect(s.drawCalls).toBe(1);
    await expectGolden(page, 'webgl2');
  });

  it('draws a fixed session composited by the scene like the reference rasterizer', async () => {
    const s = await page.evaluate(() => (window as any).__gpu.drawSession());
    expect(s.rendered).toBe(true);
    await expectGolden(page, 'session', 'session');
    await page.evaluate(() => (window as any).__gpu.drawGolden());
  });

  it('draws nothing for an unchanged frame', async () => {
    const s = await page.evaluate(() => (window as any).__gpu.drawSame());
    expect(s).toMatchObject({ rendered: false, uploadBytes: 0, rasterPixels: 0 });
  });

  it('recovers from a lost device without re-rasterizing, and still matches', async () => {
    const r = await page.evaluate(() => (window as any).__gpu.loseAndRecover());
    expect(r.recoveries).toBe(1);
    expect(r.reason).toContain('lost');
    expect(r.backend).toBe('webgl2');
    expect(r.stats.rasterPixels).toBe(0);
    expect(r.stats.uploadBytes).toBeGreaterThan(0);
    await expectGolden(page, 'webgl2-recovered');
    expect(errors).toEqual([]);
  });
});
