// The GPU renderer in Chromium with WebGPU (SwiftShader): backend, golden image against the
// reference rasterizer, an idle frame draws nothing, and a lost device is recovered.
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { describeWithTools } from '../scripts/testkit.ts';
import { launchChromium, type Launched } from './testing/chromium.ts';
import { servePage } from './testing/page-host.ts';
import type { WebHost } from './web/server.ts';
import { expectGolden } from './testing/golden.ts';

describeWithTools(['chromium'], 'GPU renderer on WebGPU', () => {
  let host: WebHost, b: Launched, page: Page;
  const errors: string[] = [];
  beforeAll(async () => {
    host = await servePage('renderer/testing/gpu-page.ts');
    b = await launchChromium({ webgpu: true, width: 800, height: 520 });
    page = b.browser.pages()[0] ?? await b.browser.newPage();
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(host.url);
    await page.waitForFunction(() => document.title === 'gpu-page ready');
  });
  afterAll(async () => { await b?.close(); await host?.close(); });

  it('draws on the WebGPU backend and matches the reference rasterizer', async () => {
    const init = await page.evaluate(() => (window as any).__gpu.init());
    expect(init).toEqual({ adapter: true, backend: 'webgpu', isWebGPUBackend: true });
    const s = await page.evaluate(() => (window as any).__gpu.drawGolden());
    expect(s.rendered).toBe(true);
    expect(s.drawCalls).toBe(1);
    await expectGolden(page, 'webgpu');
  });

  it('draws a fixed session composited by the scene like the reference rasterizer', async () => {
    const s = await page.evaluate(() => (window as any).__gpu.drawSession());
    expect(s.rendered).toBe(true);
    await expectGolden(page, 'session', 'session');
    await page.evaluate(() => (window as any).__gpu.drawGolden());
  });

  it('animates a window opening as a function of frame time only, and leaves no trace when done', async () => {
    const r = await page.evaluate(() => (window as any).__gpu.animateOpen());
    expect(r).toEqual({ start: true, animatingAtStart: true, mid: true, midUploads: 0, end: true, animatingAfter: false, idle: false });
    await expectGolden(page, 'opened', 'opened');
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
    expect(r.backend).toBe('webgpu');
    expect(r.stats.rasterPixels).toBe(0);
    expect(r.stats.uploadBytes).toBeGreaterThan(0);
    await expectGolden(page, 'webgpu-recovered');
    expect(errors).toEqual([]);
  });
});
