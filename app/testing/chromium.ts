// Chromium for tests and benchmarks: Debian's /usr/bin/chromium driven by playwright-core, with
// the exact flags measured in ../shared/notes/webgpu-in-chromium.md. Chromium honours only the
// last --enable-features, so Playwright's own features are merged into ours.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, BrowserContext } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';
const PLAYWRIGHT_FEATURES = ['CDPScreenshotNewSurface', 'SkipListAccountsWithoutGaiaCookies'];
const QUIET = ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'];
const WEBGPU = ['--enable-unsafe-webgpu', '--use-vulkan=swiftshader', '--use-angle=swiftshader'];

export interface Launched { browser: BrowserContext; close(): Promise<void> }

/**
 * Launches Chromium. webgpu: true → the four WebGPU flags (SwiftShader Vulkan); false → none of
 * them (the realistic "no WebGPU" case: three falls back to WebGL2 on ANGLE/SwiftShader).
 */
export async function launchChromium(opts: { webgpu: boolean | 'adapter-only'; width?: number; height?: number; args?: string[] }): Promise<Launched> {
  const { chromium } = await import('playwright-core');
  const dir = mkdtempSync(join(tmpdir(), 'orbital-chromium-'));
  // 'adapter-only': just --enable-unsafe-webgpu — an adapter is found but presenting fails (notes).
  const features = opts.webgpu === true ? ['Vulkan', ...PLAYWRIGHT_FEATURES] : PLAYWRIGHT_FEATURES;
  const gpuFlags = opts.webgpu === true ? WEBGPU : opts.webgpu === 'adapter-only' ? ['--enable-unsafe-webgpu'] : [];
  const ctx = await chromium.launchPersistentContext(dir, {
    executablePath: CHROMIUM,
    headless: true,
    args: [...QUIET, ...gpuFlags, ...(opts.args ?? []), `--enable-features=${features.join(',')}`],
    ignoreDefaultArgs: [`--enable-features=${PLAYWRIGHT_FEATURES.join(',')}`],
    viewport: { width: opts.width ?? 1280, height: opts.height ?? 800 },
    deviceScaleFactor: 1,
  });
  return {
    browser: ctx,
    close: async () => { await ctx.close().catch(() => {}); rmSync(dir, { recursive: true, force: true }); },
  };
}

export type { Browser };
