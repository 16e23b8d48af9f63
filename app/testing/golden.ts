// Shared by the WebGPU and the WebGL2 browser tests: draw the golden frame in the page and
// compare a screenshot with the reference rasterizer.
import { expect } from 'vitest';
import type { Page } from 'playwright-core';
import { renderFull } from '../../scene/index.ts';
import { goldenFrame, goldenFrameOpened, goldenSession } from '../../renderer/testing/fixtures.ts';
import type { Frame } from '../../scene/index.ts';
import { compareImages, decodePng, encodePng } from './png.ts';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * The stated tolerance: every pixel within 2 levels per channel of the reference, except at most
 * 0.05% of them (glyph cell edges at fractional positions, where the GPU's interpolated texture
 * coordinate and the reference's float math can round to neighbouring cells).
 */
export const LEVELS = 2;
export const MAX_OFF_FRACTION = 0.0005;

export async function expectGolden(page: Page, label: string, which: 'layers' | 'session' | 'opened' = 'layers'): Promise<{ differing: number; maxDelta: number }> {
  const f: Frame = which === 'session' ? goldenSession() : which === 'opened' ? goldenFrameOpened() : goldenFrame();
  const shot = decodePng(await page.screenshot({ clip: { x: 0, y: 0, width: f.width, height: f.height } }));
  const ref = renderFull(f);
  const c = compareImages(shot, ref, LEVELS);
  if (c.differing > f.width * f.height * MAX_OFF_FRACTION) {
    const dir = mkdtempSync(join(tmpdir(), 'orbital-golden-'));
    writeFileSync(join(dir, `${label}-got.png`), encodePng(shot));
    writeFileSync(join(dir, `${label}-reference.png`), encodePng(ref));
    expect.fail(`${label}: ${c.differing} pixels differ by more than ${LEVELS} levels (first at ${c.first}); images in ${dir}`);
  }
  // Not blank: a screenshot of nothing would differ everywhere, but say so plainly.
  expect(shot.rgba.some((v, i) => i % 4 !== 3 && v !== shot.rgba[i % 4])).toBe(true);
  return c;
}
