// Where glyph bitmaps come from. The session draws real characters (FixedShaper glyph ids are
// code points) with the browser's monospace font; golden-image tests swap in the reference
// rasterizer's 5×7 patterns so the GPU output can be compared with scene/raster pixel for pixel.
import { glyphBit, glyphPattern } from '../../scene/raster/glyphs.ts';

export interface GlyphBitmap {
  /** Texels; the glyph box (gw × size px) is mapped onto all of them, sampled nearest. */
  w: number; h: number;
  /** w·h coverage values 0..255. */
  alpha: Uint8Array;
}

export interface GlyphSource {
  readonly name: string;
  /**
   * 'box': the bitmap is stretched over the glyph box (the reference's rule). 'pixel': drawn 1:1
   * at the box's rounded top-left, so real glyphs stay crisp at fractional advances.
   */
  readonly fit: 'box' | 'pixel';
  /** The bitmap for glyph `id` of `font` drawn into a box of `boxW × size` px. */
  draw(id: number, font: string, size: number, boxW: number): GlyphBitmap;
  /** Cache key: glyphs whose keys are equal share an atlas entry. */
  key(id: number, font: string, size: number, boxW: number): string;
}

/** The reference rasterizer's glyphs: one texel per pattern cell, exact under nearest sampling. */
export class ReferenceGlyphs implements GlyphSource {
  readonly name = 'reference';
  readonly fit = 'box' as const;
  key(id: number): string { return `r${id}`; }
  draw(id: number): GlyphBitmap {
    const p = glyphPattern(id);
    const alpha = new Uint8Array(35);
    for (let r = 0; r < 7; r++) for (let c = 0; c < 5; c++) alpha[r * 5 + c] = glyphBit(p, c, r) ? 255 : 0;
    return { w: 5, h: 7, alpha };
  }
}

/** Characters drawn with Canvas 2D at the glyph box's pixel size, anti-aliased coverage, sampled 1:1. */
export class CanvasGlyphs implements GlyphSource {
  readonly name = 'canvas';
  readonly fit = 'pixel' as const;
  private ctx: OffscreenCanvasRenderingContext2D | CanvasRenderingContext2D;
  constructor(private family = 'ui-monospace, "DejaVu Sans Mono", "Liberation Mono", monospace') {
    const c = typeof OffscreenCanvas !== 'undefined' ? new OffscreenCanvas(64, 64) : document.createElement('canvas');
    const ctx = c.getContext('2d', { willReadFrequently: true }) as OffscreenCanvasRenderingContext2D | CanvasRenderingContext2D | null;
    if (!ctx) throw new Error('no 2D canvas for glyph rasterization');
    this.ctx = ctx;
  }
  key(id: number, font: string, size: number, boxW: number): string { return `c${font}|${size}|${Math.ceil(boxW)}|${id}`; }
  draw(id: number, _font: string, size: number, boxW: number): GlyphBitmap {
    // A few rows below the box: underscores and descenders of real fonts reach past 0.2 em.
    const w = Math.max(1, Math.ceil(boxW)), h = Math.max(1, Math.ceil(size) + 3);
    const ctx = this.ctx;
    if (ctx.canvas.width < w || ctx.canvas.height < h) { ctx.canvas.width = Math.max(ctx.canvas.width, w); ctx.canvas.height = Math.max(ctx.canvas.height, h); }
    ctx.clearRect(0, 0, ctx.canvas.width, ctx.canvas.height);
    ctx.fillStyle = '#fff';
    ctx.font = `${size}px ${this.family}`;
    ctx.textBaseline = 'alphabetic';
    ctx.textAlign = 'center';
    let ch = '';
    try { ch = String.fromCodePoint(id); } catch { ch = '\ufffd'; }
    ctx.fillText(ch, w / 2, Math.round(size * 0.8));
    const img = ctx.getImageData(0, 0, w, h).data;
    const alpha = new Uint8Array(w * h);
    for (let i = 0; i < w * h; i++) alpha[i] = img[i * 4 + 3]!;
    return { w, h, alpha };
  }
}
