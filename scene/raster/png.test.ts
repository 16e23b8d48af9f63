import { inflateSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { crc32, encodePNG } from './png.ts';
import { createRaster } from './raster.ts';

describe('encodePNG', () => {
  it('writes a PNG whose pixels zlib reads back exactly (multi-block)', () => {
    const r = createRaster(200, 120);
    for (let i = 0; i < r.rgba.length; i++) r.rgba[i] = (i * 7) & 255;
    const png = encodePNG(r);
    expect(Array.from(png.subarray(0, 8))).toEqual([137, 80, 78, 71, 13, 10, 26, 10]);
    const dv = new DataView(png.buffer);
    expect(dv.getUint32(16)).toBe(200);
    expect(dv.getUint32(20)).toBe(120);
    const idatLen = dv.getUint32(33);
    const raw = inflateSync(png.subarray(41, 41 + idatLen));
    expect(raw.length).toBe(120 * (200 * 4 + 1));
    for (let y = 0; y < 120; y++) {
      expect(raw[y * 801]).toBe(0);
      expect(Buffer.compare(raw.subarray(y * 801 + 1, (y + 1) * 801), Buffer.from(r.rgba.subarray(y * 800, (y + 1) * 800)))).toBe(0);
    }
  });
  it('crc32 matches the standard check value', () => {
    expect(crc32([Uint8Array.from('123456789', (c) => c.charCodeAt(0))])).toBe(0xcbf43926);
  });
});
