// The reference rasterizer's glyphs: not a font, a deterministic 5×7 pattern per glyph id, scaled
// into the glyph's box. Enough to see that text is there, where, and which glyphs — and the very
// same pixels in Node and in a browser, which is what an oracle needs.

const cache = new Map<number, number>();

/** 35 bits (5 columns × 7 rows, row-major) of glyph `id`'s pattern; the last column and row stay clear as spacing. */
export function glyphPattern(id: number): number {
  let p = cache.get(id);
  if (p !== undefined) return p;
  // xorshift-multiply hash of the id: stable, no platform dependence (32-bit integer ops only).
  let h = (id ^ 0x9e3779b9) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b) >>> 0;
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35) >>> 0;
  h = (h ^ (h >>> 16)) >>> 0;
  // 4 columns × 6 rows of ink = 24 bits; always ink the stem (column 0, rows 1..5) so no glyph is blank.
  p = 0;
  for (let r = 0; r < 6; r++) {
    for (let c = 0; c < 4; c++) {
      const bit = (h >>> (r * 4 + c)) & 1;
      if (bit || (c === 0 && r >= 1)) p += 2 ** (r * 5 + c);
    }
  }
  cache.set(id, p);
  return p;
}

/** Whether pattern `p` has ink at column `c` (0..4), row `r` (0..6). */
export const glyphBit = (p: number, c: number, r: number): boolean => Math.floor(p / 2 ** (r * 5 + c)) % 2 === 1;
