import { describe, expect, it } from 'vitest';
import { blake3, initAxiom, toHex } from '../../axiom/index.ts';
import type { Frame, Group, Layer } from '../compositor/layers.ts';
import { glyphPattern } from './glyphs.ts';
import { createRaster, render, renderFull } from './raster.ts';
import { beforeAll } from 'vitest';

beforeAll(() => initAxiom());

const frame = (layers: Layer[], w = 16, h = 12, extra: Partial<Frame> = {}): Frame => {
  const g: Group = { key: 'g', window: 0, bounds: { x: 0, y: 0, w, h }, layers, hits: [] };
  return { width: w, height: h, clear: 0x000000ff, groups: [g], images: new Map(), ...extra };
};
const px = (r: { w: number; rgba: Uint8Array }, x: number, y: number) => Array.from(r.rgba.subarray((y * r.w + x) * 4, (y * r.w + x) * 4 + 4));

describe('reference rasterizer', () => {
  it('covers a pixel when its center is inside the box', () => {
    const r = renderFull(frame([{ kind: 'rect', key: 'a', x: 1.5, y: 2.4, w: 2, h: 1, color: 0xff0000ff }]));
    // x ∈ [1.5, 3.5): centers 1.5, 2.5 → pixels 1, 2. y ∈ [2.4, 3.4): center 2.5 → pixel 2.
    expect(px(r, 1, 2)).toEqual([255, 0, 0, 255]);
    expect(px(r, 2, 2)).toEqual([255, 0, 0, 255]);
    expect(px(r, 3, 2)).toEqual([0, 0, 0, 255]);
    expect(px(r, 1, 3)).toEqual([0, 0, 0, 255]);
  });

  it('blends src-over in 8-bit integers', () => {
    const r = renderFull(frame([
      { kind: 'rect', key: 'a', x: 0, y: 0, w: 4, h: 4, color: 0x204060ff },
      { kind: 'rect', key: 'b', x: 0, y: 0, w: 4, h: 4, color: 0xffffff80 },
    ]));
    // (255·128 + 32·127 + 127) / 255 = 144.4 → 144; 64 → 160; 96 → 176.
    expect(px(r, 1, 1)).toEqual([144, 160, 176, 255]);
  });

  it('draws borders inside the box and clips surface children to the surface', () => {
    const r = renderFull(frame([
      { kind: 'border', key: 'b', x: 1, y: 1, w: 6, h: 5, width: 1, color: 0x00ff00ff },
      { kind: 'surface', key: 's', window: 1, x: 8, y: 1, w: 4, h: 4, color: 0x0000ffff, children: [{ kind: 'rect', key: 'c', x: 10, y: 3, w: 10, h: 10, color: 0xff0000ff }] },
    ]));
    expect(px(r, 1, 1)).toEqual([0, 255, 0, 255]);
    expect(px(r, 6, 5)).toEqual([0, 255, 0, 255]);
    expect(px(r, 3, 3)).toEqual([0, 0, 0, 255]);
    expect(px(r, 8, 1)).toEqual([0, 0, 255, 255]);
    expect(px(r, 11, 4)).toEqual([255, 0, 0, 255]);
    expect(px(r, 12, 4)).toEqual([0, 0, 0, 255]);
    expect(px(r, 11, 5)).toEqual([0, 0, 0, 255]);
  });

  it('samples images at the nearest pixel and marks missing images loudly', () => {
    const img = { w: 2, h: 1, rgba: new Uint8Array([255, 0, 0, 255, 0, 0, 255, 255]) };
    const r = renderFull(frame([
      { kind: 'image', key: 'i', x: 0, y: 0, w: 4, h: 2, image: 'two' },
      { kind: 'image', key: 'm', x: 8, y: 0, w: 8, h: 4, image: 'missing' },
    ], 16, 12, { images: new Map([['two', img]]) }));
    expect(px(r, 1, 1)).toEqual([255, 0, 0, 255]);
    expect(px(r, 2, 0)).toEqual([0, 0, 255, 255]);
    expect(px(r, 12, 0)).toEqual([255, 0, 255, 255]);
    expect(px(r, 8, 0)).toEqual([0, 0, 0, 255]);
  });

  it('draws glyphs as their pattern inside the glyph box, and nothing outside the text bounds', () => {
    const text: Layer = {
      kind: 'text', key: 't', x: 2, y: 2, color: 0xffffffff, font: '', size: 7, ascent: 5,
      glyphs: Uint32Array.of(65), gx: Float32Array.of(0), gy: Float32Array.of(5), gw: Float32Array.of(5), bx: 0, by: 0, w: 5, h: 7,
    };
    const r = renderFull(frame([text]));
    const p = glyphPattern(65);
    let ink = 0;
    for (let y = 0; y < 12; y++) for (let x = 0; x < 16; x++) {
      const on = px(r, x, y)[0] === 255;
      const inside = x >= 2 && x < 7 && y >= 2 && y < 9;
      if (!inside) expect(on).toBe(false);
      else { expect(on).toBe(Math.floor(p / 2 ** ((y - 2) * 5 + (x - 2))) % 2 === 1); if (on) ink++; }
    }
    expect(ink).toBeGreaterThan(4);
    expect(glyphPattern(65)).not.toBe(glyphPattern(66));
  });

  it('renders only inside the clip rect', () => {
    const f = frame([{ kind: 'rect', key: 'a', x: 0, y: 0, w: 16, h: 12, color: 0xffffffff }]);
    const r = createRaster(16, 12);
    render(f, r, { clip: { x: 4, y: 4, w: 2, h: 2 } });
    expect(px(r, 4, 4)).toEqual([255, 255, 255, 255]);
    expect(px(r, 3, 4)).toEqual([0, 0, 0, 0]);
    expect(px(r, 6, 5)).toEqual([0, 0, 0, 0]);
  });

  it('golden: a fixed frame renders to a fixed image (change only on purpose)', () => {
    const f = frame([
      { kind: 'rect', key: 'bg', x: 0, y: 0, w: 32, h: 24, color: 0x1d2b3aff },
      { kind: 'surface', key: 's', window: 1, x: 3.5, y: 2, w: 20, h: 16, color: 0xf4f4f0ff, children: [
        { kind: 'rect', key: 'tb', x: 3.5, y: 2, w: 20, h: 5, color: 0x2e4a6fc0 },
        { kind: 'text', key: 't', x: 5, y: 8, color: 0x1a1a1aff, font: '', size: 6, ascent: 5, glyphs: Uint32Array.of(72, 105, 33), gx: Float32Array.of(0, 4, 8), gy: Float32Array.of(5, 5, 5), gw: Float32Array.of(4, 4, 4), bx: 0, by: 0, w: 12, h: 6 },
        { kind: 'border', key: 'b', x: 3.5, y: 2, w: 20, h: 16, width: 1, color: 0x3d7effff },
      ] },
    ], 32, 24);
    const r = renderFull(f);
    expect(toHex(blake3(r.rgba))).toMatchInlineSnapshot(`"5792358ecc3360ab51c87dfaf13fa7806002bec1ba9685181a4e99a20a425f1f"`);
  });
});
